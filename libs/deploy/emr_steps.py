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

The lag exporter (`claims monitor exporter`, libs/monitoring/lag.py) is a service on the primary node, not a Spark
job: the Prometheus agent there scrapes it on loopback, and it computes the stream's lag from the S3 checkpoint and
MSK, so that the lag and stall alerts fire even when the stream is dead. It is part of the app wheel, which the EMR
bootstrap cannot install (the wheel does not exist when the cluster is created), so the deploy installs it: one
command-runner.jar step (EMR runs those on the primary node) that installs the release's wheel into the bootstrapped
Python, puts the release's config and shipped files beside a systemd unit and restarts the service. That step
finishes in seconds, so its idempotence differs from the Spark steps': the newest step of its name counts, finished
or not. Identical arguments (same wheel, config, files and unit) that are pending, running or COMPLETED: nothing is
submitted. Otherwise (a new release, or the last attempt failed or was cancelled) a new step is added, superseding
the previous one; active steps of an older release are cancelled first so they cannot install it after the new one.
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
    from mypy_boto3_emr.type_defs import StepConfigTypeDef, StepSummaryTypeDef

COMMAND_RUNNER_JAR = "command-runner.jar"
CONFIG_ALIAS = "app-config.json"
# AddJobFlowSteps: "the string values passed into HadoopJarStep object cannot exceed a total of 10240 characters".
# The --jars list (one content-addressed URI per connector jar) is most of a step, so the deploy checks the total.
MAX_HADOOP_JAR_STEP_CHARS = 10240

# The lag exporter's service on the primary node. NODE_PYTHON is the interpreter the EMR bootstrap installs the
# runtime dependencies into (infra/emr_bootstrap.PYTHON; a test keeps the two equal, libs never import infra).
EXPORTER_STEP_NAME = "claims-lag-exporter"
EXPORTER_SERVICE = "claims-lag-exporter"
EXPORTER_USER = "claims-lag-exporter"
EXPORTER_CONFIG_DIR = "/etc/claims-lag-exporter"
EXPORTER_STATE_DIR = "/var/lib/claims-lag-exporter"
NODE_PYTHON = "/usr/bin/python3.11"
EXPORTER_READY_SECONDS = 60


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
    """What to do for one desired step: cancel these step ids, add the spec or not.

    `superseded_ids`: finished steps of an earlier release that the new step replaces (a one-shot step such as the
    exporter's install); nothing is cancelled for them, but the plan calls the change a replacement.
    """

    spec: StepSpec
    cancel_ids: tuple[str, ...] = field(default_factory=tuple)
    add: bool = False
    kept_id: str | None = None
    superseded_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def action(self) -> Action:
        """Plan action: replace = cancel + add (or add over a finished earlier release); update = cancel stale
        duplicates only."""
        if self.add:
            return Action.REPLACE if self.cancel_ids or self.superseded_ids else Action.CREATE
        return Action.UPDATE if self.cancel_ids else Action.UNCHANGED

    def plan_item(self, new_step_id: str | None = None) -> PlanItem:
        """The plan line of this change (with the id EMR gave the new step, once added)."""
        parts = []
        if self.kept_id:
            parts.append(f"keep {self.kept_id}")
        if self.cancel_ids:
            parts.append(f"cancel {', '.join(self.cancel_ids)}")
        if self.superseded_ids:
            parts.append(f"supersede {', '.join(self.superseded_ids)}")
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


SERVICE_KEPT_STATES = (StepState.PENDING, StepState.RUNNING, StepState.COMPLETED)


def reconcile_service(spec: StepSpec, active: Sequence[ExistingStep], latest: ExistingStep | None) -> StepChange:
    """Decide for a one-shot install step (the exporter's): keep, or add and supersede. Pure, like `reconcile`.

    `latest` is the newest step of the spec's name in any state (None on a cluster that never ran it), `active` the
    cluster's PENDING/RUNNING steps. The newest step is kept when its arguments are the spec's and it is pending,
    running or completed: the release is installed, or about to be. Anything else adds the spec; active steps of
    the name that are not kept are cancelled (an older release must not install after the new one), and a finished
    newest step is recorded as superseded.
    """
    named = [step for step in active if step.name == spec.name]
    if latest is not None and latest.args == spec.args and latest.state in SERVICE_KEPT_STATES:
        cancel = tuple(step.step_id for step in named if step.step_id != latest.step_id)
        return StepChange(spec=spec, cancel_ids=cancel, kept_id=latest.step_id)
    cancel = tuple(step.step_id for step in named)
    superseded = (latest.step_id,) if latest is not None and latest.step_id not in cancel else ()
    return StepChange(spec=spec, cancel_ids=cancel, add=True, superseded_ids=superseded)


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


