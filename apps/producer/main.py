"""The producer app: claim files or synthetic claims into the raw topic, PHI protected (`claims produce`).

Thin entry point: the ingestion core (adapters -> PHI protection -> idempotent producer, delivery accounting) is
libs.ingest; this module parses options, shows progress, serves Prometheus metrics and turns SIGINT/SIGTERM into
"stop reading, flush everything in flight".

    claims produce tests/fixtures/x12/837p_multi.837 tests/fixtures/fhir/bundle.json
    claims produce --count 100000 --seed 7            (parallel generation, see libs.ingest.generated)
    python -m apps.producer.main --count 1000 --rate 500
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import orjson
import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from libs.ingest import (
    IngestError,
    generated_claims,
    load_protector,
    produce_files,
    produce_generated,
    produce_records,
)
from libs.ingest.sources import Record
from libs.kafka.producer import ProduceReport, StopRequested, graceful_stop
from libs.phi import PhiProtector
from libs.phi.logging import configure_logging
from libs.pipeline.console import print_problem
from libs.settings import Settings, load_settings

MAX_LISTED_FAILURES = 20


def _progress(console: Console, show: bool) -> Progress:
    return Progress(TextColumn("[bold]producing[/bold]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=not show)


def run(
    settings: Settings,
    records: Iterable[Record],
    *,
    total: int | None = None,
    rate: float | None = None,
    protector: PhiProtector | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> ProduceReport:
    """Produce `records` (claims to the raw topic, rejections to the dead-letter topic) until done or SIGINT/SIGTERM."""
    console = console or Console(stderr=True)
    with graceful_stop() as stop, _progress(console, show_progress) as progress:
        task = progress.add_task("", total=total)
        report = produce_records(settings, records, protector=protector, rate=rate, should_stop=stop,
                                 on_progress=_updater(progress, task))
    _say_stopped(stop, console)
    return report


def _updater(progress: Progress, task: TaskID) -> Callable[[ProduceReport], None]:
    def on_progress(report: ProduceReport) -> None:
        progress.update(task, completed=report.sent,
                        description=f"delivered {report.delivered:,} failed {report.failed:,}")

    return on_progress


def _say_stopped(stop: StopRequested, console: Console) -> None:
    if stop.signal_name is not None:
        console.print(f"stopped by {stop.signal_name}: flushed every claim already sent")


def print_report(report: ProduceReport, console: Console) -> None:
    """Summary table; failures are listed by claim id or input location (never PHI)."""
    table = Table(title=f"produced to {report.topic}", show_header=False)
    rows = [
        ("claims sent", report.sent), ("delivered", report.delivered), ("failed", report.failed),
        ("bytes delivered", report.bytes_delivered), ("rejections to dead letter", report.rejections_sent),
        ("rejections delivered", report.rejections_delivered),
        ("claims/s", round(report.claims_per_second)), ("correlation id", report.correlation_id or "-"),
        ("interrupted", report.interrupted),
    ]
    for label, value in rows:
        table.add_row(label, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    failures = [*report.failures, *report.rejection_failures]
    for failure in failures[:MAX_LISTED_FAILURES]:
        what = f"claim {failure.claim_id}" if failure.claim_id else f"records at {failure.location}"
        print_problem(console, f"{what}: {failure.reason}", label="not delivered")
    if len(failures) > MAX_LISTED_FAILURES:
        console.print(f"... and {len(failures) - MAX_LISTED_FAILURES} more (see --report-json)")


def produce_command(  # Typer passes every option by keyword
    *,
    paths: Annotated[list[Path] | None, typer.Argument(help="Claim files; omit to generate synthetic claims.")] = None,
    count: Annotated[int, typer.Option(help="Synthetic claims to generate (without PATHs).", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same claims).")] = 7,
    rate: Annotated[float | None, typer.Option(help="Limit to this many claims per second.", min=0.001)] = None,
    workers: Annotated[int | None, typer.Option(
        help="Producer processes for generated claims (default: one per spare core; 0: in this process).", min=0,
    )] = None,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap HOST:PORT (overrides settings).")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve Prometheus metrics on this port (default: settings.monitoring.producer_metrics_port; 0: off).",
    )] = None,
    report_json: Annotated[Path | None, typer.Option(help="Write the delivery report as JSON here.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Send claims to the raw Kafka topic (idempotent, acks=all, keyed by claim id, PHI protected); Ctrl-C flushes."""
    console = Console(stderr=True)
    # pydantic-settings deep-merges layers: the other Kafka settings (security, topics file) keep their values.
    settings = load_settings(kafka={"bootstrap_servers": bootstrap}) if bootstrap else load_settings()
    _serve_metrics(settings.monitoring.producer_metrics_port if metrics_port is None else metrics_port, console)
    try:
        protector = load_protector(settings)
        with graceful_stop() as stop, _progress(console, progress) as bar:
            task = bar.add_task("", total=None if paths else count)
            on_progress = _updater(bar, task)
            if paths:
                report = produce_files(settings, paths, protector=protector, rate=rate, should_stop=stop,
                                       on_progress=on_progress)
            elif rate is not None:  # a paced run gains nothing from parallel producers
                report = produce_records(settings, generated_claims(count, seed), protector=protector, rate=rate,
                                         should_stop=stop, on_progress=on_progress,
                                         track_deliveries=False)
            else:
                report = produce_generated(settings, count, seed, workers=workers, protector=protector,
                                           should_stop=stop, on_progress=on_progress)
        _say_stopped(stop, console)
    except IngestError as exc:
        print_problem(console, exc)
        raise typer.Exit(2) from None
    print_report(report, console)
    if report_json is not None:
        report_json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    if not report.ok and (report.failed or report.rejection_failures):
        raise typer.Exit(1)


def _serve_metrics(port: int, console: Console) -> None:
    if not port:
        return
    try:
        start_http_server(port)
    except OSError as exc:
        print_problem(console, f"port {port} unavailable ({exc.strerror})", label="metrics not served", style="yellow")


def main() -> None:
    """`python -m apps.producer.main`."""
    configure_logging(process="producer")  # JSON to .local/logs/producer.log (`claims produce` sets its own)
    typer.run(produce_command)


if __name__ == "__main__":
    main()
