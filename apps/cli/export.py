"""`claims export --deidentified` from the lake: the checks, progress and summary around libs.batch.export.

The command itself is registered with the other PHI operations (apps/cli/phi.py); this module is what it runs when
no --input is given and the claims come from the Delta silver table: the table (and the keyring that protected it)
are checked before Spark starts (one line and exit 2), a progress line counts records while they are written, and a
summary table ends the command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from libs.phi.export import ExportSummary
from libs.preflight import check_keyring, check_lake
from libs.settings import Settings

if TYPE_CHECKING:
    from libs.phi.deidentify import Deidentifier


def check_silver_export(settings: Settings) -> None:
    """Before Spark starts: the silver table and its events ledger exist, and the keyring that protected them."""
    check_lake(settings.lake, ("silver", "claim_events"))
    check_keyring(settings.security, protects=settings.lake.root)


def export_silver_with_progress(settings: Settings, out: Path, deidentifier: Deidentifier) -> ExportSummary:
    """Export the current claims of silver de-identified to `out`, showing progress; prints the summary table."""
    from libs.batch.export import export_silver_deidentified  # noqa: PLC0415  (PySpark only for this path)
    from libs.lake import LakeTables  # noqa: PLC0415
    from libs.pipeline.console import (  # noqa: PLC0415
        logs_on_terminal,
        person_console,
        progress,
        start_spark,
        summary_table,
        watch_spark,
    )

    console = person_console()  # the terminal, also while the JVM start points stderr at its log
    started = time.perf_counter()
    tables = LakeTables.from_settings(settings.lake)
    with progress(console, enabled=not logs_on_terminal()) as bar:
        spark = start_spark(bar, settings.spark, "export")
        try:
            task = bar.add_task("export", total=None, info=f"current claims of {tables.silver}")
            with watch_spark(spark, bar, task, info=lambda: f"to {out}"):
                summary = export_silver_deidentified(spark, tables, out, deidentifier)
            bar.update(task, total=summary.read or 1, completed=summary.read or 1,
                       info=f"{summary.written:,} written")
        finally:
            spark.stop()
    Console().print(summary_table("de-identified export", [
        ("claims read", summary.read),
        ("written", summary.written),
        ("rejected", len(summary.rejections)),
        ("output", out),
        ("rejections", out.with_name(out.name + ".rejects.ndjson") if summary.rejections else None),
        ("seconds", round(time.perf_counter() - started, 1)),
    ]))
    return summary
