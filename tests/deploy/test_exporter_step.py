"""The lag exporter's install step on the EMR primary node (libs/deploy/emr_steps.py).

What is proved: the one-shot step's idempotence (the newest step of its name decides: the same release pending,
running or completed is kept; a failed one is retried; a new release supersedes it and cancels an older one still
queued); its arguments name the release's wheel, config and shipped files and fit EMR's limit with the longest
names; its bash program, run with aws/sudo/systemctl/curl replaced by recorders, installs the wheel offline into
the bootstrapped Python, puts the config beside the unit, restarts the service and fails the step naming what it
expected when the exporter does not answer; and the unit's command line, run as systemd would run it, serves the
exporter's metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra import emr_bootstrap
from libs.deploy.emr_steps import (
    COMMAND_RUNNER_JAR,
    CONFIG_ALIAS,
    EXPORTER_CONFIG_DIR,
    EXPORTER_SERVICE,
    EXPORTER_STEP_NAME,
    MAX_HADOOP_JAR_STEP_CHARS,
    NODE_PYTHON,
    ExistingStep,
    ServiceArtifacts,
    StepSpec,
    StepState,
    exporter_step,
    exporter_unit,
    reconcile_service,
)
from libs.deploy.plan import Action
from libs.settings import REPO_ROOT, Settings
from tests.monitoring.conftest import free_port

EXPORTER_READY_SECONDS = 60.0
RELEASE = ServiceArtifacts(
    wheel_uri="s3://b/artifacts/wheel/w1/medical_claims_pipeline-0.1.0-py3-none-any.whl",
    config_uri="s3://b/artifacts/config/c1/app-config.json",
    file_uris=(("s3://b/artifacts/file/t1/topics.json", "topics.json"),
               ("s3://b/artifacts/file/p1/phi-policy.json", "phi-policy.json")))
NEXT_RELEASE = ServiceArtifacts(wheel_uri=RELEASE.wheel_uri.replace("w1", "w2"), config_uri=RELEASE.config_uri,
                                file_uris=RELEASE.file_uris)
SETTINGS = Settings.model_validate({"aws": {"region": "eu-west-1"}})


def _step(step_id: str, spec: StepSpec, state: StepState) -> ExistingStep:
    return ExistingStep(step_id=step_id, name=spec.name, args=spec.args, state=state)


# --- idempotence ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", [StepState.PENDING, StepState.RUNNING, StepState.COMPLETED])
def test_the_same_release_pending_running_or_installed_submits_nothing(state: StepState) -> None:
    spec = exporter_step(RELEASE, SETTINGS)
    latest = _step("s-1", spec, state)
    active = [latest] if state is not StepState.COMPLETED else []

    change = reconcile_service(spec, active, latest)

    assert change.action is Action.UNCHANGED
    assert (change.add, change.kept_id, change.cancel_ids) == (False, "s-1", ())


def test_a_cluster_that_never_ran_it_gets_the_step() -> None:
    change = reconcile_service(exporter_step(RELEASE, SETTINGS), [], None)

    assert change.action is Action.CREATE
    assert change.add


@pytest.mark.parametrize("state", [StepState.FAILED, StepState.CANCELLED, StepState.INTERRUPTED])
def test_a_release_whose_install_did_not_complete_is_submitted_again(state: StepState) -> None:
    spec = exporter_step(RELEASE, SETTINGS)

    change = reconcile_service(spec, [], _step("s-1", spec, state))

    assert change.add
    assert change.superseded_ids == ("s-1",)
    assert change.cancel_ids == ()


def test_a_new_release_replaces_the_installed_one() -> None:
    old, new = exporter_step(RELEASE, SETTINGS), exporter_step(NEXT_RELEASE, SETTINGS)

    change = reconcile_service(new, [], _step("s-1", old, StepState.COMPLETED))

    assert change.action is Action.REPLACE
    assert change.add
    assert change.cancel_ids == ()  # a finished step has nothing to cancel
    assert change.plan_item("s-2").detail == "supersede s-1; added s-2"


def test_a_queued_older_release_is_cancelled_so_it_cannot_install_after_the_new_one() -> None:
    old, new = exporter_step(RELEASE, SETTINGS), exporter_step(NEXT_RELEASE, SETTINGS)
    queued = _step("s-2", old, StepState.PENDING)

    change = reconcile_service(new, [queued], queued)

    assert change.action is Action.REPLACE
    assert change.cancel_ids == ("s-2",)
    assert change.superseded_ids == ()


def test_a_duplicate_of_the_kept_step_is_cancelled() -> None:
    spec = exporter_step(RELEASE, SETTINGS)
    newest, older = _step("s-3", spec, StepState.PENDING), _step("s-1", spec, StepState.RUNNING)

    change = reconcile_service(spec, [newest, older], newest)

    assert change.action is Action.UPDATE
    assert (change.kept_id, change.cancel_ids, change.add) == ("s-3", ("s-1",), False)


# --- the step's arguments ------------------------------------------------------------------------------------------

def test_the_step_runs_the_install_program_with_the_releases_artifacts_and_unit() -> None:
    spec = exporter_step(RELEASE, SETTINGS)

    assert spec.name == EXPORTER_STEP_NAME
    assert spec.action_on_failure == "CONTINUE"  # a failed install must not terminate the cluster
    assert spec.to_request()["HadoopJarStep"]["Jar"] == COMMAND_RUNNER_JAR  # runs on the primary node
    assert spec.args[:2] == ("bash", "-c")
    assert spec.args[3:7] == (EXPORTER_STEP_NAME, RELEASE.wheel_uri, RELEASE.config_uri, exporter_unit(SETTINGS))
    assert spec.args[7:] == ("s3://b/artifacts/file/t1/topics.json", "topics.json",
                             "s3://b/artifacts/file/p1/phi-policy.json", "phi-policy.json")
    assert exporter_step(RELEASE, SETTINGS) == spec  # deterministic: an unchanged release is kept


def test_the_unit_runs_the_exporter_with_the_releases_config_on_the_agents_port() -> None:
    unit = exporter_unit(SETTINGS).splitlines()

    port = SETTINGS.monitoring.exporter_port
    assert f"ExecStart={NODE_PYTHON} -m apps.cli.main monitor exporter --port {port}" in unit
    assert f"Environment=CLAIMS_CONFIG={EXPORTER_CONFIG_DIR}/{CONFIG_ALIAS}" in unit
    assert f"WorkingDirectory={EXPORTER_CONFIG_DIR}" in unit  # topics.json etc. are named by bare file name
    assert "Environment=AWS_DEFAULT_REGION=eu-west-1" in unit
    assert "Restart=always" in unit
    # The agent on the node scrapes the claims-exporter job there, statically.
    assert port == 9466


def test_the_node_python_is_the_one_the_bootstrap_installs_the_dependencies_into() -> None:
    assert emr_bootstrap.PYTHON == NODE_PYTHON


def test_the_step_fits_emr_s_argument_limit_with_the_longest_names() -> None:
    bucket, digest = "b" * 63, "0" * 64
    artifacts = ServiceArtifacts(
        wheel_uri=f"s3://{bucket}/artifacts/wheel/{digest}/medical_claims_pipeline-0.1.0-py3-none-any.whl",
        config_uri=f"s3://{bucket}/artifacts/config/{digest}/app-config.json",
        file_uris=tuple((f"s3://{bucket}/artifacts/file/{digest}/{name}", name)
                        for name in ("topics.json", "phi-policy.json")))

    spec = exporter_step(artifacts, SETTINGS)

    assert len(COMMAND_RUNNER_JAR) + sum(len(arg) for arg in spec.args) <= MAX_HADOOP_JAR_STEP_CHARS


# --- the install program, with the node's commands replaced by recorders --------------------------------------------

def _node(tmp_path: Path, *, exporter_answers: bool) -> dict[str, Path]:
    """Shims on PATH: aws copies from a bucket directory; sudo records (keeping what `tee` wrote); curl succeeds or
    fails; sleep returns at once."""
    bin_dir, bucket, calls, written = tmp_path / "bin", tmp_path / "bucket", tmp_path / "calls.log", tmp_path / "w"
    for directory in (bin_dir, bucket, written):
        directory.mkdir()
    for uri in (RELEASE.wheel_uri, RELEASE.config_uri, *(uri for uri, _ in RELEASE.file_uris)):
        path = bucket / uri.removeprefix("s3://b/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {path.name}\n", encoding="utf-8")
    shims = {
        "aws": f'echo "aws $*" >> {calls}\ncp "{bucket}/${{4#s3://b/}}" "$5"',
        "sudo": f'echo "sudo $*" >> {calls}\nif [ "$1" = tee ]; then cat > "{written}/$(basename "$2")"; fi',
        "curl": f'echo "curl $*" >> {calls}\nexit {0 if exporter_answers else 7}',
        "sleep": "exit 0",
    }
    for name, body in shims.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return {"bin": bin_dir, "calls": calls, "written": written}


def _run_step(node: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{node['bin']}:{os.environ['PATH']}"}
    return subprocess.run(list(exporter_step(RELEASE, SETTINGS).args), capture_output=True, text=True, env=env,
                          check=False, timeout=60)


def test_the_install_program_installs_the_wheel_offline_and_restarts_the_service(tmp_path: Path) -> None:
    node = _node(tmp_path, exporter_answers=True)

    result = _run_step(node)

    assert result.returncode == 0, result.stderr
    calls = node["calls"].read_text(encoding="utf-8").splitlines()
    (pip,) = [call for call in calls if " -m pip install " in call]
    # The wheel keeps its file name (pip insists); no index and no dependencies: the node has no internet, and the
    # bootstrap installed the pinned dependencies already.
    assert pip.startswith(f"sudo {NODE_PYTHON} -m pip install --quiet --no-input --no-deps --no-index "
                          "--force-reinstall ")
    assert pip.endswith("/medical_claims_pipeline-0.1.0-py3-none-any.whl")
    (install,) = [call for call in calls if call.startswith("sudo install -m 0640 ")]
    assert sorted(Path(part).name for part in install.split()[6:-1]) == [CONFIG_ALIAS, "phi-policy.json",
                                                                         "topics.json"]
    assert install.endswith(f" {EXPORTER_CONFIG_DIR}/")
    assert (node["written"] / f"{EXPORTER_SERVICE}.service").read_text(encoding="utf-8") == exporter_unit(SETTINGS)
    assert [call for call in calls if "systemctl" in call] == [
        "sudo systemctl daemon-reload", f"sudo systemctl enable {EXPORTER_SERVICE}.service",
        f"sudo systemctl restart {EXPORTER_SERVICE}.service"]
    assert f"{EXPORTER_SERVICE}: serving http://127.0.0.1:9466/metrics" in result.stdout


def test_an_exporter_that_does_not_answer_fails_the_step_naming_what_was_expected(tmp_path: Path) -> None:
    node = _node(tmp_path, exporter_answers=False)

    result = _run_step(node)

    assert result.returncode == 1
    assert f"{EXPORTER_SERVICE}: expected /metrics on 127.0.0.1:9466 within 60 s, found no answer" in result.stderr
    assert f"sudo journalctl -u {EXPORTER_SERVICE} -n 40 --no-pager" in node["calls"].read_text(encoding="utf-8")


def test_the_install_program_passes_bash_syntax_check() -> None:
    script = exporter_step(RELEASE, SETTINGS).args[2]

    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


# --- the unit's command line on the real exporter -------------------------------------------------------------------

def _unit_values(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


def test_the_units_command_serves_the_exporters_metrics_with_the_releases_config(tmp_path: Path) -> None:
    """As systemd would: the unit's environment, its working directory holding the release's config and the files it
    names by bare name, its ExecStart (this interpreter for the node's; the checkout stands in for the wheel)."""
    port = free_port()
    settings = Settings.model_validate({
        "aws": {"region": "us-east-1"},
        "monitoring": {"exporter_port": port},
        # A broker that does not answer (the exporter reports it as down) and a local checkpoint root: the test
        # must reach neither MSK nor S3.
        "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}", "topics_file": "topics.json"},
        "lake": {"checkpoint_root": str(tmp_path / "checkpoints")},
    })
    unit = exporter_unit(settings)
    workdir, state = tmp_path / "etc", tmp_path / "state"
    workdir.mkdir()
    shutil.copy(REPO_ROOT / "configs" / "kafka" / "topics.json", workdir / "topics.json")
    (workdir / CONFIG_ALIAS).write_text(json.dumps(settings.model_dump(mode="json", exclude_unset=True)),
                                        encoding="utf-8")
    environment = dict(value.split("=", 1) for value in _unit_values(unit, "Environment"))
    environment["CLAIMS_CONFIG"] = str(workdir / CONFIG_ALIAS)
    environment["CLAIMS_LOCAL_DIR"] = str(state)
    (exec_start,) = _unit_values(unit, "ExecStart")
    command = exec_start.split()
    assert command[0] == NODE_PYTHON
    command[0] = sys.executable
    env = {**os.environ, **environment, "PYTHONPATH": str(REPO_ROOT)}
    log_path = tmp_path / "exporter.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        body = ""
        deadline = time.monotonic() + EXPORTER_READY_SECONDS
        while "claims_kafka_exporter_up" not in body and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text(encoding="utf-8")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
                    body = response.read().decode("utf-8")
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert "claims_kafka_exporter_up 0.0" in body, log_path.read_text(encoding="utf-8")
