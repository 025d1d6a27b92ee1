"""Run the real `claims` command in a subprocess against a local state of its own (CLAIMS_LOCAL_DIR).

Why subprocesses: what is tested is what a person sees: the exit code, the one line on stderr, no traceback, and
that nothing the command started outlives it. Each test gets its own local directory and broker ports, so the
developer's `.local/` and a broker on 9092 are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libs.kafka.broker import free_port
from libs.settings import REPO_ROOT


@dataclass
class Result:
    """What a finished command left."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def local_env(local_dir: Path, *, bootstrap: str | None = None, topics_file: Path | None = None) -> dict[str, str]:
    """The environment of a command whose whole local state lives in `local_dir`; the broker ports are free ones
    unless `bootstrap` names a running broker."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS")}
    env.update({
        "CLAIMS_LOCAL_DIR": str(local_dir),
        "CLAIMS__KAFKA__BOOTSTRAP_SERVERS": bootstrap or f"127.0.0.1:{free_port()}",
        "CLAIMS__KAFKA__LOCAL_CONTROLLER_PORT": str(free_port()),
        "CLAIMS__MONITORING__PRODUCER_METRICS_PORT": str(free_port()),
        "CLAIMS__MONITORING__STREAMING_METRICS_PORT": str(free_port()),
        "CLAIMS__SPARK__DRIVER_MEMORY": "1g",
        "COLUMNS": "200",  # rich wraps at the terminal width; one line must stay one line
    })
    if topics_file is not None:
        env["CLAIMS__KAFKA__TOPICS_FILE"] = str(topics_file)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "apps.cli.main", *args]


def run_claims(env: dict[str, str], *args: str, timeout: float = 600) -> Result:
    """Run `claims ARGS...` to its end."""
    started = time.monotonic()
    done = subprocess.run(command(*args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start_claims(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[str]:
    """Start `claims ARGS...` in the background; stdout and stderr go to `log` (read it with Path.read_text)."""
    handle = log.open("w", encoding="utf-8")
    return subprocess.Popen(command(*args), cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            text=True)


def interrupt(process: subprocess.Popen[str], timeout: float = 120) -> int:
    """Send SIGINT (what Ctrl-C sends) to the command only, and wait for it to end."""
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=timeout)


def interrupt_when(process: subprocess.Popen[str], ready: Callable[[], object], what: str, log: Path,
                   timeout: float = 300) -> int:
    """Wait until `ready` (or the command ended early: a failure, with its output), then Ctrl-C it; its exit code.
    The command is killed if anything on the way fails, so no test leaves one behind."""
    try:
        wait_for(lambda: ready() or process.poll() is not None, timeout, what)
        assert process.poll() is None, log.read_text()
        return interrupt(process)
    finally:
        if process.poll() is None:
            process.kill()


def processes_of(local_dir: Path) -> list[int]:
    """Live processes started with this local directory in their environment (the command, its JVMs, its broker)."""
    marker = f"CLAIMS_LOCAL_DIR={local_dir}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate()` until it is true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"expected {what} within {timeout:.0f} s")
