"""Per-day tables (intake_daily, field_quality, quarantine_summary) are replaced per staged day, and eligibility
merges from a stage: a source format that disappears from a re-run day leaves no row behind, other days stay, and
re-running an unchanged day changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from libs.warehouse.load import DAY_REPLACED, load_duckdb, load_steps

NOW = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)
DAY, OTHER_DAY = date(2026, 10, 30), date(2026, 10, 29)

INTAKE = pa.schema([("intake_date", pa.date32()), ("source_format", pa.string()), ("valid_claims", pa.int64()),
                    ("quarantined_claims", pa.int64()), ("replacements", pa.int64()), ("voids", pa.int64()),
                    ("updated_at", pa.timestamp("us", tz="UTC"))])
QUALITY = pa.schema([("intake_date", pa.date32()), ("source_format", pa.string()), ("field_name", pa.string()),
                     ("valid_count", pa.int64()), ("invalid_count", pa.int64()), ("missing_count", pa.int64()),
                     ("updated_at", pa.timestamp("us", tz="UTC"))])
ELIGIBILITY = pa.schema([("member_token", pa.string()), ("payer_id", pa.string()), ("eligibility_month", pa.date32()),
                         ("age_band", pa.string()), ("gender", pa.string()), ("state", pa.string()),
                         ("source", pa.string())])


def stage(root: Path, table: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> Path:
    directory = root / table
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), directory / "part-0.parquet")
    return directory


def intake(day: date, source: str, valid: int) -> dict[str, Any]:
    return {"intake_date": day, "source_format": source, "valid_claims": valid, "quarantined_claims": 1,
            "replacements": 0, "voids": 0, "updated_at": NOW}


def quality(day: date, source: str, field: str, valid: int) -> dict[str, Any]:
    return {"intake_date": day, "source_format": source, "field_name": field, "valid_count": valid,
            "invalid_count": 0, "missing_count": 0, "updated_at": NOW}


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(path))
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_a_source_format_gone_from_a_rerun_day_leaves_no_row_and_other_days_stay(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    first = {
        "intake_daily": stage(tmp_path / "run1", "intake_daily", INTAKE, [
            intake(DAY, "x12-837p", 5), intake(DAY, "fhir-eob", 2), intake(OTHER_DAY, "fhir-eob", 7)]),
        "field_quality": stage(tmp_path / "run1", "field_quality", QUALITY, [
            quality(DAY, "x12-837p", "total_charge", 5), quality(DAY, "fhir-eob", "total_charge", 2),
            quality(OTHER_DAY, "fhir-eob", "total_charge", 7)]),
    }
    load_duckdb(warehouse, first)
    # The day is re-run after the FHIR file was found to be a test feed and removed from the lake.
    second = {
        "intake_daily": stage(tmp_path / "run2", "intake_daily", INTAKE, [intake(DAY, "x12-837p", 6)]),
        "field_quality": stage(tmp_path / "run2", "field_quality", QUALITY, [
            quality(DAY, "x12-837p", "total_charge", 6)]),
    }
    report = load_duckdb(warehouse, second)

    assert rows(warehouse, "SELECT intake_date, source_format, valid_claims FROM intake_daily ORDER BY 1, 2") == [
        (OTHER_DAY, "fhir-eob", 7), (DAY, "x12-837p", 6)]
    assert rows(warehouse, "SELECT intake_date, source_format, valid_count FROM field_quality ORDER BY 1, 2") == [
        (OTHER_DAY, "fhir-eob", 7), (DAY, "x12-837p", 6)]
    assert report.changed["intake_daily.delete"] == 1
    assert report.changed["field_quality.delete"] == 1
    assert report.changed["intake_daily.update"] == 1


def test_rerunning_an_unchanged_day_changes_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    staged = {"intake_daily": stage(tmp_path, "intake_daily", INTAKE, [intake(DAY, "x12-837p", 5)]),
              "field_quality": stage(tmp_path, "field_quality", QUALITY, [quality(DAY, "x12-837p", "payer", 5)])}
    load_duckdb(warehouse, staged)

    again = load_duckdb(warehouse, staged)

    assert again.total(".insert") == again.total(".update") == again.total(".delete") == 0


def test_eligibility_merges_from_a_stage_by_member_payer_and_month(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    month = {"member_token": "tok:v1:1:a", "payer_id": "P1", "eligibility_month": date(2026, 1, 1),
             "age_band": "65-79", "gender": "F", "state": "PA", "source": "generator"}
    staged = {"eligibility": stage(tmp_path, "eligibility", ELIGIBILITY,
                                   [month, {**month, "eligibility_month": date(2026, 2, 1)}])}

    first = load_duckdb(warehouse, staged)
    again = load_duckdb(warehouse, staged)

    assert first.changed["eligibility.insert"] == 2
    assert again.total(".insert") == again.total(".update") == 0
    assert rows(warehouse, "SELECT COUNT(*) FROM eligibility") == [(2,)]


def test_day_replace_steps_are_sql_redshift_accepts() -> None:
    steps = [step for step in load_steps(list(DAY_REPLACED)) if step.name.endswith(".delete")]

    assert {step.name for step in steps} == {f"{table}.delete" for table in DAY_REPLACED}
    for step in steps:
        assert isinstance(sqlglot.parse_one(step.sql, read="redshift"), exp.Delete), step.name
