"""`claims deploy` end to end against a moto server: S3 artifacts (connector jars included), Redshift Data API DDL,
EMR steps, idempotence.

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
from libs.deploy.artifacts import Artifact, ArtifactError, sha256_hex
from libs.deploy.deployer import DeployBlockedError, DeployOptions, deploy
from libs.deploy.emr_steps import JobKind
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Action, Component, DeployPlan
from libs.deploy.render_config import DEFAULT_SHIPPED_FILES
from libs.deploy.state import DeployState, state_key
from libs.settings import REPO_ROOT, Settings
from libs.warehouse.dialect import redshift_statements
from libs.warehouse.migrations import MIGRATIONS
from tests.deploy.conftest import SYNTHETIC_SPARK_JARS, Stack, write_jar

pytestmark = pytest.mark.slow


def _options(wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
             **overrides: object) -> DeployOptions:
    settings: dict[str, object] = {"skip_topics": True, "ddl_poll_seconds": 0.001, **overrides}
    return DeployOptions(stack="dev", wheel_dir=wheel_dir, job_scripts=job_scripts,
                         spark_jars_dir=spark_jars, **settings)  # type: ignore[arg-type]


def _keys(stack: Stack) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def _steps(stack: Stack) -> list[dict[str, object]]:
    return stack.client("emr").list_steps(ClusterId=stack.cluster_id)["Steps"]


def _actions(plan: DeployPlan, component: Component) -> dict[str, Action]:
    return {item.name: item.action for item in plan.by_component(component)}


def _jar_args(step: dict[str, object]) -> list[str]:
    args: list[str] = step["Config"]["Args"]  # type: ignore[index]
    assert args.count("--jars") == 1, args
    return args[args.index("--jars") + 1].split(",")


def _count_uploads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the key of every object the deploy puts (the real upload still runs)."""
    uploaded: list[str] = []
    real_upload = deployer.upload

    def upload(s3: object, bucket: str, artifact: Artifact, kms_key_arn: str | None) -> None:
        uploaded.append(artifact.key)
        real_upload(s3, bucket, artifact, kms_key_arn)  # type: ignore[arg-type]

    monkeypatch.setattr(deployer, "upload", upload)
    return uploaded


