"""One logging set-up for every process: JSON through the PHI scrubber, a file or stderr, correlation ids."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import orjson
import pytest
import structlog

from libs.phi import logging as phi_logging
from libs.phi.logging import (
    LogFormat,
    configure_logging,
    correlation_scope,
    current_correlation_id,
    default_log_format,
    get_logger,
    is_correlation_id,
)
from libs.settings import REPO_ROOT, Environment

RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, phi_logging._configured, phi_logging._process)
    yield
    root.handlers, root.level = saved[0], saved[1]
    phi_logging._configured, phi_logging._process = saved[2], saved[3]
    structlog.reset_defaults()


def _lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_file_format_writes_json_lines_to_the_process_log(tmp_path):
    path = configure_logging(process="producer", log_format=LogFormat.FILE, log_dir=tmp_path)
    get_logger("t").info("claim sent", claim_id="C-1", ssn="123-45-6789")
    logging.getLogger("std").warning("broker slow %s", "p0", extra={"phone": "555-123-4567"})
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert path == tmp_path / "producer.log"
    events = _lines(path.read_text(encoding="utf-8"))
    assert [event["event"] for event in events] == ["claim sent", "broker slow p0"]
    assert {event["process"] for event in events} == {"producer"}
    assert events[0]["ssn"] == "[REDACTED]"
    assert events[1]["phone"] == "[REDACTED]"


def test_json_format_writes_to_stderr(capsys):
    configure_logging(process="stream", log_format=LogFormat.JSON)
    get_logger("t").info("batch done", batch_id=3)

    event = _lines(capsys.readouterr().err)[-1]
    assert event["event"] == "batch done"
    assert event["process"] == "stream"


def test_a_bare_call_keeps_the_entry_points_set_up(tmp_path):
    path = configure_logging(process="batch", log_dir=tmp_path)
    configure_logging()  # what library code (apps/cli/batch.py, the API's batch runner) calls
    get_logger("t").info("still to the file")
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert path is not None
    assert _lines(path.read_text(encoding="utf-8"))[-1]["event"] == "still to the file"


def test_deployed_environments_log_to_stderr_and_local_to_a_file():
    assert default_log_format(Environment.LOCAL) is LogFormat.FILE
    assert {default_log_format(env) for env in (Environment.DEV, Environment.STAGING, Environment.PROD)} == {
        LogFormat.JSON}


def test_the_bound_correlation_id_is_on_every_line_and_restored_afterwards():
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = get_logger("t")
    with correlation_scope(RUN):
        log.info("run started")
        logging.getLogger("std").info("stdlib line")
        log.info("one claim", correlation_id=f"{RUN}:42")
    log.info("after the run")

    events = _lines(stream.getvalue())
    assert [event.get("correlation_id") for event in events] == [RUN, RUN, f"{RUN}:42", None]
    assert current_correlation_id() is None


def test_threads_keep_their_own_correlation_ids():
    seen: dict[str, str | None] = {}

    def work(name: str, value: str) -> None:
        with correlation_scope(value):
            seen[name] = current_correlation_id()

    threads = [threading.Thread(target=work, args=(f"t{i}", f"{i:032x}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == {f"t{i}": f"{i:032x}" for i in range(4)}


def test_a_correlation_id_is_kept_verbatim_but_anything_else_under_its_key_is_scrubbed():
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger("t").info("ok", correlation_id=f"{RUN}:5551234567")
    get_logger("t").info("odd", correlation_id="call 555-123-4567")

    first, second = _lines(stream.getvalue())
    assert first["correlation_id"] == f"{RUN}:5551234567"
    assert second["correlation_id"] == "call [PHONE]"
    assert is_correlation_id(f"{RUN}:1")
    assert not is_correlation_id("123-45-6789")


def test_the_cli_writes_its_log_to_a_file_or_json_to_the_terminal(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "apps.cli.main"]

    as_service = subprocess.run([*command, "--log-format", "json", "monitor", "status", "--state-dir",
                                 str(tmp_path / "m")], capture_output=True, text=True, env=env, cwd=tmp_path,
                                check=False, timeout=120)
    assert as_service.returncode == 1  # nothing is running in an empty state directory
    assert "prometheus" in as_service.stdout  # the table stays on stdout for people
    event = _lines(as_service.stderr)[-1]
    assert event["event"] == "monitoring status"
    assert event["process"] == "monitor"
    assert event["prometheus"] == "down"
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, check=False,
                               timeout=120).stdout
    assert "--log-format" in help_text
