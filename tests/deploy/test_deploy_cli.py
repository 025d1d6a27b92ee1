"""`claims deploy --jars-dir`: the connector jars come from the directory given, not from .cache/jars/spark.

Marked slow like the other end-to-end deploys: the session builds the real project wheel once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apps.cli.main import app
from libs.deploy import deployer
from libs.deploy.artifacts import ArtifactKind, file_artifact
from libs.deploy.emr_steps import EXPORTER_STEP_NAME, JobKind
from tests.deploy.conftest import Stack

pytestmark = pytest.mark.slow


def _arguments(stack: Stack, wheel_dir: Path, *extra: str) -> list[str]:
    return ["deploy", "--stack", "dev", "--outputs", str(stack.outputs_file), "--skip-topics",
            "--wheel-dir", str(wheel_dir), "--json", *extra]


def test_jars_dir_ships_the_jars_of_that_directory_and_the_steps_name_them(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployer, "DEFAULT_JOB_SCRIPTS", job_scripts)
    # The default directory is missing: only the option can make this deploy succeed.
    monkeypatch.setattr(deployer, "DEFAULT_SPARK_JARS_DIR", tmp_path / "no-jars-here")

    result = CliRunner().invoke(app, _arguments(stack, prebuilt_wheel_dir, "--jars-dir", str(spark_jars)))

    assert result.exit_code == 0, result.output
    expected = {file_artifact(ArtifactKind.JAR, jar.name, jar).uri(stack.bucket)
                for jar in sorted(spark_jars.glob("*.jar"))}
    keys = {obj["Key"] for obj in stack.client("s3").list_objects_v2(Bucket=stack.bucket)["Contents"]}
    assert {uri.removeprefix(f"s3://{stack.bucket}/") for uri in expected} <= keys
    steps = stack.client("emr").list_steps(ClusterId=stack.cluster_id)["Steps"]
    spark_steps = [step for step in steps if step["Config"]["Args"][0] == "spark-submit"]
    assert sorted(step["Name"] for step in spark_steps) == ["claims-batch", "claims-streaming"]
    for step in spark_steps:
        args = step["Config"]["Args"]
        assert set(args[args.index("--jars") + 1].split(",")) == expected
    # The third step installs the lag exporter on the primary node: no Spark, no jars.
    assert [step["Name"] for step in steps if step not in spark_steps] == [EXPORTER_STEP_NAME]
    assert json.loads(result.stdout)["changes"] > 0


def test_a_jars_dir_without_the_connectors_stops_the_deploy_naming_it(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployer, "DEFAULT_JOB_SCRIPTS", job_scripts)
    empty = tmp_path / "empty-jars"
    empty.mkdir()

    result = CliRunner().invoke(app, _arguments(stack, prebuilt_wheel_dir, "--jars-dir", str(empty)))

    assert result.exit_code == 1
    message = "".join(result.stderr.split())  # the console may wrap the message anywhere, even inside the path
    assert str(empty) in message
    assert "spark-sql-kafka-0-10_2.13-*.jar" in message
    assert "Contents" not in stack.client("s3").list_objects_v2(Bucket=stack.bucket)
