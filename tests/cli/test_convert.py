"""`claims convert`: canonical NDJSON on stdout, rejection JSON lines on stderr, exit status 0 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from apps.cli import convert
from libs.model import Claim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _app() -> typer.Typer:
    app = typer.Typer()
    convert.register(app)

    @app.callback()
    def _root() -> None:
        """Keep `convert` a named sub-command, as in the real `claims` app."""

    return app


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(_app(), ["convert", *args])


def test_help_documents_formats_and_beneficiary_option() -> None:
    result = _invoke("--help")
    assert result.exit_code == 0
    for text in ("--format", "--beneficiary", "auto", "synpuf"):
        assert text in result.stdout


def test_claims_go_to_stdout_as_canonical_ndjson() -> None:
    result = _invoke(str(FIXTURES / "fhir" / "claim_professional.json"), str(FIXTURES / "json" / "claim.json"))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    claims = [Claim.model_validate_json(line) for line in lines]
    assert [claim.claim_id for claim in claims] == ["PCLM0001", "ICLM0001"]
    assert result.stderr == ""


def test_rejections_go_to_stderr_as_json_lines_and_exit_is_zero() -> None:
    result = _invoke(str(FIXTURES / "fhir" / "resources.ndjson"))
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2
    rejections = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["location"] for r in rejections] == ["line 2", "line 5", "line 6"]
    assert {"source", "location", "reason", "message"} <= set(rejections[0])
    assert rejections[0]["reason"] == "FHIR_MALFORMED_JSON"
    assert rejections[0]["source"]["file"].endswith("resources.ndjson")


def test_format_and_beneficiary_options_are_applied() -> None:
    synpuf = FIXTURES / "synpuf"
    result = _invoke("--format", "synpuf", "--beneficiary", str(synpuf / "beneficiary.csv"),
                     str(synpuf / "carrier.csv"))
    assert result.exit_code == 0, result.stderr
    first = Claim.model_validate_json(result.stdout.splitlines()[0])
    assert first.patient is not None
    assert first.patient.gender == "F"
    reasons = [json.loads(line)["reason"] for line in result.stderr.splitlines()]
    assert reasons.count("SYNPUF_BAD_BENEFICIARY") == 1


def test_unrecognised_input_exits_2_naming_it_and_converts_nothing(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    result = _invoke(str(FIXTURES / "json" / "claim.json"), str(other))
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "notes.txt" in line


def test_missing_input_exits_2(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "missing.837"))
    assert result.exit_code == 2
    assert "missing.837" in result.stderr


def test_unknown_format_value_is_a_usage_error() -> None:
    result = _invoke("--format", "hl7v2", str(FIXTURES / "json" / "claim.json"))
    assert result.exit_code == 2
    assert "hl7v2" in result.stderr