def test_first_deploy_ships_everything_and_a_second_deploy_changes_nothing(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    options = _options(prebuilt_wheel_dir, job_scripts, spark_jars)
    uploaded = _count_uploads(monkeypatch)

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

    # Connector jars: every jar of the resolved directory, once, under its content digest, encrypted like the rest.
    jar_keys = sorted(f"artifacts/jar/{sha256_hex((spark_jars / name).read_bytes())}/{name}"
                      for name in SYNTHETIC_SPARK_JARS)
    assert [k for k in keys if k.startswith("artifacts/jar/")] == jar_keys
    assert [k for k in uploaded if k.startswith("artifacts/jar/")] == sorted(jar_keys, key=lambda k: k.rsplit("/")[-1])
    assert len(uploaded) == len(set(uploaded))
    for key in jar_keys:
        head = s3.head_object(Bucket=stack.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["ContentType"] == "application/java-archive"
        assert head["Metadata"]["sha256"] == key.split("/")[2]
    jar_uris = [f"s3://{stack.bucket}/{key}" for key in sorted(jar_keys, key=lambda k: k.rsplit("/")[-1])]

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
    assert sorted(step["Name"] for step in steps) == [  # type: ignore[type-var]
        "claims-batch", "claims-lag-exporter", "claims-streaming"]
    for step in [step for step in steps if step["Name"] != "claims-lag-exporter"]:
        args = step["Config"]["Args"]  # type: ignore[index]
        assert args[0] == "spark-submit"
        assert f"s3://{stack.bucket}/{wheel_keys[0]}" in args
        assert any(f"s3://{stack.bucket}/{config_key}#app-config.json" in arg for arg in args)
        # The cluster has no route to Maven Central: exactly the uploaded jars, in file-name order, and no coordinates.
        assert _jar_args(step) == jar_uris
        assert not any(arg.startswith("--packages") or "jars.packages" in arg for arg in args)
    assert _actions(first, Component.EMR_STEP) == {"claims-lag-exporter": Action.CREATE,
                                                   "claims-streaming": Action.CREATE, "claims-batch": Action.CREATE}
    assert _actions(first, Component.STATE) == {"ledger": Action.CREATE}
    ledger = DeployState.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    assert ledger.current is not None
    assert ledger.current.jar_uris == jar_uris
    ledger_before = s3.head_object(Bucket=stack.bucket, Key=state_key("dev"))["ETag"]
    uploaded.clear()

    second = deploy(outputs, options)

    assert second.change_count == 0, second.to_dict()
    assert uploaded == []
    assert {name: _actions(second, Component.ARTIFACT)[name] for name in SYNTHETIC_SPARK_JARS} == dict.fromkeys(
        SYNTHETIC_SPARK_JARS, Action.UNCHANGED)
    assert {item.action for item in second.items} <= {Action.UNCHANGED, Action.SKIPPED}
    assert _keys(stack) == keys
    assert len(_steps(stack)) == 3
    assert s3.head_object(Bucket=stack.bucket, Key=state_key("dev"))["ETag"] == ledger_before


def test_dry_run_plans_the_first_deploy_and_changes_nothing(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    plan = deploy(read_outputs_file(stack.outputs_file),
                  _options(prebuilt_wheel_dir, job_scripts, spark_jars, dry_run=True))

    assert plan.dry_run
    shipped_files = sum(1 for f in DEFAULT_SHIPPED_FILES if f.local_path.is_file())  # topics.json, phi-policy.json
    jars = len(SYNTHETIC_SPARK_JARS)
    # wheel + 2 job scripts + shipped files + connector jars + config, every table, every migration, 2 Spark steps and
    # the lag exporter's, the ledger
    assert plan.change_count == (1 + 2 + shipped_files + jars + 1 + len(redshift_statements()) + len(MIGRATIONS)
                                 + 3 + 1)
    assert _keys(stack) == []
    assert _steps(stack) == []


def test_changed_job_script_replaces_only_its_step(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))
    job_scripts[JobKind.STREAMING].write_text('print("streaming v2")\n', encoding="utf-8")

    plan = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars, dry_run=True))

    assert _actions(plan, Component.EMR_STEP) == {"claims-lag-exporter": Action.UNCHANGED,
                                                  "claims-streaming": Action.REPLACE, "claims-batch": Action.UNCHANGED}
    assert _actions(plan, Component.ARTIFACT)["streaming job script"] is Action.CREATE
    assert _actions(plan, Component.ARTIFACT)["wheel"] is Action.UNCHANGED
    assert all(_actions(plan, Component.ARTIFACT)[name] is Action.UNCHANGED for name in SYNTHETIC_SPARK_JARS)
    assert _actions(plan, Component.STATE) == {"ledger": Action.UPDATE}


def test_a_new_connector_jar_is_planned_as_one_upload_and_replaces_both_steps(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))
    # A new `make jars` resolution: the MSK auth module in another version.
    (spark_jars / "aws-msk-iam-auth-2.2.0.jar").unlink()
    new_jar = write_jar(spark_jars / "aws-msk-iam-auth-2.3.0.jar", "2.3.0")
    new_key = f"artifacts/jar/{sha256_hex(new_jar.read_bytes())}/{new_jar.name}"

    # A dry run: moto's EMR cannot cancel steps, so the replacement itself is only planned here.
    plan = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars, dry_run=True))

    jar_items = {item.name: item for item in plan.by_component(Component.ARTIFACT) if item.name.endswith(".jar")}
    assert sorted(jar_items) == sorted([*(n for n in SYNTHETIC_SPARK_JARS if "msk" not in n), new_jar.name])
    assert jar_items[new_jar.name].action is Action.CREATE
    assert jar_items[new_jar.name].detail == f"upload s3://{stack.bucket}/{new_key}"
    assert [name for name, item in jar_items.items() if item.changes] == [new_jar.name]
    # The jars are Spark's: the exporter's install step names none of them.
    assert _actions(plan, Component.EMR_STEP) == {"claims-lag-exporter": Action.UNCHANGED,
                                                  "claims-streaming": Action.REPLACE, "claims-batch": Action.REPLACE}
    assert _actions(plan, Component.STATE) == {"ledger": Action.UPDATE}


