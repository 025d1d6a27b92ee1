"""The local monitoring stack: Prometheus, Alertmanager and the lag exporter on loopback, under .local/monitoring.

Why processes of our own rather than services: there is no systemd or Docker on these machines, and the stack must
start and stop with the pipeline like the local Kafka broker does (libs.kafka.broker). Each process gets a pid file,
a log file and a data directory under the state directory; `up` is idempotent (a healthy process is left running),
`down` stops only processes whose pid file names a process still running the expected binary.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from libs.monitoring.assets import ALERTMANAGER_FILE, RULES_FILE, STATE_DIR
from libs.monitoring.lag import BROKER_TIMEOUT_SECONDS
from libs.monitoring.scrape import ScrapeJobs, load_scrape_jobs, prometheus_config, write_config
from libs.monitoring.tools import CACHE_ROOT, tool_path, web_assets
from libs.settings import MonitoringSettings

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
EXPORTER_JOB = "claims-exporter"


class MonitoringStackError(RuntimeError):
    """A process of the stack did not start or stop; the message names it and its log file."""


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports of the stack's own processes; the defaults are settings.monitoring's (the one place for ports)."""

    prometheus: int = MonitoringSettings.model_fields["prometheus_port"].default
    alertmanager: int = MonitoringSettings.model_fields["alertmanager_port"].default

    @classmethod
    def from_settings(cls, monitoring: MonitoringSettings) -> StackPorts:
        """The ports settings.monitoring names (environment overrides included)."""
        return cls(prometheus=monitoring.prometheus_port, alertmanager=monitoring.alertmanager_port)


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process of the stack and how to tell it is ready."""

    name: str
    command: list[str]
    ready_url: str
    marker: str  # a string the process' command line must contain for its pid file to be trusted


@dataclass
class ProcessState:
    """What `status` reports about one process."""

    name: str
    pid: int | None
    running: bool
    ready: bool
    url: str
    log: Path


@dataclass
class LocalMonitoring:
    """Start, stop and inspect the stack; `exporter_command` is the lag exporter's command line (from the app)."""

    monitoring: MonitoringSettings
    exporter_command: Sequence[str] | None = None
    state_dir: Path = STATE_DIR
    ports: StackPorts | None = None  # default: StackPorts.from_settings(monitoring)
    scrape_interval: str | None = None
    app_ports: dict[str, int] | None = None  # job -> port; default: settings and the scrape-jobs file
    jobs: ScrapeJobs = field(default_factory=load_scrape_jobs)

    def __post_init__(self) -> None:
        if self.ports is None:
            self.ports = StackPorts.from_settings(self.monitoring)

    @property
    def stack_ports(self) -> StackPorts:
        """The ports in effect (given, or from settings)."""
        return self.ports or StackPorts.from_settings(self.monitoring)

    @property
    def prometheus_url(self) -> str:
        """Where the Prometheus UI and HTTP API answer."""
        return f"http://127.0.0.1:{self.stack_ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        """Where the Alertmanager UI and API answer."""
        return f"http://127.0.0.1:{self.stack_ports.alertmanager}"

    def job_ports(self) -> dict[str, int]:
        """Scrape job -> loopback port of the process it scrapes."""
        if self.app_ports is not None:
            return dict(self.app_ports)
        return {job.job_name: job.port_in(self.monitoring) for job in self.jobs.jobs}

    def write_prometheus_config(self) -> Path:
        """Render prometheus.yml into the state directory (scrape jobs, the committed rules, Alertmanager)."""
        config = prometheus_config(
            self.jobs, self.job_ports(), rule_files=[RULES_FILE], scrape_interval=self.scrape_interval,
            alertmanager=f"127.0.0.1:{self.stack_ports.alertmanager}",
            self_address=f"127.0.0.1:{self.stack_ports.prometheus}")
        return write_config(config, self.state_dir / "prometheus" / "prometheus.yml")

    def specs(self) -> list[ProcessSpec]:
        """The processes, in start order (the exporter first: Prometheus scrapes it as soon as it starts)."""
        specs = []
        if self.exporter_command:
            port = self.job_ports().get(EXPORTER_JOB)
            specs.append(ProcessSpec("exporter", list(self.exporter_command),
                                     f"http://127.0.0.1:{port}/metrics", marker="exporter"))
        specs.append(self._alertmanager_spec())
        specs.append(self._prometheus_spec())
        return specs

    def _prometheus_spec(self) -> ProcessSpec:
        config = self.write_prometheus_config()
        command = [str(tool_path("prometheus")), f"--config.file={config}",
                   f"--storage.tsdb.path={self.state_dir / 'prometheus' / 'data'}",
                   f"--web.listen-address=127.0.0.1:{self.stack_ports.prometheus}",
                   "--storage.tsdb.retention.time=7d", "--web.enable-lifecycle"]
        assets = web_assets()
        if assets is not None:
            consoles = CACHE_ROOT / "etc" / "prometheus"
            command += [f"--web.local-assets={assets}", f"--web.console.templates={consoles / 'consoles'}",
                        f"--web.console.libraries={consoles / 'console_libraries'}"]
        return ProcessSpec("prometheus", command, f"{self.prometheus_url}/-/ready", marker="prometheus")

    def _alertmanager_spec(self) -> ProcessSpec:
        command = [str(tool_path("prometheus-alertmanager")), f"--config.file={ALERTMANAGER_FILE}",
                   f"--storage.path={self.state_dir / 'alertmanager' / 'data'}",
                   f"--web.listen-address=127.0.0.1:{self.stack_ports.alertmanager}",
                   # An empty address turns gossip clustering off: no listener on every interface at :9094.
                   "--cluster.listen-address="]
        ui = CACHE_ROOT / "usr" / "share" / "prometheus" / "alertmanager" / "ui"
        if ui.is_dir():
            command.append(f"--web.ui-path={ui}/")
        return ProcessSpec("alertmanager", command, f"{self.alertmanager_url}/-/ready", marker="alertmanager")

    # -- lifecycle --

    def up(self, timeout: float = READY_TIMEOUT_SECONDS) -> list[ProcessState]:
        """Start every process that is not already running, wait until each answers, return their states."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs():
            process = self._start(spec) if self._running_pid(spec) is None else None
            self._wait_ready(spec, timeout, process)
        return self.status()

    def down(self) -> list[str]:
        """Stop the stack's processes (those this state directory started); returns the names stopped."""
        stopped = []
        for spec in reversed(self._known_specs()):
            pid = self._running_pid(spec)
            if pid is not None:
                _terminate(pid)
                stopped.append(spec.name)
            self._pid_file(spec.name).unlink(missing_ok=True)
        return stopped

    def status(self) -> list[ProcessState]:
        """Each process: pid, whether it runs and answers, its URL and log file."""
        states = []
        for spec in self._known_specs():
            pid = self._running_pid(spec)
            states.append(ProcessState(name=spec.name, pid=pid, running=pid is not None,
                                       ready=pid is not None and _answers(spec.ready_url),
                                       url=spec.ready_url.rsplit("/-/", 1)[0].removesuffix("/metrics"),
                                       log=self._log_file(spec.name)))
        return states

    def _known_specs(self) -> list[ProcessSpec]:
        # Status and stop must work without the binaries (e.g. after `make clean` of the cache): markers suffice.
        names = [("exporter", "exporter"), ("alertmanager", "alertmanager"), ("prometheus", "prometheus")]
        ports = {"exporter": self.job_ports().get(EXPORTER_JOB), "alertmanager": self.stack_ports.alertmanager,
                 "prometheus": self.stack_ports.prometheus}
        urls = {"exporter": f"http://127.0.0.1:{ports['exporter']}/metrics",
                "alertmanager": f"{self.alertmanager_url}/-/ready", "prometheus": f"{self.prometheus_url}/-/ready"}
        return [ProcessSpec(name, [], urls[name], marker) for name, marker in names
                if name != "exporter" or self.exporter_command or self._pid_file(name).exists()]

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def _running_pid(self, spec: ProcessSpec) -> int | None:
        try:
            pid = int(self._pid_file(spec.name).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if _is_running(pid, spec.marker) else None

    def _start(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        log = self._log_file(spec.name)
        with log.open("ab") as output:
            process = subprocess.Popen(spec.command, stdout=output, stderr=subprocess.STDOUT,  # noqa: S603
                                       stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.state_dir)
        self._pid_file(spec.name).write_text(str(process.pid), encoding="utf-8")
        return process

    def _wait_ready(self, spec: ProcessSpec, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + timeout
        exited = False
        while time.monotonic() < deadline:
            if _answers(spec.ready_url):
                return
            # A process we just started is watched through its handle: right after the fork its /proc entry
            # still shows our own command line, so the pid-file check would misjudge it.
            exited = process.poll() is not None if process is not None else self._running_pid(spec) is None
            if exited:
                break
            time.sleep(0.25)
        tail = _tail(self._log_file(spec.name))
        msg = (f"{spec.name}: expected {spec.ready_url} to answer within {timeout:.0f} s, found "
               f"{'the process exited' if exited else 'no answer'}; log {self._log_file(spec.name)}:\n{tail}")
        raise MonitoringStackError(msg)


def _answers(url: str, timeout: float = BROKER_TIMEOUT_SECONDS + 5.0) -> bool:
    """Whether `url` answers 2xx. The timeout outlasts the exporter's broker probe: with no broker running, a scrape
    of the exporter takes that long and still answers (claims_kafka_exporter_up 0)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (loopback http only)
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def _is_running(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    # A zombie ('Z') has exited; a pid reused by an unrelated process does not carry the marker.
    return marker in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_SECONDS,
               sleep: Callable[[float], None] = time.sleep) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            finished, _status = os.waitpid(pid, os.WNOHANG)  # our own child (tests): reap it
            if finished:
                return
        if not _is_running(pid, ""):
            return
        sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
