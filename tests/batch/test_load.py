"""The warehouse loader: DuckDB merges are idempotent, supersessions apply, and the Redshift SQL is well-formed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from libs.warehouse.dialect import table_columns
from libs.warehouse.load import (
    SUPERSESSIONS,
    BatchRun,
    WarehouseLoadError,
    batch_runs_duckdb,
    load_duckdb,
    load_steps,
    record_run_duckdb,
    redshift_load_sql,
)

NOW = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)


def claim_row(claim_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(table_columns()["claims"])
    row.update(claim_id=claim_id, claim_type="professional", frequency_code="1", is_voided=False,
               billing_npi="1234567893", service_date_from=date(2026, 9, 1), service_date_to=date(2026, 9, 1),
               line_count=1, total_charge=Decimal("120.00"), member_token="tok:v1:1:abc", source_format="synthetic",
               batch_run_id="run-1", loaded_at=NOW)
    row.update(overrides)
    return row


def line_row(claim_id: str, line_number: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(table_columns()["claim_lines"])
    row.update(claim_id=claim_id, line_number=line_number, procedure_code="99213", charge=Decimal("120.00"),
               rendering_npi="1234567893", loaded_at=NOW)
    row.update(overrides)
    return row


def provider_row(npi: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(table_columns()["providers"])
    row.update(npi=npi, name="EXAMPLE CLINIC", entity_type="2", claim_count=99, updated_at=NOW)
    return row


ARROW_TYPES = {"claims": {"total_charge": pa.decimal128(14, 2), "line_count": pa.int32(), "is_voided": pa.bool_()},
               "claim_lines": {"charge": pa.decimal128(14, 2), "line_number": pa.int32()},
               "providers": {"claim_count": pa.int64()}}


def stage(root: Path, table: str, rows: list[dict[str, Any]]) -> Path:
    """A Parquet stage directory like the batch job writes (typed so that all-null columns still have a type)."""
    columns = table_columns()[table] if table != SUPERSESSIONS else ["claim_id", "frequency_code"]
    types = ARROW_TYPES.get(table, {})
    fields = []
    for column in columns:
        sample = next((r[column] for r in rows if r.get(column) is not None), None)
        if column in types:
            fields.append(pa.field(column, types[column]))
        elif isinstance(sample, datetime):
            fields.append(pa.field(column, pa.timestamp("us", tz="UTC")))
        elif isinstance(sample, date):
            fields.append(pa.field(column, pa.date32()))
        else:
            fields.append(pa.field(column, pa.string()))
    directory = root / table
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), directory / "part-0.parquet")
    return directory


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(path)) as connection:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                for table in ("claims", "claim_lines", "providers")}


def test_loading_the_same_stage_twice_changes_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    staged = {
        "claims": stage(tmp_path / "s1", "claims", [claim_row("C1"), claim_row("C2")]),
        "claim_lines": stage(tmp_path / "s1", "claim_lines", [line_row("C1", 1), line_row("C2", 1),
                                                              line_row("C2", 2, rendering_npi="1245319599")]),
        "providers": stage(tmp_path / "s1", "providers", [provider_row("1234567893"), provider_row("1245319599")]),
    }
    first = load_duckdb(warehouse, staged)
    before = snapshot(warehouse)
    second = load_duckdb(warehouse, dict(staged))

    assert first.changed["claims.insert"] == 2
    assert first.changed["claim_lines.insert"] == 3
    assert second.total(".insert") == second.total(".update") == second.total(".delete") == 0
    assert second.changed["providers.rollup"] == 0
    assert snapshot(warehouse) == before
    with duckdb.connect(str(warehouse)) as connection:
        counts = dict(connection.execute("SELECT npi, claim_count FROM providers").fetchall())
    assert counts == {"1234567893": 2, "1245319599": 1}  # recomputed over the warehouse, not the staged 99


def test_a_changed_claim_updates_its_row_and_replaces_its_lines(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    load_duckdb(warehouse, {
        "claims": stage(tmp_path / "s1", "claims", [claim_row("C1", line_count=2)]),
        "claim_lines": stage(tmp_path / "s1", "claim_lines", [line_row("C1", 1), line_row("C1", 2)]),
    })
    report = load_duckdb(warehouse, {
        "claims": stage(tmp_path / "s2", "claims", [claim_row("C1", total_charge=Decimal("80.00"),
                                                               batch_run_id="run-2")]),
        "claim_lines": stage(tmp_path / "s2", "claim_lines", [line_row("C1", 1, charge=Decimal("80.00"))]),
    })

    assert report.changed["claims.update"] == 1
    assert report.changed["claim_lines.delete"] == 1  # line 2 is gone from the corrected claim
    with duckdb.connect(str(warehouse)) as connection:
        assert connection.execute("SELECT total_charge, batch_run_id FROM claims").fetchall() == [
            (Decimal("80.00"), "run-2")]
        assert connection.execute("SELECT line_number, charge FROM claim_lines").fetchall() == [(1, Decimal("80.00"))]


def test_supersessions_delete_replaced_claims_and_flag_voided_ones(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    load_duckdb(warehouse, {
        "claims": stage(tmp_path / "s1", "claims", [claim_row("OLD"), claim_row("GONE"), claim_row("KEEP")]),
        "claim_lines": stage(tmp_path / "s1", "claim_lines", [line_row("OLD", 1), line_row("GONE", 1)]),
    })
    supersessions = stage(tmp_path / "s2", SUPERSESSIONS, [{"claim_id": "OLD", "frequency_code": "7"},
                                                           {"claim_id": "GONE", "frequency_code": "8"}])
    report = load_duckdb(warehouse, {SUPERSESSIONS: supersessions})
    again = load_duckdb(warehouse, {SUPERSESSIONS: supersessions})

    assert report.changed["claims.delete"] == 1
    assert report.changed["claims.void"] == 1
    assert again.total(".delete") == again.changed["claims.void"] == 0
    with duckdb.connect(str(warehouse)) as connection:
        assert connection.execute("SELECT claim_id, is_voided FROM claims ORDER BY claim_id").fetchall() == [
            ("GONE", True), ("KEEP", False)]
        assert connection.execute("SELECT claim_id FROM claim_lines").fetchall() == [("GONE",)]


def test_a_failed_load_rolls_back_and_names_the_step(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    good = stage(tmp_path / "s1", "claims", [claim_row("C1")])
    # Two staged lines with the same key: the insert violates the primary key after claims were merged.
    bad_lines = stage(tmp_path / "s1", "claim_lines", [line_row("C1", 1), line_row("C1", 1)])

    with pytest.raises(WarehouseLoadError, match=r"step claim_lines\.insert"):
        load_duckdb(warehouse, {"claims": good, "claim_lines": bad_lines})
    with duckdb.connect(str(warehouse)) as connection:
        assert connection.execute("SELECT count(*) FROM claims").fetchone() == (0,)


def test_batch_runs_row_is_upserted_and_listed_newest_first(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    older = BatchRun("batch-1", "batch", "succeeded", started_at=datetime(2026, 10, 30, 2), run_date=date(2026, 10, 29))
    run = BatchRun("batch-2", "batch", "running", started_at=datetime(2026, 10, 31, 2), run_date=date(2026, 10, 30))
    record_run_duckdb(warehouse, older)
    record_run_duckdb(warehouse, run)
    run.status, run.valid_rows, run.error_message = "failed", 12, "ValueError: it's broken"  # quote survives
    record_run_duckdb(warehouse, run)

    runs = batch_runs_duckdb(warehouse)
    assert [(r.batch_run_id, r.status, r.run_date) for r in runs] == [
        ("batch-2", "failed", date(2026, 10, 30)), ("batch-1", "succeeded", date(2026, 10, 29))]
    assert runs[0].valid_rows == 12
    assert runs[0].error_message == "ValueError: it's broken"


def test_redshift_load_is_copy_parquet_then_the_same_merge_as_duckdb() -> None:
    run = BatchRun("batch-2026-10-30-x", "batch", "succeeded", started_at=datetime(2026, 10, 31, 2),
                   run_date=date(2026, 10, 30), valid_rows=5)
    staged = {"claims": "s3://lake/warehouse_stage/run/claims", "claim_lines": "s3://lake/warehouse_stage/run/lines",
              SUPERSESSIONS: "s3://lake/warehouse_stage/run/supersessions"}
    steps = redshift_load_sql(staged, "arn:aws:iam::123456789012:role/copy", run)
    names = [s.name for s in steps]

    assert names[:6] == ["claims.stage", "claims.copy", "claim_lines.stage", "claim_lines.copy",
                         "supersessions.stage", "supersessions.copy"]
    by_name = {s.name: s.sql for s in steps}
    assert by_name["claims.stage"] == "CREATE TEMP TABLE stage_claims (LIKE claims)"
    copy = by_name["claims.copy"]
    assert copy.startswith(f"COPY stage_claims ({', '.join(table_columns()['claims'])}) FROM "
                           "'s3://lake/warehouse_stage/run/claims/' IAM_ROLE")
    assert copy.endswith("FORMAT AS PARQUET")
    assert [s.sql for s in steps[6:-2]] == [s.sql for s in load_steps(list(staged))]
    assert "IS DISTINCT FROM" not in " ".join(s.sql for s in steps)  # Redshift lacks it
    assert names[-2:] == ["batch_runs.delete", "batch_runs.insert"]
    for step in steps:
        if step.name.endswith((".copy", ".stage")):
            continue  # COPY and CREATE ... (LIKE) are Redshift-only syntax sqlglot does not model
        parsed = sqlglot.parse_one(step.sql, read="redshift")
        assert isinstance(parsed, exp.Update | exp.Insert | exp.Delete), step.name


def test_redshift_stage_must_be_on_s3() -> None:
    run = BatchRun("r", "batch", "succeeded", started_at=datetime(2026, 10, 31, 2))
    with pytest.raises(WarehouseLoadError, match="expected an s3:// prefix"):
        redshift_load_sql({"claims": "/tmp/lake/claims"}, "arn:aws:iam::1:role/x", run)
