"""`claims stream`: run the Spark Structured Streaming job (raw topic -> validation -> lake and topics).

Before Spark starts it checks in seconds that the broker answers and holds every topic (one line and exit 2
otherwise). While it runs: one progress line (micro-batches, claims in, valid, quarantined, claims/s); when it ends
(drained with --available-now, or Ctrl-C): a summary table. The JSON log goes to .local/logs/stream.log (the
JVM's output to stream-spark.log beside it), or to stderr with `claims --log-format json stream`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from libs.streaming.processor import BatchOutcome
    from libs.streaming.query import RunningQuery


def stream_command(
    *,
    available_now: Annotated[bool, typer.Option("--available-now", help="Drain the raw topic, then stop.")] = False,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers (overrides settings).")] = None,
    trigger_seconds: Annotated[float | None, typer.Option(help="Micro-batch interval (default 5 s).", min=0.1)] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0 disables).", min=0)] = None,
) -> None:
    """Stream claims from medical-claims-raw into the Delta lake and the output topics (Ctrl-C stops cleanly)."""

    from apps.streaming.main import check, serve  # noqa: PLC0415  (imports PySpark only when the command runs)
    from libs.phi.logging import LOG_DIR  # noqa: PLC0415
    from libs.pipeline.console import logs_on_terminal, person_console, progress, spark_activity  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    if bootstrap:
        settings.kafka.bootstrap_servers = bootstrap
    if trigger_seconds:
        settings.spark.trigger_seconds = trigger_seconds
    check(settings)  # PreflightError: one line and exit 2 (apps.cli.main)
    console = person_console()  # the terminal, also while the JVM start points stderr at its log
    totals: dict[str, Any] = {"batches": 0, "input": 0, "valid": 0, "quarantined": 0, "alerts": 0}
    started = time.perf_counter()

    def on_batch(outcome: BatchOutcome) -> None:
        totals["batches"] += 1
        totals["input"] += outcome.input_rows
        totals["valid"] += outcome.valid
        totals["quarantined"] += outcome.quarantined
        totals["alerts"] += outcome.alerts

    with progress(console, enabled=not logs_on_terminal()) as bar:
        task = bar.add_task("stream", total=None, info="starting Spark and the query")

        def tick(running: RunningQuery) -> None:
            seconds = time.perf_counter() - started
            activity = spark_activity(running.spark) or "waiting for claims"
            bar.update(task, completed=totals["input"],
                       info=f"{totals['batches']} batches, {totals['input'] / seconds:,.0f} claims/s, {activity}")

        code = serve(settings, available_now=available_now, metrics_port=metrics_port, on_batch=on_batch,
                     spark_log=LOG_DIR / "stream-spark.log", on_tick=tick)
        bar.update(task, total=totals["input"] or 1, completed=totals["input"] or (1 if code == 0 else 0),
                   info="drained" if available_now and code == 0 else ("stopped" if code == 0 else "[red]failed[/red]"))
    _print_summary(settings, totals, time.perf_counter() - started, code)
    raise typer.Exit(code)


def _print_summary(settings: Any, totals: dict[str, Any], seconds: float, code: int) -> None:
    from rich.console import Console  # noqa: PLC0415

    from libs.pipeline.console import print_log_location, summary_table  # noqa: PLC0415

    out = Console()
    out.print(summary_table("stream", [
        ("micro-batches", totals["batches"]),
        ("claims read", totals["input"]),
        ("valid", totals["valid"]),
        ("quarantined", totals["quarantined"]),
        ("alerts", totals["alerts"]),
        ("seconds", round(seconds, 1)),
        ("lake", settings.lake.root),
        ("checkpoints", settings.lake.checkpoint_root),
        ("ended", "ok" if code == 0 else "the query failed (see the log)"),
    ]))
    print_log_location(out)


def register(app: typer.Typer) -> None:
    """Add `claims stream`."""
    app.command("stream")(stream_command)
