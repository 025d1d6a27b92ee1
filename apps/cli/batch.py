"""`claims batch [--date D | --all]` and `claims batch status`: run the daily batch job, read its ledger.

Thin: the job is libs.batch.job (through apps.batch.main), the ledger is the warehouse's batch_runs table.
Before Spark starts, the batch checks in seconds what it needs (a broker, the alerts topic, the stream's tables, claims
of the day): a missing one is one line, recorded in the ledger too, and exit 2. While it runs, one progress line per
phase; at the end a summary table (claims loaded, alerts, seconds, where the log is).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from libs.batch.job import BatchResult
    from libs.settings import Settings

batch_app = typer.Typer(help="The daily batch: silver -> warehouse, batch fraud screens -> alerts.",
                        invoke_without_command=True)


@batch_app.callback()
def batch_command(
    ctx: typer.Context,
    day: Annotated[datetime | None, typer.Option("--date", formats=["%Y-%m-%d"],
                                                 help="Day of claims (received that UTC day); default yesterday.")
                   ] = None,
    all_days: Annotated[bool, typer.Option("--all", help="Every claim in silver (backfill).")] = False,
) -> None:
    """Run the batch job for one day (default: yesterday UTC) or for all of silver."""
    if ctx.invoked_subcommand is not None:
        return
    if day is not None and all_days:
        typer.echo("error: pass --date or --all, not both", err=True)
        raise typer.Exit(2)
    from apps.batch.main import check, yesterday_utc  # noqa: PLC0415  (imports PySpark only when the job runs)
    from libs.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    target = None if all_days else (day.date() if day is not None else yesterday_utc())
    check(settings, target)  # PreflightError: one line and exit 2 (apps.cli.main)
    raise typer.Exit(_run_with_progress(settings, target))


def _run_with_progress(settings: Settings, day: date | None) -> int:
    from rich.console import Console  # noqa: PLC0415

    from apps.batch.main import execute  # noqa: PLC0415
    from libs.batch.job import BatchRunError  # noqa: PLC0415
    from libs.pipeline.console import (  # noqa: PLC0415
        logs_on_terminal,
        person_console,
        print_log_location,
        print_problem,
        progress,
        start_spark,
        watch_spark,
    )

    console = person_console()  # the terminal, also while the JVM start points stderr at its log
    label = day.isoformat() if day else "all days"
    with progress(console, enabled=not logs_on_terminal()) as bar:
        spark = start_spark(bar, settings.spark, "batch")
        try:
            task = bar.add_task("batch", total=None, info=f"screening and loading {label}")
            try:
                with watch_spark(spark, bar, task, info=lambda: label):
                    result = execute(settings, day, spark=spark)
            except BatchRunError as failed:
                bar.update(task, total=1, completed=0, info="[red]failed[/red]")
                print_problem(console, f"{failed} (recorded in batch_runs: `claims batch status`)")
                return 1
            bar.update(task, total=1, completed=1, info="done")
        finally:
            spark.stop()
    _print_result(result, settings)
    print_log_location(Console())
    return 0


def _print_result(result: BatchResult, settings: Settings) -> None:
    from rich.console import Console  # noqa: PLC0415

    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.pipeline.console import summary_table  # noqa: PLC0415

    run = result.run
    Console().print(summary_table("daily batch", [
        ("batch run", run.batch_run_id),
        ("date", run.run_date.isoformat() if run.run_date else "all"),
        ("claims loaded", run.valid_rows),
        ("quarantined", run.quarantined_rows),
        ("alerts", result.alerts),
        (f"published to {load_topics(settings.kafka.topics_file).alerts}", result.published_alerts),
        ("warehouse rows inserted", result.counts.get("inserted")),
        ("warehouse rows updated", result.counts.get("updated")),
        ("seconds", run.duration_seconds),
        ("warehouse", settings.warehouse.duckdb_path if settings.warehouse.kind == "duckdb" else "redshift"),
    ]))


@batch_app.command("status")
def status_command(
    limit: Annotated[int, typer.Option(help="How many recent runs to show.", min=1)] = 10,
) -> None:
    """Recent batch runs from the warehouse ledger (batch_runs), newest first."""
    from libs.preflight import check_warehouse  # noqa: PLC0415
    from libs.settings import WarehouseKind, load_settings  # noqa: PLC0415
    from libs.warehouse.load import batch_runs_duckdb  # noqa: PLC0415

    settings = load_settings()
    if settings.warehouse.kind is not WarehouseKind.DUCKDB:
        typer.echo("error: batch status reads the local DuckDB warehouse; query batch_runs in Redshift", err=True)
        raise typer.Exit(2)
    check_warehouse(settings.warehouse)  # PreflightError: one line and exit 2 (apps.cli.main)
    runs = batch_runs_duckdb(settings.warehouse.duckdb_path, limit=limit)
    if not runs:
        typer.echo(f"no batch runs recorded in {settings.warehouse.duckdb_path}")
        return
    for run in runs:
        day = run.run_date.isoformat() if run.run_date else "all"
        typer.echo(f"{run.batch_run_id}  {day}  {run.status:<9}  claims {run.valid_rows}  quarantined "
                   f"{run.quarantined_rows}  {run.duration_seconds or 0:.1f}s"
                   + (f"  {run.error_message}" if run.error_message else ""))


def register(app: typer.Typer) -> None:
    """Add `claims batch` (and `claims batch status`)."""
    app.add_typer(batch_app, name="batch")
