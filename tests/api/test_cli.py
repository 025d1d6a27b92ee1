"""`claims api token`: a local bearer token the API accepts, refused outside the local environment."""

from __future__ import annotations

from typer.testing import CliRunner

from apps.cli.main import app
from libs.api.auth import LocalTokenIssuer, Principal, Role
from libs.settings import SecuritySettings, Settings


def _env(tmp_path, **extra: str) -> dict[str, str]:
    return {"CLAIMS__SECURITY__LOCAL_KEY_FILE": str(tmp_path / "keyring.json"),
            "CLAIMS__SECURITY__AUDIT_LOG": str(tmp_path / "audit.jsonl"), **extra}


def test_token_command_prints_a_token_the_api_verifies(tmp_path):
    result = CliRunner().invoke(app, ["api", "token", "--role", "ingest", "--role", "analyst", "--subject", "ci"],
                                env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    settings = Settings(security=SecuritySettings(local_key_file=tmp_path / "keyring.json",
                                                  audit_log=tmp_path / "audit.jsonl"))
    principal = LocalTokenIssuer(settings).verify(result.output.strip())
    assert principal == Principal("ci", frozenset({Role.INGEST, Role.ANALYST}))


def test_token_command_refuses_unknown_roles_and_other_environments(tmp_path):
    unknown = CliRunner().invoke(app, ["api", "token", "--role", "root"], env=_env(tmp_path))
    assert unknown.exit_code == 2
    assert "found root" in unknown.output
    deployed = CliRunner().invoke(app, ["api", "token", "--role", "ingest"],
                                  env=_env(tmp_path, CLAIMS__ENVIRONMENT="staging"))
    assert deployed.exit_code == 2
    assert "local environment only" in deployed.output
