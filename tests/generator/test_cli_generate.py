"""`claims generate` writes the two NDJSON files, shows counts and refuses bad settings with a clear message."""

from __future__ import annotations

from datetime import date

import orjson
import typer
from typer.testing import CliRunner

from apps.cli import generate
from libs.generator import Label
from libs.model import Claim


def _app() -> typer.Typer:
    app = typer.Typer()
    generate.register(app)

    @app.command("noop")  # a second command keeps Typer from collapsing the app into `generate` itself
    def noop() -> None:
        """Unused."""

    return app


def test_generate_writes_claims_and_labels(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(_app(), ["generate", "--count", "250", "--seed", "3", "--out", str(out),
                                         "--defect-rate", "0.2", "--fraud-rate", "0.1", "--anchor-date", "2026-06-30"])
    assert result.exit_code == 0, result.output
    claims = [Claim.model_validate_json(line) for line in (out / "claims.ndjson").read_bytes().splitlines()]
    labels = [Label.from_dict(orjson.loads(line)) for line in (out / "labels.ndjson").read_bytes().splitlines()]
    assert len(claims) == 250
    assert labels
    assert {label.claim_id for label in labels} <= {claim.claim_id for claim in claims}
    assert max(claim.source.received_date for claim in claims if claim.source.received_date) <= date(2026, 6, 30)
    assert "claims/s" in result.output
    assert "250" in result.output


def test_generate_rejects_a_malformed_anchor_date(tmp_path):
    result = CliRunner().invoke(_app(), ["generate", "--count", "5", "--seed", "1", "--out", str(tmp_path),
                                         "--anchor-date", "31/10/2026"])
    assert result.exit_code == 2
    assert "--anchor-date must be YYYY-MM-DD, found '31/10/2026'" in result.output


def test_generate_rejects_rates_that_add_up_past_one(tmp_path):
    result = CliRunner().invoke(_app(), ["generate", "--count", "5", "--seed", "1", "--out", str(tmp_path),
                                         "--defect-rate", "0.7", "--fraud-rate", "0.5"])
    assert result.exit_code == 2
    assert "must not exceed 1" in result.output
