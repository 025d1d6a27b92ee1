"""`POST /v1/batches` in AWS: the daily batch as an EMR step of the deployed release, followed until it ends.

Why a step and not the local child process: the API pod has no Spark cluster to run the batch on (its settings say
`spark.master: yarn`), and the batch must run with the artifacts `make deploy-apps` shipped and recorded in its
ledger (wheel, config, job script, connector jars), exactly as the deploy's own batch step does. So the runner's
target (libs.api.batches.BatchRunner, still one child process per run, so the contract stays 202 / status URL / 409)
reads the ledger's current release, adds a `spark-submit` step for the date (`--date YYYY-MM-DD`) under a name of its
own (`claims-batch-api-<date>`: the deploy's reconciliation matches names exactly and never cancels it), reports
"running" once EMR runs it, and succeeded or failed with EMR's state and reason when it ends. The batch writes its
own `batch_runs` row in Redshift, which `GET /v1/batches` lists beside the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from libs.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient

    from libs.deploy.emr_steps import StepSpec
    from libs.deploy.state import Release

STEP_NAME_PREFIX = "claims-batch-api"
POLL_SECONDS = 15.0
"""A daily batch takes minutes; EMR's DescribeStep is throttled per account, so poll gently."""
MAX_DESCRIBE_FAILURES = 10
"""Consecutive DescribeStep failures (after the client's own retries) before the job stops following the step."""


class EmrBatchError(RuntimeError):
    """The batch cannot be submitted: no release deployed, or the release lacks the batch job."""


def step_name_for(day: date | None) -> str:
    """`claims-batch-api-<date>` (or `-all`): one name per requested date."""
    return f"{STEP_NAME_PREFIX}-{day.isoformat() if day else 'all'}"


def batch_step(release: Release, settings: Settings, day: date | None) -> StepSpec:
    """The spark-submit step of the batch job for `day` (None: all of silver), from the release's artifacts."""
    from libs.deploy.emr_steps import JobArtifacts, JobKind, spark_submit_step  # noqa: PLC0415

    job_uri = release.job_uris.get(JobKind.BATCH.value)
    if job_uri is None:
        msg = (f"expected the deployed release to hold the {JobKind.BATCH.value} job, found only "
               f"{sorted(release.job_uris)}; run `make deploy-apps`")
        raise EmrBatchError(msg)
    artifacts = JobArtifacts(job_uri=job_uri, wheel_uri=release.wheel_uri, config_uri=release.config_uri,
                             jar_uris=tuple(release.jar_uris),
                             file_uris=tuple((uri, name) for name, uri in release.file_uris.items()))
    job_args = ["--date", day.isoformat()] if day else ["--all"]
    return spark_submit_step(JobKind.BATCH, artifacts, settings, name=step_name_for(day), job_args=job_args)


def current_release(settings: Settings) -> Release:
    """The release the last `make deploy-apps` recorded in the artifact bucket's ledger."""
    from libs.deploy.aws import s3_client  # noqa: PLC0415
    from libs.deploy.state import load_state  # noqa: PLC0415

    bucket = settings.aws.artifact_bucket
    if not bucket:
        msg = "expected aws.artifact_bucket (a stack output) to find the deployed release, found it unset"
        raise EmrBatchError(msg)
    release = load_state(s3_client(settings.aws), bucket, settings.environment.value).current
    if release is None:
        msg = (f"expected a release in s3://{bucket}'s deploy ledger for {settings.environment.value}, found none; "
               "run `make deploy-apps` first")
        raise EmrBatchError(msg)
    return release


@dataclass(frozen=True)
class EmrBatchTarget:
    """A BatchRunner target (picklable: it crosses into the spawned child) that runs the batch as an EMR step."""

    poll_seconds: float = POLL_SECONDS

    def __call__(self, settings: Settings, day: date | None, conn: Connection) -> None:
        from libs.deploy.aws import emr_client  # noqa: PLC0415

        try:
            cluster_id = settings.aws.emr_cluster_id
            if not cluster_id:
                msg = "expected aws.emr_cluster_id (a stack output) to submit the batch to, found it unset"
                raise EmrBatchError(msg)
            emr = emr_client(settings.aws)
            spec = batch_step(current_release(settings), settings, day)
            step_id = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[spec.to_request()])["StepIds"][0]
            conn.send(("submitted", step_id))
        except Exception as exc:  # noqa: BLE001  (the parent records the reason; no record values are involved)
            conn.send(("failed", None, f"the batch step was not submitted: {exc}"))
            return
        follow_step(emr, cluster_id, step_id, conn, poll_seconds=self.poll_seconds)


def follow_step(emr: EMRClient, cluster_id: str, step_id: str, conn: Connection, *, poll_seconds: float,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Report ("running",) once the step runs, then ("succeeded", None, {}) or ("failed", None, reason).

    No batch run id or counts: the batch writes them to its batch_runs row in Redshift (`GET /v1/batches`' ledger).
    """
    reported_running, failures = False, 0
    while True:
        try:
            status: dict[str, Any] = dict(emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"])
        except Exception as exc:  # noqa: BLE001  (a throttled or dropped call: try again; say so if it persists)
            failures += 1
            if failures >= MAX_DESCRIBE_FAILURES:
                conn.send(("failed", None, f"EMR step {step_id} on {cluster_id}: its state could not be read "
                           f"{failures} times in a row ({type(exc).__name__}); the step may still run, see the "
                           "cluster's step list"))
                return
            sleep(poll_seconds)
            continue
        failures = 0
        state = status.get("State", "UNKNOWN")
        if state == "RUNNING" and not reported_running:
            conn.send(("running",))
            reported_running = True
        if state == "COMPLETED":
            conn.send(("succeeded", None, {}))
            return
        if state in {"FAILED", "CANCELLED", "INTERRUPTED"}:
            details = status.get("FailureDetails") or {}
            reason = details.get("Reason") or status.get("StateChangeReason", {}).get("Message") or "no reason given"
            logs = f"; logs: {details['LogFile']}" if details.get("LogFile") else ""
            conn.send(("failed", None, f"EMR step {step_id} on {cluster_id} {state}: {reason}{logs}"))
            return
        sleep(poll_seconds)
