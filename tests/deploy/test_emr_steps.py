"""EMR step reconciliation: identical active steps are kept, changed ones are cancelled and replaced."""

from __future__ import annotations

from typing import Any

import pytest

from libs.deploy.artifacts import spark_jar_artifacts
from libs.deploy.deployer import DEFAULT_SPARK_JARS_DIR
from libs.deploy.emr_steps import (
    COMMAND_RUNNER_JAR,
    MAX_HADOOP_JAR_STEP_CHARS,
    EmrStepError,
    ExistingStep,
    JobArtifacts,
    JobKind,
    StepSpec,
    StepState,
    apply_changes,
    reconcile,
    spark_submit_step,
)
from libs.deploy.plan import Action
from libs.settings import KafkaSecurityProtocol, KafkaSettings, Settings

SPEC = StepSpec(name="claims-streaming", args=("spark-submit", "s3://b/artifacts/job/aaa/streaming_main.py"))
OLD_ARGS = ("spark-submit", "s3://b/artifacts/job/old/streaming_main.py")


def _existing(step_id: str, args: tuple[str, ...], state: StepState, name: str = SPEC.name) -> ExistingStep:
    return ExistingStep(step_id=step_id, name=name, args=args, state=state)


@pytest.mark.parametrize("state", [StepState.PENDING, StepState.RUNNING])
def test_identical_active_step_is_left_alone(state: StepState) -> None:
    [change] = reconcile([SPEC], [_existing("s-1", SPEC.args, state)])

    assert change.action is Action.UNCHANGED
    assert change.kept_id == "s-1"
    assert not change.add
    assert change.cancel_ids == ()


def test_missing_step_is_created() -> None:
    [change] = reconcile([SPEC], [_existing("s-9", SPEC.args, StepState.RUNNING, name="claims-batch")])

    assert change.action is Action.CREATE
    assert change.add


@pytest.mark.parametrize("state", [StepState.PENDING, StepState.RUNNING])
def test_changed_step_cancels_the_old_one_and_adds_the_new(state: StepState) -> None:
    [change] = reconcile([SPEC], [_existing("s-1", OLD_ARGS, state)])

    assert change.action is Action.REPLACE
    assert change.cancel_ids == ("s-1",)
    assert change.add


def test_finished_steps_are_history_and_do_not_count() -> None:
    history = [_existing("s-1", SPEC.args, StepState.COMPLETED), _existing("s-2", SPEC.args, StepState.FAILED)]

    [change] = reconcile([SPEC], history)

    assert change.action is Action.CREATE
    assert change.cancel_ids == ()


def test_stale_duplicates_next_to_an_identical_step_are_cancelled() -> None:
    # EMR lists newest first: the newer identical duplicate and the old version go, the oldest identical one stays.
    existing = [_existing("s-3", SPEC.args, StepState.PENDING), _existing("s-2", OLD_ARGS, StepState.PENDING),
                _existing("s-1", SPEC.args, StepState.RUNNING)]

    [change] = reconcile([SPEC], existing)

    assert change.action is Action.UPDATE
    assert change.kept_id == "s-1"
    assert change.cancel_ids == ("s-3", "s-2")
    assert not change.add


class FakeEmr:
    """Records calls; answers like EMR."""

    def __init__(self, cancel_status: str = "SUBMITTED") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.cancel_status = cancel_status

    def cancel_steps(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("cancel_steps", kwargs))
        return {"CancelStepsInfoList": [{"StepId": s, "Status": self.cancel_status, "Reason": "step already done"}
                                        for s in kwargs["StepIds"]]}

    def add_job_flow_steps(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("add_job_flow_steps", kwargs))
        return {"StepIds": [f"s-new-{i}" for i, _ in enumerate(kwargs["Steps"])]}


def test_apply_cancels_before_adding_and_returns_new_ids() -> None:
    emr = FakeEmr()
    changes = reconcile([SPEC], [_existing("s-1", OLD_ARGS, StepState.RUNNING)])

    new_ids = apply_changes(emr, "j-1", changes)  # type: ignore[arg-type]

    assert [name for name, _ in emr.calls] == ["cancel_steps", "add_job_flow_steps"]
    assert emr.calls[0][1] == {"ClusterId": "j-1", "StepIds": ["s-1"], "StepCancellationOption": "SEND_INTERRUPT"}
    added = emr.calls[1][1]["Steps"][0]
    assert added["HadoopJarStep"] == {"Jar": "command-runner.jar", "Args": list(SPEC.args)}
    assert added["ActionOnFailure"] == "CONTINUE"
    assert new_ids == {"claims-streaming": "s-new-0"}


def test_apply_stops_when_emr_refuses_to_cancel_and_adds_nothing() -> None:
    emr = FakeEmr(cancel_status="FAILED")
    changes = reconcile([SPEC], [_existing("s-1", OLD_ARGS, StepState.RUNNING)])

    with pytest.raises(EmrStepError, match=r"could not cancel superseded steps: s-1: step already done"):
        apply_changes(emr, "j-1", changes)  # type: ignore[arg-type]

    assert [name for name, _ in emr.calls] == ["cancel_steps"]


def test_apply_with_nothing_to_do_calls_nothing() -> None:
    emr = FakeEmr()

    assert apply_changes(emr, "j-1", reconcile([SPEC], [_existing("s-1", SPEC.args, StepState.RUNNING)])) == {}  # type: ignore[arg-type]
    assert emr.calls == []


