"""`claims analytics show|eligibility`, `claims screen` and `claims fraud score` as a user runs them: tables and JSON
lines on stdout, errors that say what was expected, exit statuses."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from apps.cli.main import app
from libs.analytics.eligibility import EligibilityRow, load_eligibility
from libs.analytics.marts import rebuild_marts
from libs.fraud.catalog import FraudCode
from libs.model import Claim
from libs.preflight import PreflightError
from libs.warehouse.load import connect_duckdb
from tests.analytics.test_eligibility import synpuf_file
from tests.analytics.test_marts import CLAIM_COLUMNS, CLAIMS, LINES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def warehouse_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The settings' warehouse file and keyring under tmp_path (the CLI loads settings from the environment)."""
    path = tmp_path / "warehouse" / "claims.duckdb"
    monkeypatch.setenv("CLAIMS__WAREHOUSE__DUCKDB_PATH", str(path))
    monkeypatch.setenv("CLAIMS__SECURITY__LOCAL_KEY_FILE", str(tmp_path / "keys" / "keyring.json"))
    monkeypatch.setenv("CLAIMS__SECURITY__AUDIT_LOG", str(tmp_path / "audit" / "audit.jsonl"))
    return path


@pytest.fixture
def built(warehouse_path: Path) -> Path:
    """The hand-computed warehouse of tests/analytics/test_marts.py, marts built, connection closed."""
    connection = connect_duckdb(warehouse_path)
    placeholders = ", ".join("?" for _ in CLAIM_COLUMNS.split(", "))
    connection.executemany(f"INSERT INTO claims ({CLAIM_COLUMNS}) VALUES ({placeholders})", CLAIMS)
    connection.executemany("INSERT INTO claim_lines (claim_id, line_number, procedure_code, revenue_code, units, "
                           "charge) VALUES (?, ?, ?, ?, ?, ?)", LINES)
    load_eligibility(connection, [EligibilityRow(token, "P1", date(2026, 1, 1), "65-79", "F", "PA", "generator")
                                  for token in ("tokA", "tokB", "tokC", "tokD")])
    rebuild_marts(connection)
    connection.close()
    return warehouse_path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_show_prints_a_mart_as_a_table(built: Path) -> None:
    result = run("analytics", "show", "pmpm")

    assert result.exit_code == 0, result.output
    assert "pmpm (rows 1..1)" in result.stdout
    for text in ("payer_id", "billed_pmpm", "P1", "2026-01-01", "375.00", "250.00"):  # 1500/4; 1 visit * 1000/4
        assert text in result.stdout


def test_show_json_prints_one_json_line_per_row_with_iso_dates(built: Path) -> None:
    result = run("analytics", "show", "diagnoses", "--json", "--limit", "1")

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    row = json.loads(line)
    assert (row["month"], row["diagnosis_code"], row["claims"], row["rank"]) == ("2026-01-01", "E119", 2, 1)


def test_show_filters_quality_by_source_format(built: Path) -> None:
    result = run("analytics", "show", "quality", "--source-format", "fhir-eob", "--json")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the fixture has no FHIR rows


def test_show_says_which_marts_exist_and_when_none_were_built(warehouse_path: Path) -> None:
    unknown = run("analytics", "show", "members")
    no_warehouse = run("analytics", "show", "daily")
    connect_duckdb(warehouse_path).close()  # a warehouse whose marts were never built
    never_built = run("analytics", "show", "daily")

    assert unknown.exit_code == 2
    assert "expected a mart among daily, pmpm" in unknown.stderr
    assert "found 'members'" in unknown.stderr
    # No warehouse: the preflight's one line (apps/cli/main.py prints it and exits 2), no empty warehouse created.
    assert isinstance(no_warehouse.exception, PreflightError)
    assert f"expected a DuckDB warehouse at {warehouse_path}, found no file" in str(no_warehouse.exception)
    assert "`claims batch --date" in str(no_warehouse.exception)
    assert never_built.exit_code == 1
    assert "run the daily batch" in never_built.stderr


def test_eligibility_generated_fills_the_pmpm_denominators(warehouse_path: Path) -> None:
    result = run("analytics", "eligibility", "--generated", "--count", "60", "--seed", "4")

    assert result.exit_code == 0, result.output
    assert "member months from the generated population (count 60, seed 4)" in result.stdout
    shown = run("analytics", "show", "pmpm", "--json", "--limit", "1000")
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows
    assert sum(row["member_months"] for row in rows) == int(result.stdout.split()[1].replace(",", ""))


def test_eligibility_from_a_synpuf_beneficiary_file(warehouse_path: Path, tmp_path: Path) -> None:
    result = run("analytics", "eligibility", "--synpuf-beneficiary", str(synpuf_file(tmp_path)))

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("eligibility: 22 member months from the DE-SynPUF beneficiary file")


def test_eligibility_wants_exactly_one_source(warehouse_path: Path, tmp_path: Path) -> None:
    neither = run("analytics", "eligibility")
    both = run("analytics", "eligibility", "--generated", "--synpuf-beneficiary", str(synpuf_file(tmp_path)))
    unnamed = run("analytics", "eligibility", "--synpuf-beneficiary", str(synpuf_file(tmp_path, "members.csv")))

    assert (neither.exit_code, both.exit_code) == (2, 2)
    assert "found neither" in neither.stderr
    assert "found both" in both.stderr
    assert unnamed.exit_code == 1
    assert "pass the year explicitly" in unnamed.stderr


def test_screen_prints_alerts_as_json_lines_and_rejections_on_stderr(tmp_path: Path) -> None:
    claim = Claim.model_validate_json((FIXTURES / "json" / "claim.json").read_text(encoding="utf-8"))
    copy = claim.model_copy(update={"claim_id": "ICLM0001-COPY"})
    path = tmp_path / "claims.ndjson"
    path.write_text("\n".join([claim.model_dump_json(), copy.model_dump_json(), '{"claim_id": 5']) + "\n",
                    encoding="utf-8")

    result = run("screen", str(path))

    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(a["claim_id"], a["rule"]) for a in alerts} == {("ICLM0001-COPY", FraudCode.EXACT_DUPLICATE.value)}
    (rejection,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert rejection["location"] == "line 3"


def test_screen_finds_nothing_in_a_clean_file() -> None:
    result = run("screen", str(FIXTURES / "json" / "claim.json"))

    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_fraud_score_json_meets_the_targets_at_a_15_percent_fraud_rate() -> None:
    result = run("fraud", "score", "--count", "3000", "--seed", "2", "--fraud-rate", "0.15", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["count"], report["seed"], report["fraud_rate"]) == (3000, 2, 0.15)
    assert [rule["rule"] for rule in report["rules"]] == [code.value for code in FraudCode]
    scored = [rule for rule in report["rules"] if rule["injected"]]
    assert len(scored) >= 6  # most scenarios occur in 3,000 claims at 15 %
    for rule in scored:
        assert rule["true_positives"] <= min(rule["injected"], rule["alerted"])
        assert rule["recall"] >= 0.95, rule
        assert rule["precision"] >= 0.90, rule


def test_fraud_score_table_has_a_row_per_rule() -> None:
    result = run("fraud", "score", "--count", "300", "--seed", "1")

    assert result.exit_code == 0, result.output
    for header in ("rule", "injected", "recall", "precision"):
        assert header in result.stdout
    for code in FraudCode:
        assert code.value in result.stdout
