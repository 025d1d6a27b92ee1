"""`claims analytics <mart>`, `claims screen PATH...` and `claims fraud score`: the marts as tables, fraud screens on
claim files, and the screens' precision and recall on labelled claims.

Thin: the queries are libs.analytics.queries (the API serves the same functions), the screens libs.fraud.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

analytics_app = typer.Typer(help="The analytics marts of the warehouse (built by the daily batch).",
                            no_args_is_help=True)
fraud_app = typer.Typer(help="Fraud screens: precision and recall on labelled claims.", no_args_is_help=True)
MARTS = ("daily", "pmpm", "diagnoses", "procedures", "providers", "quarantine", "quality")


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _print(rows: list[Any], title: str, as_json: bool) -> None:
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(dataclasses.asdict(row), default=_json_default) + "\n")
        return
    table = Table(title=title, header_style="bold")
    if not rows:
        Console().print(f"{title}: no rows")
        return
    columns = [field.name for field in dataclasses.fields(rows[0])]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else ("" if v is None else str(v))
                        for v in dataclasses.astuple(row)])
    Console(width=200).print(table)


@analytics_app.command("show")
def show_command(  # noqa: PLR0917  (Typer maps parameters to options)
    mart: Annotated[str, typer.Argument(help=f"One of: {', '.join(MARTS)}.")],
    payer: Annotated[str | None, typer.Option(help="pmpm: one payer id.")] = None,
    source_format: Annotated[str | None, typer.Option("--source-format", help="quality: one source format.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Print one mart as a table (or JSON lines)."""
    from libs.analytics import queries  # noqa: PLC0415
    from libs.preflight import check_warehouse  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415
    from libs.warehouse.load import connect_duckdb  # noqa: PLC0415

    if mart not in MARTS:
        typer.echo(f"error: expected a mart among {', '.join(MARTS)}, found {mart!r}", err=True)
        raise typer.Exit(2)
    filters: dict[str, Any] = {}
    if mart == "pmpm" and payer:
        filters["payer_id"] = payer
    if mart == "quality" and source_format:
        filters["source_format"] = source_format
    settings = load_settings()
    check_warehouse(settings.warehouse)  # no file: one line naming `claims batch`, exit 2 (not a new empty warehouse)
    connection = connect_duckdb(settings.warehouse.duckdb_path)
    try:
        page = queries.QUERIES[mart](connection, limit=limit, offset=offset, **filters)  # type: ignore[operator]
    except queries.AnalyticsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        connection.close()
    _print(page.rows, f"{mart} (rows {offset + 1}..{offset + len(page.rows)}{', more' if page.has_more else ''})",
           as_json)


@analytics_app.command("eligibility")
def eligibility_command(
    generated: Annotated[bool, typer.Option("--generated", help="The generator's population (with --count, --seed: "
                                            "the same as `claims produce --generated`).")] = False,
    count: Annotated[int, typer.Option(min=1, help="--generated: claims the generated run had.")] = 10_000,
    seed: Annotated[int, typer.Option(help="--generated: the generated run's seed.")] = 7,
    synpuf_beneficiary: Annotated[Path | None, typer.Option(
        "--synpuf-beneficiary", help="A DE-SynPUF beneficiary summary CSV.")] = None,
    year: Annotated[int | None, typer.Option(help="--synpuf-beneficiary: the file's year (default: from its name).")
                    ] = None,
) -> None:
    """Load member months (the PMPM denominators) into the local warehouse and rebuild the marts."""
    from libs.analytics.eligibility import (  # noqa: PLC0415
        EligibilityError,
        load_generated_eligibility,
        load_synpuf_eligibility,
    )
    from libs.settings import load_settings  # noqa: PLC0415

    if generated == (synpuf_beneficiary is not None):
        typer.echo("error: expected exactly one source, --generated or --synpuf-beneficiary FILE, found "
                   + ("both" if generated else "neither"), err=True)
        raise typer.Exit(2)
    settings = load_settings()
    try:
        if synpuf_beneficiary is not None:
            loaded = load_synpuf_eligibility(settings, synpuf_beneficiary, year)
            source = f"DE-SynPUF beneficiary file {synpuf_beneficiary.name}"
        else:
            loaded = load_generated_eligibility(settings, count, seed)
            source = f"generated population (count {count:,}, seed {seed})"
    except EligibilityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"eligibility: {loaded:,} member months from the {source} loaded into "
               f"{settings.warehouse.duckdb_path}; marts rebuilt")


@fraud_app.command("score")
def score_command(
    count: Annotated[int, typer.Option(min=1, help="Claims to generate.")] = 20000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 1,
    fraud_rate: Annotated[float, typer.Option("--fraud-rate", min=0.0, max=1.0)] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of the table.")] = False,
) -> None:
    """Generate labelled claims, screen them, print precision and recall per rule."""
    from libs.fraud.score import score  # noqa: PLC0415

    scores = score(count, seed, fraud_rate)
    if as_json:
        sys.stdout.write(json.dumps({"count": count, "seed": seed, "fraud_rate": fraud_rate,
                                     "rules": [s.to_dict() for s in scores]}) + "\n")
        return
    table = Table(title=f"fraud screens on {count:,} claims, seed {seed}, fraud rate {fraud_rate:.0%}")
    for column in ("rule", "injected", "alerted", "true positives", "recall", "precision"):
        table.add_column(column)
    for s in scores:
        recall = "-" if s.recall is None else f"{s.recall:.3f}"
        precision = "-" if s.precision is None else f"{s.precision:.3f}"
        table.add_row(s.rule, str(s.injected), str(s.alerted), str(s.true_positives), recall, precision)
    Console(width=160).print(table)


def screen_command(
    paths: Annotated[list[Path], typer.Argument(help="Claim files (any format `claims convert` reads).")],
) -> None:
    """Screen claim files with every fraud screen; alerts as JSON lines on stdout, rejections on stderr."""
    from libs.adapters.registry import read_claims  # noqa: PLC0415
    from libs.codesets import load_codesets  # noqa: PLC0415
    from libs.fraud.rules import screen_batch  # noqa: PLC0415
    from libs.model import Rejection  # noqa: PLC0415

    claims = []
    for record in read_claims(paths):
        if isinstance(record, Rejection):
            sys.stderr.write(record.model_dump_json() + "\n")
        else:
            claims.append(record)
    for alert in screen_batch(claims, load_codesets()):
        sys.stdout.write(json.dumps(alert.to_dict()) + "\n")


def register(app: typer.Typer) -> None:
    """Add `claims analytics`, `claims screen` and `claims fraud`."""
    app.add_typer(analytics_app, name="analytics")
    app.add_typer(fraud_app, name="fraud")
    app.command("screen")(screen_command)
