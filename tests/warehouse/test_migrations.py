"""A warehouse created before issue 11 (claims without the analytics columns) upgrades in place and loads again; a
new warehouse records the migrations as its baseline; the Redshift text of each migration parses."""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlglot

from libs.warehouse.dialect import table_columns
from libs.warehouse.load import connect_duckdb
from libs.warehouse.migrations import MIGRATIONS

OLD_CLAIMS = """CREATE TABLE claims (claim_id VARCHAR(64) NOT NULL, claim_type VARCHAR(16) NOT NULL,
    frequency_code VARCHAR(1) NOT NULL, original_claim_id VARCHAR(64), is_voided BOOLEAN NOT NULL DEFAULT FALSE,
    billing_npi VARCHAR(10), rendering_npi VARCHAR(10), attending_npi VARCHAR(10), referring_npi VARCHAR(10),
    facility_npi VARCHAR(10), payer_id VARCHAR(80), place_of_service VARCHAR(2), type_of_bill VARCHAR(4),
    service_date_from DATE, service_date_to DATE, admission_date DATE, discharge_date DATE,
    principal_diagnosis_code VARCHAR(8), diagnosis_system VARCHAR(10), diagnosis_codes VARCHAR(512),
    drg_code VARCHAR(4), line_count INTEGER NOT NULL, total_charge DECIMAL(14, 2), allowed_amount DECIMAL(14, 2),
    paid_amount DECIMAL(14, 2), patient_gender VARCHAR(1), patient_state VARCHAR(2), member_token VARCHAR(64),
    subscriber_member_token VARCHAR(64), phi_ciphertext VARCHAR(4096), phi_key_id VARCHAR(256),
    warning_codes VARCHAR(512), fraud_codes VARCHAR(256), source_format VARCHAR(24) NOT NULL,
    source_file VARCHAR(512), source_locator VARCHAR(128), received_date DATE, kafka_topic VARCHAR(249),
    kafka_partition INTEGER, kafka_offset BIGINT, batch_run_id VARCHAR(64),
    loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (claim_id))"""


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()]


def test_an_old_warehouse_upgrades_keeps_its_rows_and_matches_a_new_one(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute(OLD_CLAIMS)
    old.execute("INSERT INTO claims (claim_id, claim_type, frequency_code, line_count, source_format) "
                "VALUES ('C1', 'professional', '1', 1, 'json')")
    old.close()
    upgraded = connect_duckdb(path)
    assert _columns(upgraded, "claims") == table_columns()["claims"]
    assert upgraded.execute("SELECT claim_id, age_band FROM claims").fetchall() == [("C1", None)]
    versions = [row[0] for row in upgraded.execute("SELECT version FROM schema_migrations").fetchall()]
    assert versions == [m.version for m in MIGRATIONS]
    upgraded.close()
    again = connect_duckdb(path)  # a second open runs nothing twice
    assert again.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)
    again.close()
    fresh = connect_duckdb(tmp_path / "new.duckdb")
    assert _columns(fresh, "claims") == table_columns()["claims"]
    assert fresh.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)
    fresh.close()


def test_migrations_transpile_to_redshift():
    for migration in MIGRATIONS:
        for sql in migration.redshift_sql():
            parsed = sqlglot.parse_one(sql, read="redshift")
            assert parsed.key == "alter"
        assert "VARCHAR(8)" in " ".join(migration.redshift_sql())