def spark_submit_step(job: JobKind, artifacts: JobArtifacts, settings: Settings, *, name: str | None = None,
                      job_args: Sequence[str] = ()) -> StepSpec:
    """The spark-submit step of one job on YARN (cluster mode: the driver runs on the cluster, not the master).

    `name` defaults to the job's deploy step name; a run asked for on demand (`POST /v1/batches`) takes a name of
    its own so the deploy's reconciliation, which matches names exactly, never cancels it. `job_args` go to the job's
    script (e.g. `--date 2026-02-02`).
    """
    files = [f"{artifacts.config_uri}#{CONFIG_ALIAS}", *(f"{uri}#{name}" for uri, name in artifacts.file_uris)]
    args: list[str] = [
        "spark-submit",
        "--master", "yarn",
        "--deploy-mode", "cluster",
        "--name", name or step_name(job),
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
    args += [artifacts.job_uri, *job_args]
    spec = StepSpec(name=name or step_name(job), args=tuple(args))
    size = len(COMMAND_RUNNER_JAR) + sum(len(arg) for arg in spec.args)
    if size > MAX_HADOOP_JAR_STEP_CHARS:
        jars = len(",".join(artifacts.jar_uris))
        msg = (f"step {spec.name}: EMR accepts at most {MAX_HADOOP_JAR_STEP_CHARS} characters of step arguments, "
               f"found {size}, of which {jars} list the {len(artifacts.jar_uris)} connector jars; drop jars the jobs "
               "do not need from tools/maven/spark/pom.xml (or exclude their dependencies) and run `make jars`")
        raise EmrStepError(msg)
    return spec


def _existing(step: StepSummaryTypeDef) -> ExistingStep:
    config = step.get("Config", {})
    return ExistingStep(step_id=step.get("Id", ""), name=step.get("Name", ""), args=tuple(config.get("Args", [])),
                        state=StepState(step.get("Status", {}).get("State", StepState.PENDING.value)))


def list_active_steps(emr: EMRClient, cluster_id: str) -> list[ExistingStep]:
    """PENDING and RUNNING steps of the cluster, newest first."""
    paginator = emr.get_paginator("list_steps")
    return [_existing(step)
            for page in paginator.paginate(ClusterId=cluster_id, StepStates=[s.value for s in ACTIVE_STATES])
            for step in page.get("Steps", [])]


def latest_step(emr: EMRClient, cluster_id: str, name: str) -> ExistingStep | None:
    """The newest step called `name` in any state (EMR lists newest first; paging stops at the first match)."""
    paginator = emr.get_paginator("list_steps")
    for page in paginator.paginate(ClusterId=cluster_id):
        for step in page.get("Steps", []):
            if step.get("Name") == name:
                return _existing(step)
    return None


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


@dataclass(frozen=True)
class ServiceArtifacts:
    """S3 URIs the exporter's install step needs: the release's wheel, config and shipped config files."""

    wheel_uri: str
    config_uri: str
    file_uris: tuple[tuple[str, str], ...] = ()  # (uri, file name beside the config) of shipped config files


def exporter_unit(settings: Settings) -> str:
    """The systemd unit of the lag exporter on the primary node.

    The working directory holds the release's app-config.json (CLAIMS_CONFIG) and the files it names by bare name
    (topics.json, phi-policy.json), as in a Spark step's container. The port is passed explicitly: the CLI's default
    comes from configs/monitoring/scrape-jobs.yaml, which the wheel does not ship. Local state (CLAIMS_LOCAL_DIR)
    goes to the service's own state directory instead of beside the installed package. The exporter listens on
    loopback only; the agent on the same node scrapes it.
    """
    region = settings.aws.region
    environment = [f"CLAIMS_CONFIG={EXPORTER_CONFIG_DIR}/{CONFIG_ALIAS}", f"CLAIMS_LOCAL_DIR={EXPORTER_STATE_DIR}",
                   *([f"AWS_DEFAULT_REGION={region}"] if region else [])]
    command = [NODE_PYTHON, "-m", "apps.cli.main", "monitor", "exporter",
               "--port", str(settings.monitoring.exporter_port)]
    lines = [
        "[Unit]",
        "Description=Claims lag exporter: stream lag from the S3 checkpoint and MSK, for the Prometheus agent",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        f"User={EXPORTER_USER}",
        f"WorkingDirectory={EXPORTER_CONFIG_DIR}",
        *(f"Environment={variable}" for variable in environment),
        f"StateDirectory={EXPORTER_STATE_DIR.rsplit('/', 1)[-1]}",
        f"ExecStart={' '.join(command)}",
        "Restart=always",
        "RestartSec=10",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def exporter_install_script(port: int) -> str:
    """The bash program of the exporter's step. Arguments: wheel URI, config URI, the unit's text, then pairs of
    (shipped file URI, file name). Fails the step (naming what it expected) when the exporter does not answer."""
    return f"""set -euo pipefail
wheel_uri="$1"; config_uri="$2"; unit="$3"; shift 3
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
mkdir "$workdir/etc"
wheel="$workdir/${{wheel_uri##*/}}"
aws s3 cp --only-show-errors "$wheel_uri" "$wheel"
aws s3 cp --only-show-errors "$config_uri" "$workdir/etc/{CONFIG_ALIAS}"
while [ "$#" -ge 2 ]; do aws s3 cp --only-show-errors "$1" "$workdir/etc/$2"; shift 2; done
sudo {NODE_PYTHON} -m pip install --quiet --no-input --no-deps --no-index --force-reinstall "$wheel"
id -u {EXPORTER_USER} >/dev/null 2>&1 || sudo useradd --system --no-create-home --shell /sbin/nologin {EXPORTER_USER}
sudo install -d -m 0750 -g {EXPORTER_USER} {EXPORTER_CONFIG_DIR}
sudo install -m 0640 -g {EXPORTER_USER} "$workdir"/etc/* {EXPORTER_CONFIG_DIR}/
printf '%s' "$unit" | sudo tee /etc/systemd/system/{EXPORTER_SERVICE}.service >/dev/null
sudo systemctl daemon-reload
sudo systemctl enable {EXPORTER_SERVICE}.service
sudo systemctl restart {EXPORTER_SERVICE}.service
for _ in $(seq {EXPORTER_READY_SECONDS // 2}); do
  if curl -sf -o /dev/null http://127.0.0.1:{port}/metrics; then
    echo "{EXPORTER_SERVICE}: serving http://127.0.0.1:{port}/metrics"; exit 0
  fi
  sleep 2
done
echo "{EXPORTER_SERVICE}: expected /metrics on 127.0.0.1:{port} within {EXPORTER_READY_SECONDS} s, found no answer" >&2
sudo journalctl -u {EXPORTER_SERVICE} -n 40 --no-pager >&2 || true
exit 1
"""


def exporter_step(artifacts: ServiceArtifacts, settings: Settings) -> StepSpec:
    """The step that installs the release's lag exporter on the primary node and (re)starts it.

    Deterministic in its inputs, so an unchanged release gives identical arguments (and nothing is submitted).
    """
    files = [part for uri, name in artifacts.file_uris for part in (uri, name)]
    args = ("bash", "-c", exporter_install_script(settings.monitoring.exporter_port), EXPORTER_STEP_NAME,
            artifacts.wheel_uri, artifacts.config_uri, exporter_unit(settings), *files)
    spec = StepSpec(name=EXPORTER_STEP_NAME, args=args)
    size = len(COMMAND_RUNNER_JAR) + sum(len(arg) for arg in spec.args)
    if size > MAX_HADOOP_JAR_STEP_CHARS:
        msg = (f"step {spec.name}: EMR accepts at most {MAX_HADOOP_JAR_STEP_CHARS} characters of step arguments, "
               f"found {size} ({len(artifacts.file_uris)} shipped files); ship fewer config files")
        raise EmrStepError(msg)
    return spec
