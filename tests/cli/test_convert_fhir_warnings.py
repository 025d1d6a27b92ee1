"""`claims convert --fhir-warnings json`: lenient FHIR reads report each R4 violation as a JSON line on stderr (paths,
never values), claims still convert, input order is kept across formats, and the default stays a log line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from apps.cli import convert
from libs.model import Claim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CARRIER = FIXTURES / "bluebutton" / "eob_read_carrier_v2.json"


def _invoke(*args: str) -> Result:
    app = typer.Typer()
    convert.register(app)

    @app.callback()
    def _root() -> None:
        """Keep `convert` a named sub-command."""

    return CliRunner().invoke(app, ["convert", *args])


def test_blue_button_eob_converts_and_its_warnings_are_json_lines_on_stderr() -> None:
    result = _invoke("--fhir-warnings", "json", str(CARRIER))

    assert result.exit_code == 0, result.output
    (claim,) = [Claim.model_validate_json(line) for line in result.stdout.splitlines()]
    warnings = [json.loads(line)["warning"] for line in result.stderr.splitlines()]
    assert warnings, "a Blue Button carrier EOB violates R4 cardinality (no insurer, provider or focal)"
    paths = {warning["path"] for warning in warnings}
    assert {"ExplanationOfBenefit.insurer", "ExplanationOfBenefit.provider",
            "ExplanationOfBenefit.insurance[0].focal"} <= paths
    for warning in warnings:
        assert set(warning) == {"file", "location", "path", "message"}
        assert warning["file"].endswith(CARRIER.name)
        assert claim.claim_id not in warning["message"]  # element paths only, never values from the file


def test_order_is_kept_across_formats_and_non_fhir_inputs_still_convert() -> None:
    json_claim = FIXTURES / "json" / "claim.json"

    result = _invoke("--fhir-warnings", "json", str(json_claim), str(CARRIER), str(json_claim))

    assert result.exit_code == 0, result.output
    ids = [Claim.model_validate_json(line).claim_id for line in result.stdout.splitlines()]
    assert ids[0] == ids[2] == "ICLM0001"
    assert ids[1] != "ICLM0001"


def test_by_default_warnings_are_log_lines_not_stderr_records() -> None:
    result = _invoke(str(CARRIER))

    assert result.exit_code == 0, result.output
    assert not [line for line in result.stderr.splitlines() if line.startswith('{"warning"')]


def test_an_unreadable_input_is_still_refused_before_anything_is_converted(tmp_path: Path) -> None:
    result = _invoke("--fhir-warnings", "json", str(CARRIER), str(tmp_path / "missing.json"))

    assert result.exit_code == 2
    assert result.stdout == ""
