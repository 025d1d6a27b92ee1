"""`claims deploy`: ship the apps to a stack in one idempotent pass.

Order matters and is fixed: (1) render and validate the app config, (2) build the wheel, read the job scripts and
the Spark connector jars, (3) inspect the stack - objects in the artifact bucket, the ledger, active EMR steps - and
plan every change, (4) stop if anything is blocked, before changing anything, then (5) upload artifacts,
(6) create/update Kafka topics, (7) apply warehouse DDL, (8) replace EMR steps (they reference the artifacts and need
the topics and tables), and (9) record the release in the ledger. A dry run stops after (4) and reports the plan.

The EMR steps are the two Spark jobs and the lag exporter's install on the primary node (libs/deploy/emr_steps.py),
all three from the same release artifacts the ledger records (wheel, config, shipped files). The exporter's step
comes first in the request, so it takes a step slot before the streaming job holds one for good.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from libs.deploy import aws
from libs.deploy.artifacts import (
    Artifact,
    ArtifactKind,
    build_wheel,
    bytes_artifact,
    file_artifact,
    find_wheel,
    plan_uploads,
    spark_jar_artifacts,
    upload,
    wheel_artifact,
)
from libs.deploy.emr_steps import (
    EXPORTER_STEP_NAME,
    JobArtifacts,
    JobKind,
    ServiceArtifacts,
    StepChange,
    apply_changes,
    exporter_step,
    latest_step,
    list_active_steps,
    reconcile,
    reconcile_service,
    spark_submit_step,
)
from libs.deploy.outputs import StackOutputs, check_stack_environment
from libs.deploy.plan import Action, Component, DeployPlan, PlanItem
from libs.deploy.redshift import RedshiftTarget, apply_ddl, plan_ddl
from libs.deploy.redshift_migrations import apply_migrations, migrated_tables, plan_migrations
from libs.deploy.render_config import CONFIG_FILE_NAME, DEFAULT_SHIPPED_FILES, ShippedFile, render_app_config
from libs.deploy.state import Release, load_state, save_state
from libs.settings import REPO_ROOT, Environment, KafkaSettings, Settings, SparkSettings
from libs.warehouse.dialect import redshift_statements

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient

# ensure_topics(settings, topics_file, replication_factor) -> {topic name: "created" | "updated" | "unchanged"}
TopicApplier = Callable[[KafkaSettings, Path, int | None], dict[str, str]]

DEFAULT_JOB_SCRIPTS: Mapping[JobKind, Path] = {
    JobKind.STREAMING: REPO_ROOT / "apps" / "streaming" / "main.py",
    JobKind.BATCH: REPO_ROOT / "apps" / "batch" / "main.py",
}
# The connector jars scripts/fetch_jars.sh resolved: the directory the local Spark session loads them from.
DEFAULT_SPARK_JARS_DIR: Path = SparkSettings.model_fields["jars_dir"].default
# MSK stacks run three brokers; topics.json holds the local single-broker factor 1.
AWS_REPLICATION_FACTOR = 3
_TOPIC_ACTIONS = {"created": Action.CREATE, "updated": Action.UPDATE, "unchanged": Action.UNCHANGED}


class DeployError(RuntimeError):
    """The deploy cannot proceed; nothing after the failing step was changed."""


class DeployBlockedError(DeployError):
    """The plan contains blocked items; nothing was changed. `plan` says which and why."""

    def __init__(self, plan: DeployPlan) -> None:
        names = ", ".join(f"{item.component.value} {item.name}" for item in plan.blocked)
        super().__init__(f"stack {plan.stack}: deploy blocked, nothing was changed: {names}")
        self.plan = plan


@dataclass(frozen=True)
class DeployOptions:
    """Everything `claims deploy` can vary; defaults are the real project layout."""

    stack: str
    dry_run: bool = False
    skip_topics: bool = False
    schema_migrated: bool = False
    wheel_dir: Path | None = None  # a directory holding a prebuilt wheel; otherwise the wheel is built
    build_dir: Path = REPO_ROOT / ".cache" / "deploy" / "wheel"
    project_root: Path = REPO_ROOT
    job_scripts: Mapping[JobKind, Path] = field(default_factory=lambda: dict(DEFAULT_JOB_SCRIPTS))
    spark_jars_dir: Path = field(default_factory=lambda: DEFAULT_SPARK_JARS_DIR)
    shipped_files: tuple[ShippedFile, ...] = DEFAULT_SHIPPED_FILES
    topics_file: Path = REPO_ROOT / "configs" / "kafka" / "topics.json"
    replication_factor: int | None = None
    ddl_poll_seconds: float = 0.25
    ddl_timeout_seconds: float = 300.0


def _load_topic_applier() -> TopicApplier:
    try:
        # Imported here: confluent-kafka is only needed when topics are not skipped.
        from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    except ImportError as error:
        msg = (f"the topics step needs libs.kafka.admin.ensure_topics, which cannot be imported ({error}); "
               "deploy with --skip-topics, or create the topics with `claims topics`")
        raise DeployError(msg) from None
    return ensure_topics  # type: ignore[no-any-return]


def _wheel(options: DeployOptions) -> Artifact:
    if options.wheel_dir is not None:
        return wheel_artifact(find_wheel(options.wheel_dir))
    return wheel_artifact(build_wheel(options.project_root, options.build_dir))


def _replication_factor(options: DeployOptions, environment: Environment) -> int | None:
    if options.replication_factor is not None:
        return options.replication_factor
    return None if environment is Environment.LOCAL else AWS_REPLICATION_FACTOR


def _apply_topics(options: DeployOptions, kafka: KafkaSettings, environment: Environment,
                  topic_applier: TopicApplier | None) -> list[PlanItem]:
    if options.skip_topics:
        return [PlanItem(Component.TOPIC, "*", Action.SKIPPED, "--skip-topics")]
    if options.dry_run:
        return [PlanItem(Component.TOPIC, "*", Action.SKIPPED, "dry run: topics are only compared by a real deploy")]
    applier = topic_applier or _load_topic_applier()
    results = applier(kafka, options.topics_file, _replication_factor(options, environment))
    items = []
    for name, outcome in sorted(results.items()):
        action = _TOPIC_ACTIONS.get(outcome)
        if action is None:
            msg = f"topic {name}: ensure_topics reported {outcome!r}, expected one of {sorted(_TOPIC_ACTIONS)}"
            raise DeployError(msg)
        items.append(PlanItem(Component.TOPIC, name, action))
    return items


def _shipped_files(shipped_files: tuple[ShippedFile, ...], plan: DeployPlan) -> list[Artifact]:
    """The config files the jobs read (topics, PHI policy) as artifacts; a missing one is a skipped plan line."""
    files: list[Artifact] = []
    for shipped in shipped_files:
        if shipped.local_path.is_file():
            files.append(file_artifact(ArtifactKind.FILE, shipped.name, shipped.local_path))
        else:
            setting = ".".join(shipped.settings_path)
            plan.add(PlanItem(Component.ARTIFACT, shipped.name, Action.SKIPPED,
                              f"{shipped.local_path} not found; the jobs use app_config's {setting}"))
    return files


def _step_changes(emr: EMRClient, cluster_id: str, jobs: Mapping[JobKind, JobArtifacts], exporter: ServiceArtifacts,
                  settings: Settings) -> list[StepChange]:
    """The exporter's install step first (one-shot: the newest step of its name decides), then the Spark jobs."""
    active = list_active_steps(emr, cluster_id)
    exporter_change = reconcile_service(exporter_step(exporter, settings), active,
                                        latest_step(emr, cluster_id, EXPORTER_STEP_NAME))
    return [exporter_change, *reconcile([spark_submit_step(job, uris, settings) for job, uris in jobs.items()], active)]


