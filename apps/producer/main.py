"""The producer app: read claims (synthetic generator or claim files), protect PHI, send them to the raw topic.

Thin entry point: the delivery guarantees live in libs.kafka.producer.ClaimProducer, the PHI protection in libs.phi,
the parsing in libs.adapters and the topic names in configs/kafka/topics.json. This module wires them together, shows
progress, serves Prometheus metrics and turns SIGINT/SIGTERM into "stop reading, flush everything in flight".

    python -m apps.producer.main --count 1000 --seed 7
    python -m apps.producer.main claims/*.x12 --rate 500
    claims produce ...            (the same command through the `claims` CLI)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated

import orjson
import typer
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from libs.kafka.client_config import client_config
from libs.kafka.producer import ClaimProducer, ProduceReport, graceful_stop
from libs.kafka.serialize import Protect
from libs.kafka.topics import load_topics
from libs.model import Claim, Rejection
from libs.settings import Environment, KafkaSettings, Settings, load_settings

MAX_LISTED_FAILURES = 20


class ProducerSetupError(RuntimeError):
    """The producer cannot start safely (missing topic, no PHI protector outside local, bad input)."""


def generated_records(count: int, seed: int) -> Iterator[Claim]:
    """Synthetic claims from libs.generator (deterministic for a seed); the generator's labels are not sent."""
    generator = importlib.import_module("libs.generator")
    config = generator.GeneratorConfig(count=count, seed=seed)
    for claim, _labels in generator.generate_claims(config):
        yield claim


def file_records(paths: Sequence[Path]) -> Iterator[Claim | Rejection]:
    """Claims and rejections from claim files in any supported format (X12 837, FHIR, SynPUF, JSON)."""
    registry = importlib.import_module("libs.adapters.registry")
    for path in paths:
        yield from registry.read_claims(path)


def load_protector(settings: Settings) -> Protect | None:
    """The PHI protector's `protect`, or None locally while libs.phi is not available.

    Outside the local environment a missing protector is an error: unprotected PHI must never reach a shared broker.
    """
    try:
        phi = importlib.import_module("libs.phi")
        protector_class = phi.PhiProtector
    except (ImportError, AttributeError):
        if settings.environment is Environment.LOCAL and settings.security.environment is Environment.LOCAL:
            return None
        msg = (f"environment {settings.environment.value}: expected the PHI protector (libs.phi.PhiProtector), "
               "found none; refusing to send unprotected claims")
        raise ProducerSetupError(msg) from None
    factory = getattr(protector_class, "from_settings", None)
    protector = factory(settings) if callable(factory) else protector_class(settings)
    protect: Protect = protector.protect
    return protect


def check_topics_exist(settings: KafkaSettings, topics: Iterable[str], timeout: float = 15.0) -> None:
    """Fail fast when a topic is missing (the local broker does not auto-create topics), instead of timing out."""
    admin = AdminClient(client_config(settings))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"expected a Kafka broker at {settings.bootstrap_servers}, found none answering ({exc.args[0]})"
        raise ProducerSetupError(msg) from None
    missing = [topic for topic in topics if topic not in metadata.topics]
    if missing:
        msg = (f"expected topics {', '.join(missing)} on {settings.bootstrap_servers}, found them missing; "
               "run `claims topics` (or `claims kafka up`, which creates them)")
        raise ProducerSetupError(msg)


