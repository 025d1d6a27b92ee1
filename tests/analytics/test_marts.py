"""Every mart on a small hand-computed warehouse; the query functions' filters and paging; the SQL transpiles for
Redshift and Spark; rebuilding twice gives the same marts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlglot

from libs.analytics import queries
from libs.analytics.eligibility import EligibilityRow, load_eligibility, months_between
from libs.analytics.marts import mart_names, marts, rebuild_marts
from libs.warehouse.load import connect_duckdb

CLAIM_COLUMNS = ("claim_id, claim_type, frequency_code, is_voided, rendering_npi, payer_id, place_of_service, "
                 "type_of_bill, service_date_from, service_date_to, principal_diagnosis_code, diagnosis_system, "
                 "line_count, total_charge, paid_amount, member_token, fraud_codes, source_format, ingest_date, "
                 "em_level")
# Payer P1, January 2026: 4 member months (members A, B, C, D), 3 claims standing (C4 is voided):
#   C1 office visit E/M level 5 (billed 200, paid 150), C2 inpatient admission (TOB 111, billed 1000, paid 800),
#   C3 ED visit (revenue 0450, billed 300, paid 100); C4 voided (billed 999) counts nowhere.
CLAIMS = [
    ("C1", "professional", "1", False, "1000000001", "P1", "11", None, date(2026, 1, 5), date(2026, 1, 5),
     "E119", "ICD-10-CM", 1, 200, 150, "tokA", "FRAUD_UPCODING", "x12-837p", date(2026, 2, 1), 5),
    ("C2", "institutional", "1", False, None, "P1", None, "111", date(2026, 1, 10), date(2026, 1, 12),
     "I10", "ICD-10-CM", 1, 1000, 800, "tokB", None, "x12-837i", date(2026, 2, 1), None),
    ("C3", "institutional", "7", False, None, "P1", None, "131", date(2026, 1, 20), date(2026, 1, 20),
     "E119", "ICD-10-CM", 1, 300, 100, "tokC", None, "x12-837i", date(2026, 2, 1), None),
    ("C4", "professional", "1", True, "1000000001", "P1", "11", None, date(2026, 1, 21), date(2026, 1, 21),
     "J45", "ICD-10-CM", 1, 999, 0, "tokD", None, "x12-837p", date(2026, 2, 1), 3),
]
LINES = [("C1", 1, "99215", None, 1, 200), ("C2", 1, None, "0120", 2, 1000), ("C3", 1, "99283", "0450", 1, 300),
         ("C4", 1, "99213", None, 1, 999)]


def fill_hand_warehouse(connection: duckdb.DuckDBPyConnection) -> None:
    """The hand-computed claims, lines, eligibility, intake, field quality, reasons and reference rows above."""
    placeholders = ", ".join("?" for _ in CLAIM_COLUMNS.split(", "))
    connection.executemany(f"INSERT INTO claims ({CLAIM_COLUMNS}) VALUES ({placeholders})", CLAIMS)
    connection.executemany("INSERT INTO claim_lines (claim_id, line_number, procedure_code, revenue_code, units, "
                           "charge) VALUES (?, ?, ?, ?, ?, ?)", LINES)
    rows = [EligibilityRow(token, "P1", date(2026, 1, 1), "65-79", "F", "PA", "generator")
            for token in ("tokA", "tokB", "tokC", "tokD")]
    rows.append(EligibilityRow("tokA", "P1", date(2026, 2, 1), "65-79", "F", "PA", "generator"))
    load_eligibility(connection, rows)
    connection.execute("INSERT INTO intake_daily VALUES ('2026-02-01', 'x12-837p', 2, 1, 0, 1, now()), "
                       "('2026-02-01', 'x12-837i', 2, 0, 1, 0, now())")
    connection.execute("INSERT INTO field_quality VALUES ('2026-02-01', 'x12-837p', 'billing_provider.npi', 2, 1, 0, "
                       "now()), ('2026-02-02', 'x12-837p', 'billing_provider.npi', 1, 0, 1, now())")
    connection.execute("INSERT INTO quarantine_summary VALUES ('2026-02-01', 'NPI_FORMAT', 'error', 'x12-837p', 1, "
                       "NULL, NULL, now())")
    connection.execute("INSERT INTO providers (npi, taxonomy, specialty, claim_count) VALUES "
                       "('1000000001', '207Q00000X', 'family medicine', 2)")
    connection.execute("INSERT INTO ref_specialties VALUES ('207Q00000X', 'family medicine', 0.05)")


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = connect_duckdb(tmp_path / "warehouse.duckdb")
    fill_hand_warehouse(connection)
    rebuild_marts(connection)
    yield connection
    connection.close()


def test_pmpm_and_per_1000_member_months_by_hand(warehouse):
    january = queries.pmpm(warehouse, payer_id="P1", month_from=date(2026, 1, 1), month_to=date(2026, 1, 1)).rows
    (row,) = january
    assert row.member_months == 4
    assert row.claims == 3  # the voided claim is not counted
    assert row.billed == 1500.0  # 200 + 1000 + 300
    assert row.paid == 1050.0  # 150 + 800 + 100
    assert row.billed_pmpm == pytest.approx(375.0)  # 1500 / 4
    assert row.paid_pmpm == pytest.approx(262.5)  # 1050 / 4
    assert (row.em_visits, row.admissions, row.ed_visits) == (1, 1, 1)
    for per_1000 in (row.em_visits_per_1000, row.admissions_per_1000, row.ed_visits_per_1000):
        assert per_1000 == pytest.approx(250.0)  # 1 * 1000 / 4
    (february,) = queries.pmpm(warehouse, month_from=date(2026, 2, 1)).rows
    assert (february.member_months, february.claims, february.paid_pmpm) == (1, 0, 0.0)


def test_daily_kpis(warehouse):
    (day,) = queries.daily_kpis(warehouse).rows
    assert (day.intake_date, day.claims, day.quarantined, day.replacements, day.voids) == (
        date(2026, 2, 1), 4, 1, 1, 1)
    assert day.valid_ratio == pytest.approx(0.8)  # 4 / (4 + 1)
    assert day.billed_amount == 2499.0  # every loaded claim of the day, the voided one included


def test_top_diagnoses_and_procedures(warehouse):
    diagnoses = queries.top_diagnoses(warehouse, month=date(2026, 1, 1)).rows
    assert [(d.diagnosis_code, d.claims, d.rank) for d in diagnoses] == [("E119", 2, 1), ("I10", 1, 2)]
    assert diagnoses[0].billed == 500.0
    procedures = queries.top_procedures(warehouse, top=2).rows
    assert [(p.procedure_code, p.lines) for p in procedures] == [("99215", 1), ("99283", 1)]


def test_provider_profile_against_the_specialty(warehouse):
    (profile,) = queries.provider_profiles(warehouse, npi="1000000001").rows
    assert (profile.claims, profile.members, profile.billed, profile.em_visits) == (1, 1, 200.0, 1)
    assert profile.level5_share == pytest.approx(1.0)
    assert profile.expected_level5_share == pytest.approx(0.05)
    assert profile.alerted_claims == 1
    assert profile.specialty == "family medicine"


def test_quarantine_trend_and_data_quality(warehouse):
    (count,) = queries.quarantine_trend(warehouse, reason_code="NPI_FORMAT").rows
    assert (count.summary_date, count.claim_count) == (date(2026, 2, 1), 1)
    (field,) = queries.data_quality(warehouse, source_format="x12-837p").rows
    assert (field.valid_count, field.invalid_count, field.missing_count) == (3, 1, 1)
    assert field.valid_share == pytest.approx(0.6)


def test_paging_and_bad_arguments(warehouse):
    first = queries.top_diagnoses(warehouse, limit=1)
    second = queries.top_diagnoses(warehouse, limit=1, offset=1)
    assert first.has_more
    assert not second.has_more
    assert first.rows[0] != second.rows[0]
    with pytest.raises(queries.AnalyticsError, match="limit"):
        queries.pmpm(warehouse, limit=0)


def test_rebuilding_twice_gives_the_same_marts(warehouse):
    before = {name: warehouse.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() for name in mart_names()}
    rebuild_marts(warehouse)
    after = {name: warehouse.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() for name in mart_names()}
    assert before == after


def test_no_mart_has_a_phi_or_token_column(warehouse):
    for name in mart_names():
        columns = [row[0] for row in warehouse.execute(f"DESCRIBE {name}").fetchall()]
        allowed = ("members", "member_months", "billed_per_member")
        assert not [c for c in columns if "member" in c and c not in allowed], (name, columns)


def test_missing_marts_are_reported(tmp_path: Path):
    connection = connect_duckdb(tmp_path / "empty.duckdb")
    with pytest.raises(queries.AnalyticsError, match="run the daily batch"):
        queries.pmpm(connection)
    connection.close()


@pytest.mark.parametrize("dialect", ["redshift", "spark"])
def test_every_mart_transpiles_and_parses_back(dialect: str):
    for mart in marts():
        sqlglot.parse_one(mart.sql(dialect), read=dialect)
    assert marts()[0].redshift_rebuild()[0].startswith("DROP TABLE IF EXISTS")


def test_months_between_spans_year_ends():
    assert months_between(date(2025, 11, 20), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert months_between(date(2026, 2, 1), date(2026, 1, 1)) == []