def deploy(outputs: StackOutputs, options: DeployOptions, *,
           topic_applier: TopicApplier | None = None) -> DeployPlan:
    """Deploy (or with dry_run, plan) the apps on the stack described by `outputs`; returns the report."""
    check_stack_environment(options.stack, outputs)
    rendered = render_app_config(outputs, options.shipped_files)
    settings = rendered.settings
    bucket, kms_key = outputs.artifact_bucket, outputs.kms_key_arn
    plan = DeployPlan(stack=options.stack, environment=outputs.environment.value, dry_run=options.dry_run)

    # (2) Local artifacts.
    wheel = _wheel(options)
    jobs = {job: file_artifact(ArtifactKind.JOB, f"{job.value} job script", path, f"{job.value}_main.py")
            for job, path in options.job_scripts.items()}
    files = _shipped_files(options.shipped_files, plan)
    jars = spark_jar_artifacts(options.spark_jars_dir)
    config = bytes_artifact(ArtifactKind.CONFIG, "app-config", CONFIG_FILE_NAME, rendered.body)

    # (3) Compare with the stack.
    s3 = aws.s3_client(settings.aws)
    emr = aws.emr_client(settings.aws)
    redshift = aws.redshift_data_client(settings.aws)
    uploads = plan_uploads(s3, bucket, [wheel, *jobs.values(), *files, *jars, config])
    plan.extend([item for _, item in uploads])

    state = load_state(s3, bucket, plan.environment)
    migration_changes = plan_migrations(redshift_statements(), state.ddl, state.migrations,
                                        schema_migrated=options.schema_migrated)
    ddl_changes = plan_ddl(redshift_statements(), state.ddl, schema_migrated=options.schema_migrated,
                           migrated_tables=migrated_tables(migration_changes))
    plan.extend([change.plan_item() for change in ddl_changes])
    plan.extend([change.plan_item() for change in migration_changes])

    jar_uris = tuple(jar.uri(bucket) for jar in jars)
    job_artifacts = {
        job: JobArtifacts(job_uri=artifact.uri(bucket), wheel_uri=wheel.uri(bucket), config_uri=config.uri(bucket),
                          jar_uris=jar_uris, file_uris=tuple((f.uri(bucket), f.filename) for f in files))
        for job, artifact in jobs.items()
    }
    exporter = ServiceArtifacts(wheel_uri=wheel.uri(bucket), config_uri=config.uri(bucket),
                                file_uris=tuple((f.uri(bucket), f.filename) for f in files))
    step_changes = _step_changes(emr, outputs.emr_cluster_id, job_artifacts, exporter, settings)

    release = Release(wheel_uri=wheel.uri(bucket), config_uri=config.uri(bucket),
                      job_uris={job.value: a.uri(bucket) for job, a in jobs.items()},
                      file_uris={f.filename: f.uri(bucket) for f in files}, jar_uris=list(jar_uris))
    new_state = state.model_copy(update={"ddl": {**state.ddl, **{
        c.statement.table: c.statement.digest for c in ddl_changes if c.action in (Action.CREATE, Action.UPDATE)}},
        "migrations": sorted({*state.migrations, *(c.migration.version for c in migration_changes)})})
    if not release.same_artifacts(state.current):
        new_state = new_state.with_release(release)

    first_deploy = state.current is None and not state.ddl
    # (4) Nothing changes if anything is blocked.
    if plan.blocked:
        raise DeployBlockedError(plan)
    if options.dry_run:
        plan.extend(_apply_topics(options, settings.kafka, outputs.environment, topic_applier))
        plan.extend([change.plan_item() for change in step_changes])
        plan.add(_state_item(first_deploy=first_deploy, changed=new_state != state))
        return plan

    # (5)-(9) Apply, in dependency order; the plan's DDL lines are rewritten with the Data API statement ids.
    for artifact, item in uploads:
        if item.changes:
            upload(s3, bucket, artifact, kms_key)
    plan.extend(_apply_topics(options, settings.kafka, outputs.environment, topic_applier))
    target = RedshiftTarget(outputs.redshift_cluster_identifier, outputs.redshift_database, outputs.redshift_secret_arn)
    statement_ids = apply_ddl(redshift, target, ddl_changes, poll_seconds=options.ddl_poll_seconds,
                              timeout_seconds=options.ddl_timeout_seconds)
    ddl_items = {change.statement.table: change.plan_item(statement_ids.get(change.statement.table))
                 for change in ddl_changes}
    # After the DDL: a new warehouse's schema_migrations table exists only once it ran.
    migration_batch = apply_migrations(redshift, target, migration_changes, poll_seconds=options.ddl_poll_seconds,
                                       timeout_seconds=options.ddl_timeout_seconds)
    migration_items = {change.plan_item().name: change.plan_item(migration_batch) for change in migration_changes}
    plan.items = [ddl_items[item.name] if item.component is Component.DDL
                  else migration_items[item.name] if item.component is Component.MIGRATION
                  else item for item in plan.items]
    new_step_ids = apply_changes(emr, outputs.emr_cluster_id, step_changes)
    plan.extend([change.plan_item(new_step_ids.get(change.spec.name)) for change in step_changes])
    if new_state != state:
        save_state(s3, bucket, plan.environment, new_state, kms_key)
    plan.add(_state_item(first_deploy=first_deploy, changed=new_state != state))
    return plan


def _state_item(*, first_deploy: bool, changed: bool) -> PlanItem:
    if not changed:
        return PlanItem(Component.STATE, "ledger", Action.UNCHANGED)
    return PlanItem(Component.STATE, "ledger", Action.CREATE if first_deploy else Action.UPDATE,
                    "record applied DDL and the current release")
