"""`claims run` (what `make run` calls): the whole pipeline locally, a reconciliation that must add up, the daily batch.

It writes the local state every other command reads (docs/operations.md, "Local state"); `--fresh` starts from empty
state and says what it deleted; without it, earlier state is refused in one line (exit 2) rather than mixed in.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from libs.settings import LOCAL_DIR


def _summary_tables(summary: dict[str, Any]) -> list[Table]:
    counts = Table(title="reconciliation", show_header=False)
    for key in ("produced", "bronze", "quarantine", "valid_events", "voids", "silver", "upserted_ids", "superseded",
                "current", "repeated_ids", "dead_letter"):
        counts.add_row(key, f"{summary.get(key) if summary.get(key) is not None else '-':,}"
                       if isinstance(summary.get(key), int) else str(summary.get(key)))
    counts.add_row("reconciled", "[green]yes[/green]" if summary["reconciled"] else "[red]NO[/red]")
    topics = Table(title="messages per topic", show_header=False)
    for topic, count in summary.get("topics", {}).items():
        topics.add_row(topic, f"{count:,}")
    reasons = Table(title="top quarantine reasons")
    reasons.add_column("code")
    reasons.add_column("count", justify="right")
    for entry in summary.get("top_reasons", []):
        reasons.add_row(entry["code"], f"{entry['count']:,}")
    speed = Table(title="throughput and time", show_header=False)
    for stage, value in summary.get("throughput_claims_per_second", {}).items():
        speed.add_row(f"{stage} claims/s", f"{value:,}" if value is not None else "-")
    for stage, seconds in summary.get("timings_seconds", {}).items():
        speed.add_row(f"{stage} seconds", f"{seconds:.1f}")
    batch = summary.get("batch") or {}
    daily = Table(title="daily batch", show_header=False)
    if batch.get("failed"):
        daily.add_row("failed", f"[red]{batch['failed']}[/red]")
    for label, key in (("dates", "dates"), ("claims loaded", "claims_loaded"), ("quarantined", "quarantined"),
                       ("alerts", "alerts"), ("alerts published", "published_alerts"),
                       ("member months", "member_months"), ("seconds", "seconds"), ("warehouse", "warehouse")):
        if key in batch:
            value = batch[key]
            daily.add_row(label, ", ".join(value) if isinstance(value, list) else
                          f"{value:,}" if isinstance(value, int) else str(value))
    return [counts, topics, reasons, speed, daily]


def run_command(
    *,
    count: Annotated[int, typer.Option(help="Synthetic claims to generate and produce.", min=1)] = 100_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Start from empty state: delete the lake, checkpoints, the local broker's topics and the "
                        "warehouse (the keyring and audit log are kept). Without it, earlier state is refused.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Start Kafka, create topics, produce COUNT claims, stream them into the lake, reconcile, run the daily batch."""
    from libs.kafka.broker import BrokerError  # noqa: PLC0415
    from libs.pipeline.console import logs_on_terminal, person_console, print_problem  # noqa: PLC0415
    from libs.pipeline.local_run import run_pipeline  # noqa: PLC0415  (PySpark imported only when running)
    from libs.preflight import EXIT_PREFLIGHT  # noqa: PLC0415

    console = person_console()  # the terminal even while Spark's JVM start points stderr at its log
    try:
        report = run_pipeline(count, seed, fresh=fresh, say=lambda text: console.print(f"[bold]>[/bold] {text}"),
                              show_progress=not (no_progress or logs_on_terminal()), console=console)
    except BrokerError as exc:
        print_problem(console, exc)
        raise typer.Exit(EXIT_PREFLIGHT) from None
    out = Console()
    for table in _summary_tables(report.summary):
        out.print(table)
    out.print(f"summary written to {LOCAL_DIR / 'run' / 'summary.json'}")
    for engine, where in report.summary.get("logs", {}).items():
        out.print(f"{engine} log: {where}")
    for problem in report.summary.get("problems", []):
        print_problem(console, problem, label="reconciliation failed")
    failed = (report.summary.get("batch") or {}).get("failed")
    if failed:
        print_problem(console, failed, label="daily batch failed")
    raise typer.Exit(0 if report.summary["reconciled"] and not failed else 1)


def register(app: typer.Typer) -> None:
    """Add `claims run`."""
    app.command("run")(run_command)
