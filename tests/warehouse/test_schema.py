"""The warehouse schema: DuckDB executes the source, sqlglot transpiles it to valid Redshift, no PHI in clear."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from libs.model.phi import phi_fields
from libs.warehouse.dialect import (
    REDSHIFT_LAYOUT,
    SchemaError,
    load_schema,
    redshift_statements,
    statements,
    table_columns,
)

EXPECTED_TABLES = {"claims", "claim_lines", "providers", "quality_metrics", "quarantine_summary", "batch_runs",
                   "intake_daily", "field_quality", "eligibility", "ref_procedures", "ref_specialties",
                   "schema_migrations"}


def test_duckdb_executes_the_source_twice_without_change() -> None:
    connection = duckdb.connect()
    connection.execute(load_schema())
    connection.execute(load_schema())  # IF NOT EXISTS everywhere: applying twice changes nothing

    tables = {row[0] for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == EXPECTED_TABLES
    columns = connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'claims' ORDER BY ordinal_position"
    ).fetchall()
    assert [c[0] for c in columns] == table_columns()["claims"]


def test_duckdb_accepts_a_row_with_defaults_and_enforces_the_key() -> None:
    connection = duckdb.connect()
    for statement in statements():
        connection.execute(statement.duckdb_sql)
    connection.execute("INSERT INTO claim_lines (claim_id, line_number, charge) VALUES ('CLM-1', 1, 125.50)")

    assert connection.execute("SELECT loaded_at IS NOT NULL FROM claim_lines").fetchone() == (True,)
    with pytest.raises(duckdb.ConstraintException):
        connection.execute("INSERT INTO claim_lines (claim_id, line_number) VALUES ('CLM-1', 1)")


def test_every_table_transpiles_to_redshift_with_widths_and_layout() -> None:
    by_table = {s.table: s for s in redshift_statements()}

    assert set(by_table) == EXPECTED_TABLES == set(REDSHIFT_LAYOUT)
    claims = by_table["claims"].redshift_sql
    assert claims.startswith("CREATE TABLE IF NOT EXISTS claims (claim_id VARCHAR(64) NOT NULL")
    assert "VARCHAR(MAX)" not in claims  # widths survive the DuckDB reader
    assert "DEFAULT GETDATE()" in claims
    assert claims.endswith("DISTSTYLE KEY DISTKEY(claim_id) COMPOUND SORTKEY(service_date_from, claim_id)")
    assert "DOUBLE PRECISION" in by_table["quality_metrics"].redshift_sql
    assert "DISTSTYLE ALL" in by_table["providers"].redshift_sql
    for statement in by_table.values():
        reparsed = sqlglot.parse_one(statement.redshift_sql, read="redshift")  # valid Redshift syntax
        assert isinstance(reparsed, exp.Create)
        assert reparsed.args.get("exists")


def test_digests_are_stable_and_change_with_the_definition() -> None:
    original = statements()
    widened = statements(load_schema().replace("claim_id                  VARCHAR(64)",
                                                "claim_id                  VARCHAR(80)"))

    assert [s.digest for s in original] == [s.digest for s in statements()]
    assert original[0].digest != widened[0].digest
    assert [s.digest for s in original[1:]] == [s.digest for s in widened[1:]]


def test_no_phi_field_is_stored_in_clear() -> None:
    # Leaf names of PHI fields (member_id, first_name, birth_date, ssn, line1, postal_code, ...) and the
    # patient_/subscriber_ prefixed forms a loader would use for them.
    leaves = {field.path.rsplit(".", 1)[-1] for field in phi_fields()}
    forbidden = leaves | {f"{who}_{leaf}" for who in ("patient", "subscriber", "member") for leaf in leaves}

    for table, columns in table_columns().items():
        assert not forbidden & set(columns), f"{table} stores PHI in clear: {sorted(forbidden & set(columns))}"
    claims = set(table_columns()["claims"])
    assert {"member_token", "phi_ciphertext", "phi_key_id"} <= claims


def test_a_statement_without_if_not_exists_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"statement 2 \(table t2\): expected CREATE TABLE IF NOT EXISTS"):
        statements("CREATE TABLE IF NOT EXISTS claims (claim_id VARCHAR);\nCREATE TABLE t2 (a INT);")


def test_a_non_create_statement_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"statement 1: expected CREATE TABLE IF NOT EXISTS, found DROP"):
        statements("DROP TABLE claims;")


def test_a_table_without_redshift_layout_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"table audit_log has no entry in REDSHIFT_LAYOUT"):
        statements("CREATE TABLE IF NOT EXISTS audit_log (a INT);")
