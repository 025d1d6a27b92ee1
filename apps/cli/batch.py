"""`claims batch [--date D | --all]` and `claims batch status`: run the daily batch job, read its ledger.

Thin: the job is libs.batch.job (through apps.batch.main), the ledger is the warehouse's batch_runs table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

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
    from apps.batch.main import run, yesterday_utc  # noqa: PLC0415  (imports PySpark only when the job runs)
    from libs.phi.logging import configure_logging  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    configure_logging()
    target = None if all_days else (day.date() if day is not None else yesterday_utc())
    raise typer.Exit(run(load_settings(), target))


@batch_app.command("status")
def status_command(
    limit: Annotated[int, typer.Option(help="How many recent runs to show.", min=1)] = 10,
) -> None:
    """Recent batch runs from the warehouse ledger (batch_runs), newest first."""
    from libs.settings import WarehouseKind, load_settings  # noqa: PLC0415
    from libs.warehouse.load import batch_runs_duckdb  # noqa: PLC0415

    settings = load_settings()
    if settings.warehouse.kind is not WarehouseKind.DUCKDB:
        typer.echo("error: batch status reads the local DuckDB warehouse; query batch_runs in Redshift", err=True)
        raise typer.Exit(2)
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
