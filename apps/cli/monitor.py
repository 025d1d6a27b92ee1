"""`claims monitor up|down|status|exporter|dashboards`: the local Prometheus, Alertmanager and lag exporter.

Thin wrappers over libs.monitoring: `up` starts the three processes on loopback (state, logs and data under
.local/monitoring) and prints the URLs; `exporter` is the lag exporter's own process (what `up` starts);
`dashboards` regenerates configs/monitoring/grafana from libs.monitoring.dashboards.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console
from rich.table import Table

from libs.kafka.broker import read_state
from libs.kafka.topics import load_topics
from libs.monitoring.assets import BATCH_STATUS_FILE, STATE_DIR
from libs.monitoring.lag import PipelineLagCollector, stream_checkpoint
from libs.monitoring.local import EXPORTER_JOB, LocalMonitoring, MonitoringStackError, StackPorts
from libs.monitoring.scrape import load_scrape_jobs
from libs.monitoring.tools import ToolNotFoundError, ensure_tools
from libs.phi.logging import get_logger
from libs.pipeline.console import print_problem
from libs.settings import KafkaSettings, load_settings

console = Console()
log = get_logger("claims.monitor")
monitor_app = typer.Typer(help="The local Prometheus and Alertmanager (loopback), and the Kafka lag exporter.",
                          no_args_is_help=True)

StateOption = Annotated[Path, typer.Option(help="State directory (pid files, logs, TSDB).")]
PrometheusPort = Annotated[int | None, typer.Option(
    help="Prometheus port on 127.0.0.1 (default: settings.monitoring.prometheus_port).")]
AlertmanagerPort = Annotated[int | None, typer.Option(
    help="Alertmanager port on 127.0.0.1 (default: settings.monitoring.alertmanager_port).")]


def _stack(state_dir: Path, prometheus_port: int | None, alertmanager_port: int | None) -> LocalMonitoring:
    monitoring = load_settings().monitoring
    configured = StackPorts.from_settings(monitoring)
    exporter = [sys.executable, "-m", "apps.cli.main", "monitor", "exporter"]
    return LocalMonitoring(monitoring, exporter_command=exporter, state_dir=state_dir,
                           ports=StackPorts(prometheus=prometheus_port or configured.prometheus,
                                            alertmanager=alertmanager_port or configured.alertmanager))


def _print_status(stack: LocalMonitoring) -> None:
    table = Table(title="local monitoring")
    for column in ("process", "pid", "state", "url", "log"):
        table.add_column(column)
    for state in stack.status():
        label = "up" if state.ready else ("starting" if state.running else "stopped")
        table.add_row(state.name, str(state.pid or "-"), label, state.url, str(state.log))
    console.print(table)
    ports = stack.job_ports()
    console.print("scrape targets: " + ", ".join(f"{job} 127.0.0.1:{port}" for job, port in ports.items()))


@monitor_app.command("up")
def up_command(
    state_dir: StateOption = STATE_DIR,
    prometheus_port: PrometheusPort = None,
    alertmanager_port: AlertmanagerPort = None,
) -> None:
    """Start Prometheus, Alertmanager and the lag exporter (idempotent) and print the Prometheus URL."""
    try:
        ensure_tools()
        stack = _stack(state_dir, prometheus_port, alertmanager_port)
        stack.up()
    except (ToolNotFoundError, MonitoringStackError) as exc:
        print_problem(console, exc)
        raise typer.Exit(1) from None
    _print_status(stack)
    log.info("monitoring up", prometheus=stack.prometheus_url, alertmanager=stack.alertmanager_url)
    console.print(f"Prometheus: {stack.prometheus_url}   (targets: {stack.prometheus_url}/targets)")
    console.print(f"Alertmanager: {stack.alertmanager_url}")


@monitor_app.command("down")
def down_command(
    state_dir: StateOption = STATE_DIR,
    prometheus_port: PrometheusPort = None,
    alertmanager_port: AlertmanagerPort = None,
) -> None:
    """Stop the processes `up` started (data stays under the state directory)."""
    stopped = _stack(state_dir, prometheus_port, alertmanager_port).down()
    log.info("monitoring stopped", processes=stopped)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@monitor_app.command("status")
def status_command(
    state_dir: StateOption = STATE_DIR,
    prometheus_port: PrometheusPort = None,
    alertmanager_port: AlertmanagerPort = None,
) -> None:
    """Each process: pid, up or stopped, URL and log file; exit 1 when any is not up."""
    stack = _stack(state_dir, prometheus_port, alertmanager_port)
    _print_status(stack)
    states = stack.status()
    log.info("monitoring status", **{state.name: "up" if state.ready else "down" for state in states})
    if not all(state.ready for state in states):
        raise typer.Exit(1)


@monitor_app.command("exporter")
def exporter_command(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: the claims-exporter job's).")] = None,
    checkpoint: Annotated[list[str] | None, typer.Option(
        help="The stream's checkpoint: a directory or an s3:// URI (repeatable; the one committed last counts). "
             "Default: the one in settings (also `make run`'s).")] = None,
    batch_status: Annotated[Path, typer.Option(help="The batch job's status file (with a DuckDB warehouse; with "
                                                    "Redshift the batch_runs ledger is read instead).")
                            ] = BATCH_STATUS_FILE,
    bootstrap: Annotated[str | None, typer.Option(
        help="Kafka bootstrap HOST:PORT (default: the running local broker of `make run` or `claims kafka up`, "
             "else settings).")] = None,
) -> None:
    """Serve broker-side consumer lag, topic end offsets and the batch job's last run until SIGTERM."""
    from libs.monitoring.batch_ledger import ledger_batch_status  # noqa: PLC0415  (SQL tooling only when serving)

    settings = load_settings()
    topics = load_topics(settings.kafka.topics_file)
    registry = CollectorRegistry()

    def kafka() -> KafkaSettings:
        """Asked on every scrape: `make run` starts its broker on new free ports each time."""
        if bootstrap:
            return settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
        state = read_state(settings.kafka.local_broker_home)  # `make run` and `claims kafka up` share one broker
        if state is not None:
            return settings.kafka.model_copy(update={"bootstrap_servers": state.bootstrap})
        return settings.kafka

    registry.register(PipelineLagCollector(
        kafka, {role.value: spec.name for role, spec in topics.specs.items()},
        [*checkpoint] if checkpoint else [stream_checkpoint(settings.lake.checkpoint_root)],
        ledger_batch_status(settings) or batch_status))
    listen = port if port is not None else load_scrape_jobs().job(EXPORTER_JOB).port_in(settings.monitoring)
    server, thread = start_http_server(listen, addr="127.0.0.1", registry=registry)
    console.print(f"lag exporter on http://127.0.0.1:{listen}/metrics")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)


@monitor_app.command("dashboards")
def dashboards_command() -> None:
    """Regenerate configs/monitoring/grafana/*.json from libs/monitoring/dashboards.py."""
    from libs.monitoring.dashboards import write_dashboards  # noqa: PLC0415  (the Grafana SDK only when asked)

    for path in write_dashboards():
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `claims monitor ...`."""
    app.add_typer(monitor_app, name="monitor")
