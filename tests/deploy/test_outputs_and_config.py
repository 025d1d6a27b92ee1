"""Stack outputs (the infra contract) and the app config rendered from them."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from libs.deploy.outputs import (
    StackOutputsError,
    check_stack_environment,
    parse_stack_outputs,
    read_outputs_file,
    read_stack_outputs,
)
from libs.deploy.render_config import ConfigRenderError, ShippedFile, render_app_config
from libs.settings import REPO_ROOT, Environment, KeyProviderKind, Settings

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:claims-dev-redshift"


def _outputs(**overrides: Any) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "app_config": {"environment": "dev", "security": {"key_provider": "kms"}, "spark": {"master": "yarn"}},
        "artifact_bucket": "claims-dev-artifacts",
        "emr_cluster_id": "j-2AXXXXXXGAPLF",
        "msk_bootstrap_brokers": "b-1.claims.kafka.us-east-1.amazonaws.com:9098",
        "redshift_cluster_identifier": "claims-dev",
        "redshift_database": "claims",
        "redshift_secret_arn": SECRET_ARN,
        "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
        "region": "us-east-1",
        "environment": "dev",
    }
    outputs.update(overrides)
    return outputs


def test_missing_and_invalid_outputs_are_named_without_their_values() -> None:
    data = _outputs(environment="qa", redshift_secret_arn=None)
    del data["emr_cluster_id"]

    with pytest.raises(StackOutputsError) as error:
        parse_stack_outputs(data, source="outputs.json")

    message = str(error.value)
    assert message.startswith("outputs.json: stack outputs do not match the deploy contract")
    assert "emr_cluster_id: Field required" in message
    assert "environment:" in message
    assert "redshift_secret_arn:" in message
    assert "qa" not in message  # values are never echoed (outputs are read with --show-secrets)


def test_outputs_file_with_broken_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text('{\n  "region": "us-east-1",\n  oops\n}', encoding="utf-8")

    with pytest.raises(StackOutputsError, match=r"outputs.json line 3 column 3: expected JSON stack outputs"):
        read_outputs_file(path)


def test_reads_outputs_through_the_pulumi_cli(tmp_path: Path) -> None:
    fake = tmp_path / "pulumi"
    (tmp_path / "out.json").write_text(json.dumps(_outputs()), encoding="utf-8")
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat {tmp_path}/out.json\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    outputs = read_stack_outputs("dev", cwd=tmp_path, pulumi=str(fake))

    assert outputs.emr_cluster_id == "j-2AXXXXXXGAPLF"
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]


def test_failing_or_missing_pulumi_cli_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\necho 'error: no stack named dev found' >&2\nexit 255\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    with pytest.raises(StackOutputsError, match=r"exited with status 255: error: no stack named dev found"):
        read_stack_outputs("dev", cwd=tmp_path, pulumi=str(fake))
    with pytest.raises(StackOutputsError, match=r"not on PATH; install it or pass --outputs FILE"):
        read_stack_outputs("dev", cwd=tmp_path, pulumi=str(tmp_path / "missing-pulumi"))


def test_stack_name_must_match_the_outputs_environment() -> None:
    outputs = parse_stack_outputs(_outputs(), source="test")

    check_stack_environment("dev", outputs)
    check_stack_environment("acme/medical-claims/dev", outputs)
    with pytest.raises(StackOutputsError, match=r"expected outputs of environment 'prod', found .* 'dev'"):
        check_stack_environment("prod", outputs)


def test_rendered_config_fills_resource_names_from_the_top_level_outputs() -> None:
    rendered = render_app_config(parse_stack_outputs(_outputs(), source="test"), shipped_files=())

    settings = rendered.settings
    assert settings.environment is Environment.DEV
    assert settings.security.environment is Environment.DEV  # PHI masking follows the stack
    assert settings.kafka.bootstrap_servers == "b-1.claims.kafka.us-east-1.amazonaws.com:9098"
    assert settings.warehouse.redshift_cluster_id == "claims-dev"
    assert settings.warehouse.redshift_secret_arn == SECRET_ARN
    assert settings.security.kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/1234abcd"
    assert settings.security.key_provider is KeyProviderKind.KMS
    assert settings.aws.artifact_bucket == "claims-dev-artifacts"
    assert Settings.model_validate(json.loads(rendered.body)) == settings


def test_rendered_config_omits_local_defaults_and_is_byte_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = parse_stack_outputs(_outputs(), source="test")
    first = render_app_config(outputs, shipped_files=())
    monkeypatch.setenv("CLAIMS__SPARK__MASTER", "local[8]")  # the deployer's environment must not leak in

    second = render_app_config(outputs, shipped_files=())

    document = json.loads(first.body)
    assert "lake" not in document  # the default is a path in this checkout, meaningless on the cluster
    assert str(REPO_ROOT) not in first.body.decode()
    assert document["spark"] == {"master": "yarn"}
    assert first.body == second.body
    assert first.digest == second.digest


def test_shipped_files_are_referenced_by_name_unless_infra_set_them(tmp_path: Path) -> None:
    topics = tmp_path / "topics.json"
    topics.write_text("{}", encoding="utf-8")
    shipped = (ShippedFile(topics, ("kafka", "topics_file")),
               ShippedFile(tmp_path / "absent.json", ("security", "phi_policy_file")))

    rendered = render_app_config(parse_stack_outputs(_outputs(), source="test"), shipped_files=shipped)

    document = json.loads(rendered.body)
    assert document["kafka"]["topics_file"] == "topics.json"
    assert "phi_policy_file" not in document["security"]


def test_secret_settings_are_written_in_clear_for_the_jobs() -> None:
    app_config = {"environment": "dev", "security": {"tokenization_secret": "synthetic-hmac-key"}}

    rendered = render_app_config(parse_stack_outputs(_outputs(app_config=app_config), source="t"), shipped_files=())

    assert json.loads(rendered.body)["security"]["tokenization_secret"] == "synthetic-hmac-key"


def test_app_config_contradicting_a_top_level_output_is_rejected() -> None:
    outputs = _outputs(app_config={"warehouse": {"redshift_cluster_id": "claims-staging"}})

    with pytest.raises(ConfigRenderError, match=r"app_config.warehouse.redshift_cluster_id is 'claims-staging' but "
                                                r"stack output redshift_cluster_identifier is 'claims-dev'"):
        render_app_config(parse_stack_outputs(outputs, source="test"), shipped_files=())


def test_invalid_app_config_names_the_field() -> None:
    outputs = _outputs(app_config={"spark": {"trigger_seconds": -1}, "kafak": {}})

    with pytest.raises(ConfigRenderError) as error:
        render_app_config(parse_stack_outputs(outputs, source="test"), shipped_files=())

    assert "app_config.spark.trigger_seconds" in str(error.value)
    assert "app_config.kafak: Extra inputs are not permitted" in str(error.value)
