"""`claims deploy` and the lag exporter's install step, end to end against a moto server.

moto cannot run a step (nor cancel one): what is proved is what the deploy asks EMR for. The first deploy adds the
step, ahead of the Spark steps, naming the release's wheel, config and shipped files; a second deploy of the same
release submits nothing, also after the install step completed; a new release adds a step that supersedes the
completed one, naming the new artifacts, and the deploy after it submits nothing again.

Marked slow like the other end-to-end deploy tests (the session builds the real project wheel once).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from libs.deploy.deployer import DeployOptions, deploy
from libs.deploy.emr_steps import EXPORTER_STEP_NAME, JobKind, exporter_unit
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Action, Component
from libs.deploy.render_config import render_app_config
from libs.deploy.state import DeployState, state_key
from tests.deploy.conftest import REGION, Stack

pytestmark = pytest.mark.slow


def _options(wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path) -> DeployOptions:
    return DeployOptions(stack="dev", wheel_dir=wheel_dir, job_scripts=job_scripts, spark_jars_dir=spark_jars,
                         skip_topics=True, ddl_poll_seconds=0.001)


def _steps(stack: Stack) -> list[dict[str, object]]:
    """Every step of the cluster, newest first (as EMR lists them)."""
    return stack.client("emr").list_steps(ClusterId=stack.cluster_id)["Steps"]


def _exporter_steps(stack: Stack) -> list[dict[str, object]]:
    return [step for step in _steps(stack) if step["Name"] == EXPORTER_STEP_NAME]


def _finish_every_step(stack: Stack) -> None:
    """What EMR does with a one-shot step within seconds (moto never does): mark every step COMPLETED."""
    for step in emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[stack.cluster_id].steps:
        step.state = "COMPLETED"


def _exporter_action(plan: object) -> tuple[Action, str]:
    (item,) = [i for i in plan.by_component(Component.EMR_STEP) if i.name == EXPORTER_STEP_NAME]  # type: ignore[attr-defined]
    return item.action, item.detail


def test_the_deploy_installs_the_releases_exporter_once_and_replaces_it_with_a_new_release(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    options = _options(prebuilt_wheel_dir, job_scripts, spark_jars)

    first = deploy(outputs, options)

    ledger = DeployState.model_validate_json(
        stack.client("s3").get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    assert ledger.current is not None
    (step,) = _exporter_steps(stack)
    args: list[str] = step["Config"]["Args"]  # type: ignore[index]
    assert step["Config"]["Jar"] == "command-runner.jar"  # type: ignore[index]
    assert step["ActionOnFailure"] == "CONTINUE"
    assert args[:2] == ["bash", "-c"]
    # The very artifacts the ledger records as the current release.
    assert args[4:6] == [ledger.current.wheel_uri, ledger.current.config_uri]
    assert args[6] == exporter_unit(render_app_config(outputs).settings)
    assert dict(zip(args[8::2], args[7::2], strict=True)) == ledger.current.file_uris
    request_order = [s["Name"] for s in reversed(_steps(stack))]  # oldest first: the order of the request
    assert request_order[0] == EXPORTER_STEP_NAME  # takes a step slot before the stream holds one for good
    assert _exporter_action(first)[0] is Action.CREATE

    second = deploy(outputs, options)

    assert second.change_count == 0, second.to_dict()
    assert len(_exporter_steps(stack)) == 1

    _finish_every_step(stack)  # the install completed (moto also "completes" the Spark jobs: they are re-added)
    third = deploy(outputs, options)

    assert _exporter_action(third) == (Action.UNCHANGED, f"keep {step['Id']}")
    assert len(_exporter_steps(stack)) == 1

    # A new release: another config (the stack's trigger interval changed).
    document = json.loads(stack.outputs_file.read_text(encoding="utf-8"))
    document["app_config"]["spark"]["trigger_seconds"] = 30
    stack.outputs_file.write_text(json.dumps(document), encoding="utf-8")
    new_outputs = read_outputs_file(stack.outputs_file)
    _finish_every_step(stack)  # nothing left to cancel: moto cannot cancel steps

    fourth = deploy(new_outputs, options)

    newest, previous = _exporter_steps(stack)
    action, detail = _exporter_action(fourth)
    assert action is Action.REPLACE
    assert detail == f"supersede {previous['Id']}; added {newest['Id']}"
    assert previous["Id"] == step["Id"]
    new_args: list[str] = newest["Config"]["Args"]  # type: ignore[index]
    assert new_args[5] != args[5]  # the new release's config
    assert new_args[5].endswith("/app-config.json")
    assert new_args[4] == args[4]  # same wheel

    fifth = deploy(new_outputs, options)

    assert _exporter_action(fifth)[0] is Action.UNCHANGED
    assert len(_exporter_steps(stack)) == 2
