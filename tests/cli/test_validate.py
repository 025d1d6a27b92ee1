"""`claims validate`: one JSON line per claim on stdout, rejections and a summary on stderr, exit 2 on bad inputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from apps.cli import validate as validate_cli
from libs.model import Diagnosis, DiagnosisSystem, Rejection, Source, SourceFormat
from tests.factories import make_institutional_claim, make_professional_claim

HISTORICAL = make_professional_claim(
    claim_id="HIST1",
    service_date_from=date(2006, 10, 3),
    service_date_to=date(2006, 10, 3),
    diagnoses=[Diagnosis(code="0340", system=DiagnosisSystem.ICD9CM, qualifier="BK")],
    lines=[line.model_copy(update={"service_date_from": date(2006, 10, 3), "service_date_to": date(2006, 10, 3),
                                   "diagnosis_pointers": [1]})
           for line in make_professional_claim().lines],
)
REJECTION = Rejection(source=Source(format=SourceFormat.X12_837P, file="in.837"), location="segment 37 (CLM)",
                      reason="X12_TRUNCATED", message="expected SE; found end of file")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test host for the command group."""

    validate_cli.register(app)
    return app


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.837"
    path.write_text("ISA*stub", encoding="utf-8")
    return path


@pytest.fixture
def stub_reader(monkeypatch):
    """Replace the adapter registry with records chosen by the test; remembers how it was called."""
    calls: list[tuple[list[Path], str, Path | None]] = []
    records: list = []

    def reader(paths, input_format, beneficiary):
        calls.append((paths, input_format, beneficiary))
        yield from records

    monkeypatch.setattr(validate_cli, "adapter_reader", reader)
    return records, calls


def _lines(stdout: str) -> list[dict]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def test_one_json_line_per_claim_rejections_on_stderr_and_exit_0(input_file, stub_reader):
    records, _ = stub_reader
    records += [make_professional_claim(), REJECTION, make_institutional_claim(claim_id="BAD", total_charge=Decimal(1))]
    result = CliRunner().invoke(_app(), ["validate", str(input_file), "--as-of", "2026-11-30"])
    assert result.exit_code == 0, result.stderr
    lines = _lines(result.stdout)
    assert [(line["claim_id"], line["status"]) for line in lines] == [("PCLM0001", "valid"), ("BAD", "invalid")]
    assert lines[1]["issues"] == [{"code": "TOTAL_CHARGE_MISMATCH", "severity": "error", "field": "total_charge",
                                   "message": lines[1]["issues"][0]["message"]}]
    rejection = orjson.loads(result.stderr.splitlines()[0])
    assert (rejection["reason"], rejection["location"]) == ("X12_TRUNCATED", "segment 37 (CLM)")
    for label in ("claims", "valid", "invalid", "rejections", "TOTAL_CHARGE_MISMATCH"):
        assert label in result.stderr


def test_as_of_judges_a_historical_file_as_of_its_receipt(input_file, stub_reader):
    records, _ = stub_reader
    records.append(HISTORICAL)
    then = CliRunner().invoke(_app(), ["validate", str(input_file), "--as-of", "2006-11-01"])
    assert _lines(then.stdout)[0]["status"] == "valid"
    today = CliRunner().invoke(_app(), ["validate", str(input_file)])
    codes = {issue["code"] for issue in _lines(today.stdout)[0]["issues"]}
    assert {"DATE_TOO_OLD", "TIMELY_FILING_EXCEEDED"} <= codes


def test_format_and_beneficiary_file_reach_the_adapters(input_file, stub_reader, tmp_path):
    _, calls = stub_reader
    beneficiary = tmp_path / "bene.csv"
    beneficiary.write_text("DESYNPUF_ID\n", encoding="utf-8")
    args = ["validate", str(input_file), "--format", "synpuf", "--beneficiary", str(beneficiary)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0
    assert calls == [([input_file], "synpuf", beneficiary)]


def test_missing_input_exits_2_naming_it(tmp_path, stub_reader):
    missing = tmp_path / "nope.837"
    result = CliRunner().invoke(_app(), ["validate", str(missing)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"claims validate: cannot read {missing}: no such file or directory"


def test_input_error_from_the_adapters_exits_2_with_one_line(input_file, monkeypatch):
    def reader(paths, input_format, beneficiary):
        raise validate_cli.InputError(f"{paths[0]}: not a claim file")
        yield  # pragma: no cover

    monkeypatch.setattr(validate_cli, "adapter_reader", reader)
    result = CliRunner().invoke(_app(), ["validate", str(input_file)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"claims validate: {input_file}: not a claim file"]


def test_bad_as_of_is_a_usage_error(input_file, stub_reader):
    result = CliRunner().invoke(_app(), ["validate", str(input_file), "--as-of", "30/11/2026"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr


def test_unknown_format_is_a_usage_error(input_file, stub_reader):
    result = CliRunner().invoke(_app(), ["validate", str(input_file), "--format", "csv"])
    assert result.exit_code == 2


class TestWithTheRealAdapters:
    """End to end through libs.adapters.registry (skipped until the adapters exist)."""

    @pytest.fixture(autouse=True)
    def _registry(self):
        pytest.importorskip("libs.adapters.registry")

    def test_canonical_ndjson_validates(self, tmp_path):
        path = tmp_path / "claims.ndjson"
        claims = [make_professional_claim(), make_institutional_claim(claim_id="ICLM0002", lines=[])]
        path.write_text("".join(claim.model_dump_json() + "\n" for claim in claims), encoding="utf-8")
        result = CliRunner().invoke(_app(), ["validate", str(path), "--as-of", "2026-11-30"])
        assert result.exit_code == 0, result.stderr
        assert [(line["claim_id"], line["status"]) for line in _lines(result.stdout)] == [
            ("PCLM0001", "valid"), ("ICLM0002", "invalid")]

    def test_unrecognised_input_exits_2(self, tmp_path):
        path = tmp_path / "notes.txt"
        path.write_text("hello\n", encoding="utf-8")
        result = CliRunner().invoke(_app(), ["validate", str(path)])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
        assert str(path) in result.stderr
