"""`claims deploy` end to end against a moto server: S3 artifacts, Redshift Data API DDL, EMR steps, idempotence.

Marked slow: the session builds the real project wheel once (pip fetches the build backend, 10-20 s).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apps.cli.main import app
from libs.deploy import deployer
from libs.deploy.deployer import DeployBlockedError, DeployOptions, deploy
from libs.deploy.emr_steps import JobKind
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Action, Component, DeployPlan
from libs.deploy.render_config import DEFAULT_SHIPPED_FILES
from libs.deploy.state import DeployState, state_key
from libs.settings import REPO_ROOT, Settings
from libs.warehouse.dialect import redshift_statements
from tests.deploy.conftest import Stack

pytestmark = pytest.mark.slow


def _options(wheel_dir: Path, job_scripts: dict[JobKind, Path], **overrides: object) -> DeployOptions:
    settings: dict[str, object] = {"skip_topics": True, "ddl_poll_seconds": 0.001, **overrides}
    return DeployOptions(stack="dev", wheel_dir=wheel_dir, job_scripts=job_scripts, **settings)  # type: ignore[arg-type]


def _keys(stack: Stack) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def _steps(stack: Stack) -> list[dict[str, object]]:
    return stack.client("emr").list_steps(ClusterId=stack.cluster_id)["Steps"]


def _actions(plan: DeployPlan, component: Component) -> dict[str, Action]:
    return {item.name: item.action for item in plan.by_component(component)}


def test_first_deploy_ships_everything_and_a_second_deploy_changes_nothing(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    options = _options(prebuilt_wheel_dir, job_scripts)

    first = deploy(outputs, options)

    keys = _keys(stack)
    wheel_keys = [k for k in keys if k.startswith("artifacts/wheel/") and k.endswith(".whl")]
    assert len(wheel_keys) == 1
    assert any(k.startswith("artifacts/job/") and k.endswith("/streaming_main.py") for k in keys)
    assert any(k.startswith("artifacts/job/") and k.endswith("/batch_main.py") for k in keys)
    assert any(k.startswith("artifacts/file/") and k.endswith("/topics.json") for k in keys)
    config_key = next(k for k in keys if k.startswith("artifacts/config/"))
    s3 = stack.client("s3")
    config_object = s3.get_object(Bucket=stack.bucket, Key=config_key)
    assert config_object["ServerSideEncryption"] == "aws:kms"
    body = config_object["Body"].read().decode("utf-8")
    rendered = Settings.model_validate(json.loads(body))
    assert rendered.aws.endpoint_url == stack.endpoint
    assert rendered.warehouse.redshift_cluster_id == stack.redshift_cluster
    assert rendered.kafka.topics_file == Path("topics.json")
    assert str(REPO_ROOT) not in body  # no path of the deployer's checkout leaks into the cluster config

    # DDL: one Data API statement per table, each polled to FINISHED.
    redshift_data = stack.client("redshift-data")
    ddl_items = first.by_component(Component.DDL)
    assert [item.name for item in ddl_items] == [s.table for s in redshift_statements()]
    for item in ddl_items:
        assert item.action is Action.CREATE
        statement_id = re.search(r"statement (\S+) FINISHED", item.detail)
        assert statement_id is not None, item.detail
        described = redshift_data.describe_statement(Id=statement_id.group(1))
        assert described["Status"] == "FINISHED"
        assert described["ClusterIdentifier"] == stack.redshift_cluster
        assert described["QueryString"].startswith(f"CREATE TABLE IF NOT EXISTS {item.name} ")
        assert "SORTKEY" in described["QueryString"]

    steps = _steps(stack)
    assert sorted(step["Name"] for step in steps) == ["claims-batch", "claims-streaming"]  # type: ignore[type-var]
    for step in steps:
        args = step["Config"]["Args"]  # type: ignore[index]
        assert args[0] == "spark-submit"
        assert f"s3://{stack.bucket}/{wheel_keys[0]}" in args
        assert any(f"s3://{stack.bucket}/{config_key}#app-config.json" in arg for arg in args)
    assert _actions(first, Component.EMR_STEP) == {"claims-streaming": Action.CREATE, "claims-batch": Action.CREATE}
    assert _actions(first, Component.STATE) == {"ledger": Action.CREATE}
    ledger_before = s3.head_object(Bucket=stack.bucket, Key=state_key("dev"))["ETag"]

    second = deploy(outputs, options)

    assert second.change_count == 0, second.to_dict()
    assert {item.action for item in second.items} <= {Action.UNCHANGED, Action.SKIPPED}
    assert _keys(stack) == keys
    assert len(_steps(stack)) == 2
    assert s3.head_object(Bucket=stack.bucket, Key=state_key("dev"))["ETag"] == ledger_before


def test_dry_run_plans_the_first_deploy_and_changes_nothing(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
) -> None:
    plan = deploy(read_outputs_file(stack.outputs_file), _options(prebuilt_wheel_dir, job_scripts, dry_run=True))

    assert plan.dry_run
    shipped_files = sum(1 for f in DEFAULT_SHIPPED_FILES if f.local_path.is_file())  # topics.json, phi-policy.json
    # wheel + 2 job scripts + shipped files + config, every table, 2 steps, the ledger
    assert plan.change_count == 1 + 2 + shipped_files + 1 + len(redshift_statements()) + 2 + 1
    assert _keys(stack) == []
    assert _steps(stack) == []


def test_changed_job_script_replaces_only_its_step(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, _options(prebuilt_wheel_dir, job_scripts))
    job_scripts[JobKind.STREAMING].write_text('print("streaming v2")\n', encoding="utf-8")

    plan = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, dry_run=True))

    assert _actions(plan, Component.EMR_STEP) == {"claims-streaming": Action.REPLACE, "claims-batch": Action.UNCHANGED}
    assert _actions(plan, Component.ARTIFACT)["streaming job script"] is Action.CREATE
    assert _actions(plan, Component.ARTIFACT)["wheel"] is Action.UNCHANGED
    assert _actions(plan, Component.STATE) == {"ledger": Action.UPDATE}


def test_changed_table_definition_blocks_the_deploy_before_any_change(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, _options(prebuilt_wheel_dir, job_scripts))
    s3 = stack.client("s3")
    ledger = DeployState.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    ledger.ddl["claims"] = "0" * 64  # as if the claims table had been created from an older definition
    s3.put_object(Bucket=stack.bucket, Key=state_key("dev"), Body=ledger.model_dump_json().encode())
    job_scripts[JobKind.BATCH].write_text('print("batch v2")\n', encoding="utf-8")
    keys_before = _keys(stack)

    with pytest.raises(DeployBlockedError) as blocked:
        deploy(outputs, _options(prebuilt_wheel_dir, job_scripts))

    assert [item.name for item in blocked.value.plan.blocked] == ["claims"]
    assert "--schema-migrated" in blocked.value.plan.blocked[0].detail
    assert _keys(stack) == keys_before  # the new batch script was not uploaded either

    # Migration done by hand: the operator says so and the new definition is recorded.
    migrated = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, schema_migrated=True, dry_run=True))
    assert _actions(migrated, Component.DDL)["claims"] is Action.UPDATE


def test_topics_step_passes_the_aws_replication_factor_and_reports_each_topic(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
) -> None:
    calls = []

    def ensure_topics(settings: object, topics_file: Path, replication_factor: int | None) -> dict[str, str]:
        calls.append((settings, topics_file, replication_factor))
        return {"medical-claims-raw": "created", "medical-claims-quality": "unchanged"}

    plan = deploy(read_outputs_file(stack.outputs_file),
                  _options(prebuilt_wheel_dir, job_scripts, skip_topics=False), topic_applier=ensure_topics)

    assert len(calls) == 1
    settings, topics_file, replication_factor = calls[0]
    assert settings.bootstrap_servers == stack.outputs["msk_bootstrap_brokers"]  # type: ignore[attr-defined]
    assert topics_file == REPO_ROOT / "configs" / "kafka" / "topics.json"
    assert replication_factor == 3
    assert _actions(plan, Component.TOPIC) == {"medical-claims-raw": Action.CREATE,
                                               "medical-claims-quality": Action.UNCHANGED}


def test_cli_deploy_twice_reports_zero_changes_the_second_time(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployer, "DEFAULT_JOB_SCRIPTS", job_scripts)
    arguments = ["deploy", "--stack", "dev", "--outputs", str(stack.outputs_file), "--skip-topics",
                 "--wheel-dir", str(prebuilt_wheel_dir), "--json"]
    runner = CliRunner()

    first = runner.invoke(app, arguments)
    second = runner.invoke(app, arguments)

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["changes"] > 0
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["changes"] == 0


def test_cli_refuses_outputs_of_another_environment(stack: Stack, prebuilt_wheel_dir: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "--stack", "prod", "--outputs", str(stack.outputs_file),
                                      "--skip-topics", "--wheel-dir", str(prebuilt_wheel_dir)])

    assert result.exit_code == 1
    assert "expected outputs of environment 'prod'" in result.stderr
    assert _keys(stack) == []