JARS = ("s3://b/artifacts/jar/d1/aws-msk-iam-auth-2.2.0.jar", "s3://b/artifacts/jar/d2/delta-spark_2.13-4.0.0.jar",
        "s3://b/artifacts/jar/d3/spark-sql-kafka-0-10_2.13-4.0.2.jar")


def _job_artifacts(jar_uris: tuple[str, ...] = JARS) -> JobArtifacts:
    return JobArtifacts(job_uri="s3://b/artifacts/job/j/streaming_main.py",
                        wheel_uri="s3://b/artifacts/wheel/w/medical_claims_pipeline-0.1.0-py3-none-any.whl",
                        config_uri="s3://b/artifacts/config/c/app-config.json", jar_uris=jar_uris,
                        file_uris=(("s3://b/artifacts/file/t/topics.json", "topics.json"),))


def test_spark_submit_step_ships_wheel_config_and_files_and_names_the_job() -> None:
    artifacts = _job_artifacts()
    settings = Settings.model_validate({"kafka": KafkaSettings(security_protocol=KafkaSecurityProtocol.SASL_SSL)})

    spec = spark_submit_step(JobKind.STREAMING, artifacts, settings)
    args = list(spec.args)

    assert spec.name == "claims-streaming"
    assert args[0] == "spark-submit"
    assert args[-1] == artifacts.job_uri
    assert args[args.index("--py-files") + 1] == artifacts.wheel_uri
    assert args[args.index("--files") + 1] == (
        "s3://b/artifacts/config/c/app-config.json#app-config.json,s3://b/artifacts/file/t/topics.json#topics.json")
    assert "spark.yarn.appMasterEnv.CLAIMS_CONFIG=app-config.json" in args
    assert "spark.yarn.maxAppAttempts=4" in args
    assert "spark.yarn.maxAppAttempts=4" not in spark_submit_step(JobKind.BATCH, artifacts, settings).args


@pytest.mark.parametrize("protocol", list(KafkaSecurityProtocol))
def test_spark_submit_step_takes_the_connectors_from_the_artifact_bucket_not_from_maven(
    protocol: KafkaSecurityProtocol,
) -> None:
    # The EMR nodes have no route to Maven Central: nothing may ask spark-submit to resolve coordinates there.
    settings = Settings.model_validate({"kafka": KafkaSettings(security_protocol=protocol)})

    args = spark_submit_step(JobKind.BATCH, _job_artifacts(), settings).args

    assert args.count("--jars") == 1
    assert args[args.index("--jars") + 1] == ",".join(JARS)
    assert not any(arg.startswith(("--packages", "--repositories")) or "spark.jars.packages" in arg for arg in args)


def test_spark_submit_step_arguments_are_deterministic_so_an_identical_step_is_kept() -> None:
    settings = Settings.model_validate({})
    first = spark_submit_step(JobKind.STREAMING, _job_artifacts(), settings)
    again = spark_submit_step(JobKind.STREAMING, _job_artifacts(), settings)
    other_jars = spark_submit_step(JobKind.STREAMING, _job_artifacts((*JARS[:2], JARS[2].replace("d3", "d4"))),
                                   settings)

    [kept] = reconcile([again], [_existing("s-1", first.args, StepState.RUNNING)])
    [replaced] = reconcile([other_jars], [_existing("s-1", first.args, StepState.RUNNING)])

    assert kept.action is Action.UNCHANGED
    assert replaced.action is Action.REPLACE  # another jar is another release of the job


def test_a_step_without_connector_jars_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected at least one jar URI, found none"):
        _job_artifacts(jar_uris=())


def test_a_step_over_emr_s_argument_size_limit_is_refused_before_it_is_sent() -> None:
    too_many = tuple(f"s3://b/artifacts/jar/{i:064x}/library-{i}-1.0.0.jar" for i in range(120))

    with pytest.raises(EmrStepError, match=r"at most 10240 characters of step arguments, found \d+, of which \d+ list "
                                           r"the 120 connector jars; .*`make jars`"):
        spark_submit_step(JobKind.BATCH, _job_artifacts(too_many), Settings.model_validate({}))


def test_the_resolved_connector_jars_fit_an_emr_step_with_the_longest_bucket_name() -> None:
    # A guard on the POM: every jar it adds lengthens both steps by ~150 characters.
    bucket = "b" * 63  # the longest name S3 allows
    digest = "0" * 64
    jar_uris = tuple(jar.uri(bucket) for jar in spark_jar_artifacts(DEFAULT_SPARK_JARS_DIR))
    artifacts = JobArtifacts(
        job_uri=f"s3://{bucket}/artifacts/job/{digest}/streaming_main.py",
        wheel_uri=f"s3://{bucket}/artifacts/wheel/{digest}/medical_claims_pipeline-0.1.0-py3-none-any.whl",
        config_uri=f"s3://{bucket}/artifacts/config/{digest}/app-config.json", jar_uris=jar_uris,
        file_uris=tuple((f"s3://{bucket}/artifacts/file/{digest}/{name}", name)
                        for name in ("topics.json", "phi-policy.json")))

    for job in JobKind:
        spec = spark_submit_step(job, artifacts, Settings.model_validate({}))
        assert len(COMMAND_RUNNER_JAR) + sum(len(arg) for arg in spec.args) <= MAX_HADOOP_JAR_STEP_CHARS