def run(
    settings: Settings,
    records: Iterable[Claim | Rejection],
    *,
    total: int | None = None,
    rate: float | None = None,
    protect: Protect | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> ProduceReport:
    """Send `records` to the raw topic (rejections to the dead-letter topic) until done or SIGINT/SIGTERM."""
    console = console or Console(stderr=True)
    topics = load_topics(settings.kafka.topics_file)
    check_topics_exist(settings.kafka, [topics.raw, topics.dead_letter])
    producer = ClaimProducer(settings.kafka, topics.raw, protect=protect, dead_letter_topic=topics.dead_letter,
                             rate=rate)
    with graceful_stop() as stop, Progress(
        TextColumn("[bold]producing[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=console, disable=not show_progress, transient=False,
    ) as progress:
        task = progress.add_task("", total=total)

        def on_progress(report: ProduceReport) -> None:
            progress.update(task, completed=report.sent,
                            description=f"delivered {report.delivered:,} failed {report.failed:,}")

        report = producer.produce_all(records, should_stop=stop, on_progress=on_progress)
    if stop.signal_name is not None:
        console.print(f"stopped by {stop.signal_name}: flushed every claim already sent")
    return report


def print_report(report: ProduceReport, console: Console) -> None:
    """Summary table; failures are listed by claim id or input location (never PHI)."""
    table = Table(title=f"produced to {report.topic}", show_header=False)
    rows = [
        ("claims sent", report.sent), ("delivered", report.delivered), ("failed", report.failed),
        ("bytes delivered", report.bytes_delivered), ("rejections to dead letter", report.rejections_sent),
        ("rejections delivered", report.rejections_delivered),
        ("claims/s", round(report.delivered / report.elapsed_seconds) if report.elapsed_seconds else 0),
        ("interrupted", report.interrupted),
    ]
    for label, value in rows:
        table.add_row(label, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    failures = [*report.failures, *report.rejection_failures]
    for failure in failures[:MAX_LISTED_FAILURES]:
        what = f"claim {failure.claim_id}" if failure.claim_id is not None else f"rejection at {failure.location}"
        console.print(f"[red]not delivered[/red]: {what}: {failure.reason}")
    if len(failures) > MAX_LISTED_FAILURES:
        console.print(f"... and {len(failures) - MAX_LISTED_FAILURES} more (see --report-json)")


def produce_command(  # Typer passes every option by keyword
    *,
    paths: Annotated[list[Path] | None, typer.Argument(help="Claim files; omit to generate synthetic claims.")] = None,
    count: Annotated[int, typer.Option(help="Synthetic claims to generate (without PATHs).", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same claims).")] = 7,
    rate: Annotated[float | None, typer.Option(help="Limit to this many claims per second.", min=0.001)] = None,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap HOST:PORT (overrides settings).")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve Prometheus metrics on this port (default: settings.monitoring.producer_metrics_port; 0: off).",
    )] = None,
    report_json: Annotated[Path | None, typer.Option(help="Write the delivery report as JSON here.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Send claims to the raw Kafka topic (idempotent, acks=all, keyed by claim id); Ctrl-C flushes and stops."""
    console = Console(stderr=True)
    # pydantic-settings deep-merges layers: the other Kafka settings (security, topics file) keep their values.
    settings = load_settings(kafka={"bootstrap_servers": bootstrap}) if bootstrap else load_settings()
    port = settings.monitoring.producer_metrics_port if metrics_port is None else metrics_port
    if port:
        try:
            start_http_server(port)
        except OSError as exc:
            console.print(f"[yellow]metrics not served[/yellow]: port {port} unavailable ({exc.strerror})")
    try:
        protect = load_protector(settings)
        if paths:
            missing = [str(path) for path in paths if not path.exists()]
            if missing:
                msg = f"expected claim files, found no such file: {', '.join(missing)}"
                raise ProducerSetupError(msg)
            records: Iterable[Claim | Rejection] = file_records(paths)
            total = None
        else:
            records, total = generated_records(count, seed), count
        report = run(settings, records, total=total, rate=rate, protect=protect, show_progress=progress,
                     console=console)
    except ProducerSetupError as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None
    print_report(report, console)
    if report_json is not None:
        report_json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    if not report.ok and (report.failed or report.rejection_failures):
        raise typer.Exit(1)


def main() -> None:
    """`python -m apps.producer.main`."""
    typer.run(produce_command)


if __name__ == "__main__":
    main()
