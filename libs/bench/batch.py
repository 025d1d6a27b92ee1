# ruff: noqa: S608  (table names come from TABLES, paths from the bench work dir)
"""Bench stage: the daily batch's marts in Spark against DuckDB running the same marts' SQL on the same Parquet.

Why this comparison (issue 11, item 5): the marts are written once (libs/analytics/sql/marts.sql) and transpiled;
DuckDB on one machine is the reference for how fast that SQL can run on the data, and the batch must stay within 3x
of it. Both engines read the same Parquet files (the warehouse tables of `count` generated claims, with member
months), in the same run, on the same machine.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from libs.analytics.marts import marts
from libs.generator import GeneratorConfig, generate_claims

TABLES = ("claims", "claim_lines", "eligibility", "intake_daily", "field_quality", "quarantine_summary", "providers",
          "ref_specialties")
TARGET_RATIO = 3.0


def _write_inputs(directory: Path, count: int, seed: int) -> None:
    """The warehouse tables of `count` generated claims as Parquet (one directory per table)."""
    from libs.warehouse.load import connect_duckdb  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    connection = connect_duckdb(directory / "inputs.duckdb")
    claims: list[tuple[object, ...]] = []
    lines: list[tuple[object, ...]] = []
    months: set[tuple[str, str, date]] = set()
    for claim, _labels in generate_claims(GeneratorConfig(count=count, seed=seed)):
        member = claim.member_key() or "unknown"
        payer = claim.payer.payer_id if claim.payer and claim.payer.payer_id else "unknown"
        first = claim.service_date_from
        claims.append((claim.claim_id, claim.claim_type.value, claim.frequency_code, False,
                       claim.rendering_provider.npi if claim.rendering_provider else None, payer,
                       claim.place_of_service, claim.type_of_bill, first, claim.service_date_to,
                       claim.diagnoses[0].code if claim.diagnoses else None, len(claim.lines), claim.total_charge,
                       claim.paid_amount, member, "synthetic", first))
        lines.extend((claim.claim_id, line.line_number, line.procedure_code, line.revenue_code, line.units,
                      line.charge) for line in claim.lines)
        if first is not None:
            months.add((member, payer, first.replace(day=1)))
    connection.executemany(
        "INSERT OR REPLACE INTO claims (claim_id, claim_type, frequency_code, is_voided, rendering_npi, payer_id, "
        "place_of_service, type_of_bill, service_date_from, service_date_to, principal_diagnosis_code, line_count, "
        "total_charge, paid_amount, member_token, source_format, ingest_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", claims)
    connection.executemany("INSERT OR REPLACE INTO claim_lines (claim_id, line_number, procedure_code, revenue_code, "
                           "units, charge) VALUES (?, ?, ?, ?, ?, ?)", lines)
    connection.executemany("INSERT OR REPLACE INTO eligibility (member_token, payer_id, eligibility_month, source) "
                           "VALUES (?, ?, ?, 'generator')", sorted(months))
    for table in TABLES:
        connection.execute(f"COPY {table} TO '{directory / table}.parquet' (FORMAT PARQUET)")
    connection.close()


def run_duckdb(directory: Path) -> float:
    """Seconds for DuckDB to compute every mart from the Parquet files."""
    connection = duckdb.connect()
    for table in TABLES:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{directory / table}.parquet')")
    started = time.perf_counter()
    for mart in marts():
        connection.execute(f"CREATE TABLE {mart.name} AS {mart.select_sql}")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def run_spark(spark: Any, directory: Path) -> float:
    """Seconds for Spark to compute every mart (the same SQL, transpiled) from the Parquet files and write it."""
    for table in TABLES:
        spark.read.parquet(str(directory / f"{table}.parquet")).createOrReplaceTempView(table)
    started = time.perf_counter()
    for mart in marts():
        spark.sql(mart.sql("spark")).write.mode("overwrite").parquet(str(directory / "spark" / mart.name))
    return time.perf_counter() - started


def batch_vs_duckdb(spark: Any, work_dir: Path, count: int = 1_000_000, seed: int = 7) -> dict[str, Any]:
    """Generate `count` claims, stage them as Parquet, time both engines; the figures for the bench report."""
    directory = work_dir / "batch-marts"
    _write_inputs(directory, count, seed)
    duckdb_seconds = run_duckdb(directory)
    spark_seconds = run_spark(spark, directory)
    ratio = spark_seconds / duckdb_seconds if duckdb_seconds > 0 else float("inf")
    return {"count": count, "spark_seconds": round(spark_seconds, 3), "duckdb_seconds": round(duckdb_seconds, 3),
            "ratio": round(ratio, 2), "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO}
