"""The `claims reveal / export / keys / audit` commands, run through Typer against a temporary keyring."""

from __future__ import annotations

from pathlib import Path

import boto3
import orjson
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from apps.cli.phi import register
from libs.phi.protector import PhiProtector
from libs.settings import load_settings
from tests.factories import make_professional_claim
from tests.phi.conftest import make_marker_claim


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("CLAIMS__SECURITY__LOCAL_KEY_FILE", str(tmp_path / "keys" / "keyring.json"))
    monkeypatch.setenv("CLAIMS__SECURITY__AUDIT_LOG", str(tmp_path / "audit" / "audit.jsonl"))
    monkeypatch.delenv("CLAIMS_CONFIG", raising=False)
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def silver(tmp_path: Path, cli: typer.Typer) -> Path:
    protector = PhiProtector.from_settings(load_settings())
    path = tmp_path / "silver" / "part-0.ndjson"
    path.parent.mkdir()
    records = [protector.protect(make_marker_claim()), protector.protect(make_professional_claim(claim_id="P2"))]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_reveal_by_claim_id_prints_masked_values_outside_production_and_audits(cli: typer.Typer, silver: Path,
                                                                               tmp_path: Path):
    code, out, _ = _run(cli, "reveal", "--claim-id", "PCLM0001", "--source", str(silver.parent),
                        "--fields", "patient.last_name,patient.birth_date", "--actor", "alice",
                        "--role", "phi-reader", "--reason", "SIU case 7")
    assert code == 0
    output = orjson.loads(out)
    assert output["masked"] is True
    assert output["values"] == {"patient.last_name": "Z.", "patient.birth_date": "1933"}
    assert b'"decision":"allowed"' in (tmp_path / "audit" / "audit.jsonl").read_bytes()


def test_reveal_in_production_prints_plaintext(cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        monkeypatch.setenv("CLAIMS__SECURITY__KEY_PROVIDER", "kms")  # production refuses the local keyring
        monkeypatch.setenv("CLAIMS__SECURITY__KMS_KEY_ID", key_id)
        monkeypatch.setenv("CLAIMS__SECURITY__TOKENIZATION_SECRET", "test-tokenization-secret")
        record = PhiProtector.from_settings(load_settings()).protect(make_professional_claim(claim_id="P2"))
        claim_file = tmp_path / "claim.json"
        claim_file.write_bytes(orjson.dumps(record))
        monkeypatch.setenv("CLAIMS__SECURITY__ENVIRONMENT", "prod")
        code, out, _ = _run(cli, "reveal", "--claim-file", str(claim_file), "--fields", "patient.first_name",
                            "--actor", "alice", "--role", "privacy-officer", "--reason", "audit")
    assert code == 0
    assert orjson.loads(out) == {"claim_id": "P2", "environment": "prod", "masked": False,
                                 "values": {"patient.first_name": "ALEX"}}


def test_reveal_with_a_disallowed_role_exits_3_and_is_audited(cli: typer.Typer, silver: Path, tmp_path: Path):
    code, out, err = _run(cli, "reveal", "--claim-file", str(silver), "--claim-id", "PCLM0001", "--fields",
                          "patient.last_name", "--actor", "eve", "--role", "analyst", "--reason", "curious")
    assert code == 3
    assert out == ""
    assert "refused" in err
    assert b'"decision":"denied"' in (tmp_path / "audit" / "audit.jsonl").read_bytes()


def test_reveal_of_an_unknown_claim_exits_2(cli: typer.Typer, silver: Path):
    code, _, err = _run(cli, "reveal", "--claim-id", "NOPE", "--source", str(silver), "--fields",
                        "patient.last_name", "--actor", "a", "--role", "privacy-officer", "--reason", "r")
    assert code == 2
    assert "no protected record with claim_id NOPE" in err


def test_audit_verify_reports_ok_then_the_edited_line(cli: typer.Typer, silver: Path, tmp_path: Path):
    for _ in range(2):
        _run(cli, "reveal", "--claim-file", str(silver), "--claim-id", "P2", "--fields", "patient.last_name",
             "--actor", "a", "--role", "privacy-officer", "--reason", "r")
    code, out, _ = _run(cli, "audit", "verify")
    assert code == 0
    assert "ok: 2 audit records" in out
    log = tmp_path / "audit" / "audit.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"actor":"a"', b'"actor":"b"', 1))
    code, _, err = _run(cli, "audit", "verify")
    assert code == 1
    assert "audit.jsonl:1" in err


def test_keys_rotate_then_status_shows_the_new_active_version(cli: typer.Typer):
    code, out, _ = _run(cli, "keys", "rotate")
    assert code == 0
    assert "encryption key version 2 is now active" in out
    code, out, _ = _run(cli, "keys", "rotate", "--kind", "tokenization")
    assert code == 0
    assert "tokenization key version 2" in out
    code, out, _ = _run(cli, "keys", "status")
    assert "tokenization: active version 2, held [1, 2]" in out
    assert "encryption: active version 2, held [1, 2]" in out


def test_export_deidentified_writes_safe_harbor_ndjson(cli: typer.Typer, silver: Path, tmp_path: Path):
    out_file = tmp_path / "export" / "deid.ndjson"
    code, _, err = _run(cli, "export", "--deidentified", "--input", str(silver.parent), "--out", str(out_file))
    assert code == 0
    assert "wrote 2 de-identified records" in err
    text = out_file.read_text()
    assert "ZZMARKER" not in text
    assert "PCLM0001" not in text
    assert len(text.splitlines()) == 2


def test_export_without_the_deidentified_flag_is_refused(cli: typer.Typer, silver: Path, tmp_path: Path):
    code, _, err = _run(cli, "export", "--input", str(silver), "--out", str(tmp_path / "x.ndjson"))
    assert code == 2
    assert "--deidentified" in err
