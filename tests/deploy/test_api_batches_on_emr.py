"""`POST /v1/batches` in AWS: the API's batch runner submits the deployed release's batch job as an EMR step and
follows it, against a moto server.

A real `claims deploy` writes the ledger first; then the runner (its real spawned child process, talking to the
moto server over HTTP) adds the step. moto never runs a step, so the test moves it through RUNNING and COMPLETED (or
FAILED) the way EMR would, and checks the job follows. Marked slow like the other end-to-end deploy tests.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from libs.api.batches import BatchJob, BatchRunner, BatchStatus
from libs.api.emr_batches import MAX_DESCRIBE_FAILURES, EmrBatchTarget, follow_step, step_name_for
from libs.deploy.deployer import DeployOptions, deploy
from libs.deploy.emr_steps import JobKind
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Component
from libs.deploy.render_config import render_app_config
from libs.deploy.state import DeployState, state_key
from libs.settings import Settings
from tests.deploy.conftest import REGION, Stack

pytestmark = pytest.mark.slow


def _no_preflight(_settings: Settings, _day: date | None) -> None:
    """The batch's preflight reaches MSK, which moto has no data plane for (the preflight has tests of its own)."""


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _moto_step(stack: Stack, step_id: str) -> object:
    (step,) = [s for s in emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[stack.cluster_id].steps
               if s.id == step_id]
    return step


def _deployed(stack: Stack, wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path) -> Settings:
    outputs = read_outputs_file(stack.outputs_file)
    deploy(outputs, DeployOptions(stack="dev", wheel_dir=wheel_dir, job_scripts=job_scripts,
                                  spark_jars_dir=spark_jars, skip_topics=True, ddl_poll_seconds=0.001))
    return render_app_config(outputs).settings


def test_a_batch_asked_for_over_http_runs_as_a_step_of_the_deployed_release(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    settings = _deployed(stack, prebuilt_wheel_dir, job_scripts, spark_jars)
    assert settings.aws.emr_cluster_id == stack.cluster_id  # filled from the stack output by the deploy's render
    assert BatchRunner(settings, check=_no_preflight)._target == EmrBatchTarget()  # AWS: an EMR step
    release = DeployState.model_validate_json(stack.client("s3").get_object(
        Bucket=stack.bucket, Key=state_key("dev"))["Body"].read()).current
    assert release is not None

    runner = BatchRunner(settings, target=EmrBatchTarget(poll_seconds=0.1), check=_no_preflight)
    try:
        job = runner.submit(date(2026, 2, 2), requested_by="operator-1")
        _wait(lambda: job.emr_step_id is not None, "the step to be submitted")
        step = stack.client("emr").describe_step(ClusterId=stack.cluster_id, StepId=job.emr_step_id)["Step"]
        args = step["Config"]["Args"]
        assert step["Name"] == step_name_for(date(2026, 2, 2)) == "claims-batch-api-2026-02-02"
        assert args[-3:] == [release.job_uris["batch"], "--date", "2026-02-02"]
        assert args[args.index("--jars") + 1] == ",".join(release.jar_uris)
        assert args[args.index("--py-files") + 1] == release.wheel_uri
        assert job.status is BatchStatus.QUEUED  # EMR has not started it yet

        moto_step = _moto_step(stack, job.emr_step_id)
        moto_step.state = "RUNNING"  # type: ignore[attr-defined]
        _wait(lambda: job.status is BatchStatus.RUNNING, "the job to follow the step to RUNNING")
        moto_step.state = "COMPLETED"  # type: ignore[attr-defined]
        _wait(lambda: not job.active, "the job to end")
        assert (job.status, job.error) == (BatchStatus.SUCCEEDED, None)

        failing = runner.submit(date(2026, 2, 3), requested_by="operator-1")
        _wait(lambda: failing.emr_step_id is not None, "the second step to be submitted")
        broken = _moto_step(stack, failing.emr_step_id)
        broken.last_state_change_reason = "Step failed with exitCode 1"  # type: ignore[attr-defined]
        broken.state = "FAILED"  # type: ignore[attr-defined]
        _wait(lambda: not failing.active, "the failed job to end")
        assert failing.status is BatchStatus.FAILED
        assert failing.error == (f"EMR step {failing.emr_step_id} on {stack.cluster_id} FAILED: "
                                 "Step failed with exitCode 1")
        assert failing.as_dict()["emr_step_id"] == failing.emr_step_id

        # The deploy's reconciliation matches its own step names only: a redeploy with an API step still PENDING
        # (a deploy would cancel a pending step it owned) plans nothing for it.
        pending = runner.submit(date(2026, 2, 4), requested_by="operator-1")
        _wait(lambda: pending.emr_step_id is not None, "the third step to be submitted")
        plan = deploy(read_outputs_file(stack.outputs_file),
                      DeployOptions(stack="dev", wheel_dir=prebuilt_wheel_dir, job_scripts=job_scripts,
                                    spark_jars_dir=spark_jars, skip_topics=True, dry_run=True))
        details = [f"{item.name}: {item.detail}" for item in plan.by_component(Component.EMR_STEP)]
        assert details
        assert not [detail for detail in details if pending.emr_step_id in detail or "claims-batch-api" in detail]
    finally:
        runner.close()


def test_a_step_whose_state_cannot_be_read_fails_the_job_instead_of_following_it_forever() -> None:
    class Unreachable:
        calls = 0

        def describe_step(self, **_: object) -> dict[str, object]:
            Unreachable.calls += 1
            raise ConnectionError

    receiver, sender = multiprocessing.Pipe(duplex=False)
    follow_step(Unreachable(), "j-1", "s-1", sender, poll_seconds=0, sleep=lambda _s: None)  # type: ignore[arg-type]
    (message,) = [receiver.recv() for _ in range(1)]
    assert Unreachable.calls == MAX_DESCRIBE_FAILURES
    assert message[0] == "failed"
    assert message[2].startswith("EMR step s-1 on j-1: its state could not be read 10 times in a row")


def test_without_a_deployed_release_the_job_fails_saying_deploy_first(stack: Stack) -> None:
    settings = render_app_config(read_outputs_file(stack.outputs_file)).settings
    runner = BatchRunner(settings, target=EmrBatchTarget(poll_seconds=0.1), check=_no_preflight)
    try:
        job: BatchJob = runner.submit(date(2026, 2, 2), requested_by="operator-1")
        _wait(lambda: not job.active, "the job to end")
    finally:
        runner.close()
    assert job.status is BatchStatus.FAILED
    assert job.emr_step_id is None
    assert job.error is not None
    assert "run `make deploy-apps` first" in job.error
    assert stack.client("emr").list_steps(ClusterId=stack.cluster_id)["Steps"] == []