def test_missing_connector_jars_stop_the_deploy_naming_make_jars_before_any_change(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], tmp_path: Path,
) -> None:
    empty = tmp_path / "no-jars-yet"
    empty.mkdir()

    with pytest.raises(ArtifactError, match=r"`make jars`"):
        deploy(read_outputs_file(stack.outputs_file), _options(prebuilt_wheel_dir, job_scripts, empty))

    assert _keys(stack) == []
    assert _steps(stack) == []


def test_changed_table_definition_blocks_the_deploy_before_any_change(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))
    s3 = stack.client("s3")
    ledger = DeployState.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    ledger.ddl["claims"] = "0" * 64  # as if the claims table had been created from an older definition
    s3.put_object(Bucket=stack.bucket, Key=state_key("dev"), Body=ledger.model_dump_json().encode())
    job_scripts[JobKind.BATCH].write_text('print("batch v2")\n', encoding="utf-8")
    keys_before = _keys(stack)

    with pytest.raises(DeployBlockedError) as blocked:
        deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))

    assert [item.name for item in blocked.value.plan.blocked] == ["claims"]
    assert "--schema-migrated" in blocked.value.plan.blocked[0].detail
    assert _keys(stack) == keys_before  # the new batch script was not uploaded either

    # Migration done by hand: the operator says so and the new definition is recorded.
    migrated = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars, schema_migrated=True,
                                        dry_run=True))
    assert _actions(migrated, Component.DDL)["claims"] is Action.UPDATE


def test_topics_step_passes_the_aws_replication_factor_and_reports_each_topic(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    calls = []

    def ensure_topics(settings: object, topics_file: Path, replication_factor: int | None) -> dict[str, str]:
        calls.append((settings, topics_file, replication_factor))
        return {"medical-claims-raw": "created", "medical-claims-quality": "unchanged"}

    plan = deploy(read_outputs_file(stack.outputs_file),
                  _options(prebuilt_wheel_dir, job_scripts, spark_jars, skip_topics=False),
                  topic_applier=ensure_topics)

    assert len(calls) == 1
    settings, topics_file, replication_factor = calls[0]
    assert settings.bootstrap_servers == stack.outputs["msk_bootstrap_brokers"]  # type: ignore[attr-defined]
    assert topics_file == REPO_ROOT / "configs" / "kafka" / "topics.json"
    assert replication_factor == 3
    assert _actions(plan, Component.TOPIC) == {"medical-claims-raw": Action.CREATE,
                                               "medical-claims-quality": Action.UNCHANGED}


def test_cli_deploy_twice_reports_zero_changes_the_second_time(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployer, "DEFAULT_JOB_SCRIPTS", job_scripts)
    monkeypatch.setattr(deployer, "DEFAULT_SPARK_JARS_DIR", spark_jars)
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


def test_cli_without_resolved_jars_fails_telling_to_run_make_jars(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployer, "DEFAULT_JOB_SCRIPTS", job_scripts)
    monkeypatch.setattr(deployer, "DEFAULT_SPARK_JARS_DIR", tmp_path / "jars" / "spark")

    result = CliRunner().invoke(app, ["deploy", "--stack", "dev", "--outputs", str(stack.outputs_file),
                                      "--skip-topics", "--wheel-dir", str(prebuilt_wheel_dir)])

    assert result.exit_code == 1
    assert "Run `make jars`" in " ".join(result.stderr.split())  # the console may wrap the message
    assert _keys(stack) == []
