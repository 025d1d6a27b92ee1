"""Run the streaming and batch Spark jobs as EMR steps (spark-submit through command-runner.jar), idempotently.

Why reconcile instead of always adding: an EMR step is the running job. Adding the streaming step twice would run two
queries on one checkpoint; re-adding an identical batch step would run the batch twice. So a step whose name and
arguments are identical to the desired one and that is PENDING or RUNNING is left alone. Step arguments name the
content-addressed artifact keys, so "identical arguments" means "same code and same config". A step of the same name
with other arguments is the previous release: it is cancelled (a running one is interrupted, so the streaming query
stops at a batch boundary and the new step resumes from the checkpoint) and the new step is added.

Why `--jars` and not `--packages`: the EMR nodes have no route to the internet (PHI network, infra/network.py), so
Ivy cannot resolve Maven coordinates on the cluster. The connector jars (Kafka source/sink, Delta, MSK IAM auth) are
the ones Maven resolved into .cache/jars/spark for local runs; the deploy uploads them as content-addressed artifacts
and the step lists their s3:// URIs, so the cluster runs the very jars the jobs were tested with, offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from libs.deploy.plan import Action, Component, PlanItem
from libs.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_emr.type_defs import StepConfigTypeDef

COMMAND_RUNNER_JAR = "command-runner.jar"
CONFIG_ALIAS = "app-config.json"
# AddJobFlowSteps: "the string values passed into HadoopJarStep object cannot exceed a total of 10240 characters".
# The --jars list (one content-addressed URI per connector jar) is most of a step, so the deploy checks the total.
MAX_HADOOP_JAR_STEP_CHARS = 10240


class JobKind(StrEnum):
    """The Spark jobs the deploy runs; the value is the step name suffix."""

    STREAMING = "streaming"
    BATCH = "batch"


class StepState(StrEnum):
    """EMR step states."""

    PENDING = "PENDING"
    CANCEL_PENDING = "CANCEL_PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


ACTIVE_STATES = (StepState.PENDING, StepState.RUNNING)


class EmrStepError(RuntimeError):
    """EMR rejected (or would reject) a step call."""


def step_name(job: JobKind) -> str:
    """The step name a job always runs under (how the deploy finds its previous release)."""
    return f"claims-{job.value}"


@dataclass(frozen=True)
class StepSpec:
    """A desired step: name, command-runner arguments and what EMR does if it fails."""

    name: str
    args: tuple[str, ...]
    # CONTINUE: a failed job must not terminate the cluster the other job runs on.
    action_on_failure: str = "CONTINUE"

    def to_request(self) -> StepConfigTypeDef:
        """The AddJobFlowSteps entry."""
        return {
            "Name": self.name,
            "ActionOnFailure": self.action_on_failure,  # type: ignore[typeddict-item]
            "HadoopJarStep": {"Jar": COMMAND_RUNNER_JAR, "Args": list(self.args)},
        }


@dataclass(frozen=True)
class ExistingStep:
    """A step already on the cluster."""

    step_id: str
    name: str
    args: tuple[str, ...]
    state: StepState


@dataclass(frozen=True)
class StepChange:
    """What to do for one desired step: cancel these step ids, add the spec or not."""

    spec: StepSpec
    cancel_ids: tuple[str, ...] = field(default_factory=tuple)
    add: bool = False
    kept_id: str | None = None

    @property
    def action(self) -> Action:
        """Plan action: replace = cancel + add; update = cancel stale duplicates only."""
        if self.add:
            return Action.REPLACE if self.cancel_ids else Action.CREATE
        return Action.UPDATE if self.cancel_ids else Action.UNCHANGED

    def plan_item(self, new_step_id: str | None = None) -> PlanItem:
        """The plan line of this change (with the id EMR gave the new step, once added)."""
        parts = []
        if self.kept_id:
            parts.append(f"keep {self.kept_id}")
        if self.cancel_ids:
            parts.append(f"cancel {', '.join(self.cancel_ids)}")
        if self.add:
            parts.append(f"added {new_step_id}" if new_step_id else "add new step")
        return PlanItem(Component.EMR_STEP, self.spec.name, self.action, "; ".join(parts))


def reconcile(desired: Sequence[StepSpec], existing: Sequence[ExistingStep]) -> list[StepChange]:
    """Decide, per desired step, what to keep, cancel and add. Pure: the tests drive it with plain data.

    Only PENDING/RUNNING steps count; finished steps are history. If several active steps share the desired name,
    the oldest identical one is kept (the list from EMR is newest first) and every other one is cancelled.
    """
    changes: list[StepChange] = []
    for spec in desired:
        active = [s for s in existing if s.name == spec.name and s.state in ACTIVE_STATES]
        identical = [s for s in active if s.args == spec.args]
        kept = identical[-1] if identical else None
        cancel = tuple(s.step_id for s in active if s is not kept)
        changes.append(StepChange(spec=spec, cancel_ids=cancel, add=kept is None,
                                  kept_id=kept.step_id if kept else None))
    return changes


@dataclass(frozen=True)
class JobArtifacts:
    """S3 URIs a job step needs."""

    job_uri: str
    wheel_uri: str
    config_uri: str
    jar_uris: tuple[str, ...]  # the connector jars, in a fixed order (the step arguments must be deterministic)
    file_uris: tuple[tuple[str, str], ...] = ()  # (uri, name in the container) of shipped config files

    def __post_init__(self) -> None:
        if not self.jar_uris:
            msg = ("a Spark job step needs the connector jars (Kafka source/sink, Delta, MSK IAM auth): expected at "
                   "least one jar URI, found none")
            raise ValueError(msg)


def spark_submit_step(job: JobKind, artifacts: JobArtifacts, settings: Settings) -> StepSpec:
    """The spark-submit step of one job on YARN (cluster mode: the driver runs on the cluster, not the master)."""
    files = [f"{artifacts.config_uri}#{CONFIG_ALIAS}", *(f"{uri}#{name}" for uri, name in artifacts.file_uris)]
    args: list[str] = [
        "spark-submit",
        "--master", "yarn",
        "--deploy-mode", "cluster",
        "--name", step_name(job),
        # The cluster cannot reach Maven Central: the jars come from the artifact bucket (see the module docstring).
        "--jars", ",".join(artifacts.jar_uris),
        "--py-files", artifacts.wheel_uri,
        "--files", ",".join(files),
        # The apps read CLAIMS_CONFIG (libs.settings); YARN links --files into each container's working directory.
        "--conf", f"spark.yarn.appMasterEnv.CLAIMS_CONFIG={CONFIG_ALIAS}",
        "--conf", f"spark.executorEnv.CLAIMS_CONFIG={CONFIG_ALIAS}",
        "--conf", f"spark.driver.memory={settings.spark.driver_memory}",
    ]
    if job is JobKind.STREAMING:
        # A long-running query should survive occasional driver failures: retry, forgetting failures after an hour.
        args += ["--conf", "spark.yarn.maxAppAttempts=4",
                 "--conf", "spark.yarn.am.attemptFailuresValidityInterval=1h"]
    args.append(artifacts.job_uri)
    spec = StepSpec(name=step_name(job), args=tuple(args))
    size = len(COMMAND_RUNNER_JAR) + sum(len(arg) for arg in spec.args)
    if size > MAX_HADOOP_JAR_STEP_CHARS:
        jars = len(",".join(artifacts.jar_uris))
        msg = (f"step {spec.name}: EMR accepts at most {MAX_HADOOP_JAR_STEP_CHARS} characters of step arguments, "
               f"found {size}, of which {jars} list the {len(artifacts.jar_uris)} connector jars; drop jars the jobs "
               "do not need from tools/maven/spark/pom.xml (or exclude their dependencies) and run `make jars`")
        raise EmrStepError(msg)
    return spec


def list_active_steps(emr: EMRClient, cluster_id: str) -> list[ExistingStep]:
    """PENDING and RUNNING steps of the cluster, newest first."""
    steps: list[ExistingStep] = []
    paginator = emr.get_paginator("list_steps")
    for page in paginator.paginate(ClusterId=cluster_id, StepStates=[s.value for s in ACTIVE_STATES]):
        for step in page.get("Steps", []):
            config = step.get("Config", {})
            steps.append(ExistingStep(
                step_id=step.get("Id", ""),
                name=step.get("Name", ""),
                args=tuple(config.get("Args", [])),
                state=StepState(step.get("Status", {}).get("State", StepState.PENDING.value)),
            ))
    return steps


def apply_changes(emr: EMRClient, cluster_id: str, changes: Sequence[StepChange]) -> dict[str, str]:
    """Cancel superseded steps, then add the new ones; returns step name -> new step id."""
    cancel = [step_id for change in changes for step_id in change.cancel_ids]
    if cancel:
        result = emr.cancel_steps(ClusterId=cluster_id, StepIds=cancel, StepCancellationOption="SEND_INTERRUPT")
        refused = [info for info in result.get("CancelStepsInfoList", []) if info.get("Status") == "FAILED"]
        if refused:
            reasons = "; ".join(f"{info.get('StepId')}: {info.get('Reason', 'no reason given')}" for info in refused)
            msg = f"EMR cluster {cluster_id}: could not cancel superseded steps: {reasons}"
            raise EmrStepError(msg)
    to_add = [change.spec for change in changes if change.add]
    if not to_add:
        return {}
    response = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[spec.to_request() for spec in to_add])
    return {spec.name: step_id for spec, step_id in zip(to_add, response.get("StepIds", []), strict=True)}
