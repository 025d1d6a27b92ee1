"""Artifact digests and keys, and the plan's change accounting."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from libs.deploy.artifacts import (
    ArtifactError,
    ArtifactKind,
    bytes_artifact,
    find_wheel,
    sha256_hex,
    spark_jar_artifacts,
    wheel_artifact,
    wheel_content_digest,
)
from libs.deploy.deployer import DEFAULT_SPARK_JARS_DIR
from libs.deploy.plan import Action, Component, DeployPlan, PlanItem
from tests.deploy.conftest import SYNTHETIC_SPARK_JARS


def _zip(path: Path, members: dict[str, bytes], date_time: tuple[int, int, int, int, int, int]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=date_time), body)
    return path


def test_wheel_digest_ignores_zip_timestamps_and_order_but_not_content(tmp_path: Path) -> None:
    members = {"libs/__init__.py": b"", "libs/deploy/plan.py": b"x = 1\n"}
    first = _zip(tmp_path / "a.whl", members, (2020, 1, 1, 0, 0, 0))
    second = _zip(tmp_path / "b.whl", dict(reversed(members.items())), (2026, 6, 15, 12, 0, 0))
    changed = _zip(tmp_path / "c.whl", {**members, "libs/deploy/plan.py": b"x = 2\n"}, (2020, 1, 1, 0, 0, 0))

    assert wheel_content_digest(first) == wheel_content_digest(second)
    assert wheel_content_digest(first) != wheel_content_digest(changed)


def test_artifact_keys_are_content_addressed_and_keep_the_file_name(tmp_path: Path) -> None:
    wheel = wheel_artifact(_zip(tmp_path / "medical_claims_pipeline-0.1.0-py3-none-any.whl", {"a": b"1"},
                                (2020, 1, 1, 0, 0, 0)))
    config = bytes_artifact(ArtifactKind.CONFIG, "app-config", "app-config.json", b"{}\n")

    assert wheel.key == f"artifacts/wheel/{wheel.digest}/medical_claims_pipeline-0.1.0-py3-none-any.whl"
    assert config.uri("bucket") == f"s3://bucket/artifacts/config/{config.digest}/app-config.json"
    assert config.content_type == "application/json"


def test_find_wheel_wants_exactly_one(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"expected exactly one medical_claims_pipeline-\*.whl, found 0"):
        find_wheel(tmp_path)
    (tmp_path / "medical_claims_pipeline-0.1.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "medical_claims_pipeline-0.2.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(ArtifactError, match=r"found 2 \(medical_claims_pipeline-0.1.0"):
        find_wheel(tmp_path)


def test_broken_wheel_is_reported_with_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "medical_claims_pipeline-0.1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")

    with pytest.raises(ArtifactError, match=r"expected a wheel \(zip archive\)"):
        wheel_content_digest(broken)


def test_connector_jars_are_content_addressed_artifacts_in_file_name_order(spark_jars: Path) -> None:
    (spark_jars / "notes.txt").write_text("not a jar", encoding="utf-8")

    jars = spark_jar_artifacts(spark_jars)

    assert [jar.filename for jar in jars] == sorted(SYNTHETIC_SPARK_JARS)
    for jar in jars:
        assert jar.kind is ArtifactKind.JAR
        assert jar.digest == sha256_hex((spark_jars / jar.filename).read_bytes())
        assert jar.key == f"artifacts/jar/{jar.digest}/{jar.filename}"
        assert jar.content_type == "application/java-archive"


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_no_connector_jars_fails_naming_make_jars(tmp_path: Path, state: str) -> None:
    jars_dir = tmp_path / "spark"
    if state == "empty":
        jars_dir.mkdir()

    with pytest.raises(ArtifactError, match=r"expected the Spark connector jars resolved by Maven.*`make jars`") as err:
        spark_jar_artifacts(jars_dir)

    assert str(jars_dir) in str(err.value)
    assert ("no such directory" if state == "missing" else "found 0 jars") in str(err.value)


def test_a_resolution_without_the_msk_auth_jar_is_refused(spark_jars: Path) -> None:
    # What an older `make jars` left behind: Kafka and Delta, but no IAM login module for MSK.
    (spark_jars / "aws-msk-iam-auth-2.2.0.jar").unlink()

    with pytest.raises(ArtifactError, match=r"including aws-msk-iam-auth-\*\.jar; found 4 jars\. Run `make jars`"):
        spark_jar_artifacts(spark_jars)


def test_the_resolved_connector_jars_are_what_a_deploy_ships() -> None:
    # The real resolution (scripts/fetch_jars.sh, which the Spark tests need as well): the deploy accepts it, and its
    # Kafka and Delta connectors are the versions of the installed pyspark and delta-spark.
    names = [jar.filename for jar in spark_jar_artifacts(DEFAULT_SPARK_JARS_DIR)]

    assert f"spark-sql-kafka-0-10_2.13-{metadata.version('pyspark')}.jar" in names
    assert f"delta-spark_2.13-{metadata.version('delta-spark')}.jar" in names
    assert any(name.startswith("aws-msk-iam-auth-") for name in names)


def test_plan_counts_only_changing_items_and_summarises() -> None:
    plan = DeployPlan(stack="dev", environment="dev", dry_run=True, items=[
        PlanItem(Component.ARTIFACT, "wheel", Action.CREATE),
        PlanItem(Component.EMR_STEP, "claims-streaming", Action.REPLACE),
        PlanItem(Component.DDL, "claims", Action.UNCHANGED),
        PlanItem(Component.TOPIC, "*", Action.SKIPPED, "--skip-topics"),
    ])

    assert plan.change_count == 2
    assert plan.summary() == "stack dev (dev): 2 changes, 1 unchanged, 1 skipped (dry run: nothing was changed)"
    assert plan.to_dict()["changes"] == 2
    assert plan.to_dict()["items"][3] == {"component": "topic", "name": "*", "action": "skipped",
                                          "detail": "--skip-topics"}
