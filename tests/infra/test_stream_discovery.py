"""The stream driver's discovery (infra/yarn_discovery.py) against a real local HTTP server answering like YARN.

What is proved: the program turns the ResourceManager's RUNNING application list into the Prometheus file_sd file
the agent's claims-stream job reads - the AM host of the application named like the streaming step, at the metrics
port, written atomically; `[]` when the stream is not running; the new host after the application restarted on
another node; and when the ResourceManager is unreachable or answers something else, the previous file is left
byte for byte and one log line names the URL, while the service's loop keeps running and recovers. It also runs
as the systemd unit runs it (the bootstrap's command line, as a script, standard library only).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import emr_bootstrap, yarn_discovery
from libs.deploy.emr_steps import JobArtifacts, JobKind, spark_submit_step
from libs.settings import MonitoringSettings, Settings
from tests.infra.fake_yarn import ResourceManager, application, serve
from tests.monitoring.conftest import free_port

PROGRAM = Path(yarn_discovery.__file__)
APP = emr_bootstrap.STREAM_APP_NAME
PORT = emr_bootstrap.STREAM_METRICS_PORT
LOOP_SECONDS = 60.0


@pytest.fixture
def resource_manager() -> Iterator[tuple[str, type[ResourceManager]]]:
    """A loopback ResourceManager REST API; the test sets what it answers."""
    server, handler, thread = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    thread.join()


def _refresh(url: str, output: Path) -> list[dict[str, Any]] | None:
    return yarn_discovery.refresh(output, app_name=APP, port=PORT, rm_url=url)


def test_the_running_streams_application_master_host_becomes_the_target(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    rm.document = {"apps": {"app": [
        application("application_1700000000000_0002", "claims-batch", "ip-10-40-1-7.ec2.internal"),
        application("application_1700000000000_0001", APP, "ip-10-40-2-9.ec2.internal"),
        application("application_1700000000000_0003", "someone-elses-job", "ip-10-40-3-3.ec2.internal"),
    ]}}
    output = tmp_path / "claims-stream.json"

    groups = _refresh(url, output)

    expected = [{"targets": [f"ip-10-40-2-9.ec2.internal:{PORT}"],
                 "labels": {yarn_discovery.APPLICATION_LABEL: "application_1700000000000_0001"}}]
    assert groups == expected
    assert json.loads(output.read_text(encoding="utf-8")) == expected
    assert rm.paths == ["/ws/v1/cluster/apps?states=RUNNING"]
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims-stream.json"]  # no temporary file left behind


def test_no_running_stream_writes_an_empty_target_list(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    output = tmp_path / "claims-stream.json"
    rm.document = {"apps": {"app": [application("application_1_0001", APP, "ip-10-40-2-9.ec2.internal")]}}
    _refresh(url, output)

    rm.document = {"apps": None}  # what YARN answers when nothing is RUNNING
    groups = _refresh(url, output)

    assert groups == []
    assert json.loads(output.read_text(encoding="utf-8")) == []


def test_an_application_restarted_on_another_node_moves_the_target_there(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    output = tmp_path / "claims-stream.json"
    rm.document = {"apps": {"app": [application("application_1_0001", APP, "ip-10-40-2-9.ec2.internal")]}}
    _refresh(url, output)

    # The driver failed; YARN's second attempt of the same application runs its AM on another core node.
    rm.document = {"apps": {"app": [application("application_1_0001", APP, "ip-10-40-5-4.ec2.internal")]}}
    _refresh(url, output)

    written = json.loads(output.read_text(encoding="utf-8"))
    assert [group["targets"] for group in written] == [[f"ip-10-40-5-4.ec2.internal:{PORT}"]]


def test_while_a_deploy_replaces_the_step_both_drivers_are_targets_newest_first(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    rm.document = {"apps": {"app": [
        application("application_1_0001", APP, "ip-10-40-2-9.ec2.internal", started=1_000),
        application("application_1_0002", APP, "ip-10-40-5-4.ec2.internal", started=2_000),
    ]}}

    groups = _refresh(url, tmp_path / "claims-stream.json")

    assert groups is not None
    assert [group["labels"][yarn_discovery.APPLICATION_LABEL] for group in groups] == [
        "application_1_0002", "application_1_0001"]


def test_an_unreachable_resource_manager_leaves_the_previous_file_and_logs_the_url(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    output = tmp_path / "claims-stream.json"
    previous = json.dumps([{"targets": ["ip-10-40-2-9.ec2.internal:9465"], "labels": {}}]) + "\n"
    output.write_text(previous, encoding="utf-8")
    before = output.stat()
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    with caplog.at_level(logging.WARNING, logger=yarn_discovery.log.name):
        groups = _refresh(url, output)

    assert groups is None
    assert output.read_text(encoding="utf-8") == previous
    assert (output.stat().st_ino, output.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    (record,) = caplog.records
    assert f"expected the running applications from the ResourceManager at {url}" in record.getMessage()
    assert f"{output} left as it was" in record.getMessage()


@pytest.mark.parametrize(("status", "raw"), [(200, b"<html>standby</html>"), (500, b"{}"),
                                             (200, b'{"apps": {"app": "not a list"}}'), (200, b"[]")])
def test_an_unexpected_answer_leaves_the_previous_file_and_logs_what_was_found(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        status: int, raw: bytes) -> None:
    url, rm = resource_manager
    output = tmp_path / "claims-stream.json"
    output.write_text("[]\n", encoding="utf-8")
    rm.status, rm.raw = status, raw

    with caplog.at_level(logging.WARNING, logger=yarn_discovery.log.name):
        groups = _refresh(url, output)

    assert groups is None
    assert output.read_text(encoding="utf-8") == "[]\n"
    assert len(caplog.records) == 1
    assert "left as it was" in caplog.records[0].getMessage()


def test_unchanged_targets_do_not_rewrite_the_file(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    output = tmp_path / "claims-stream.json"
    rm.document = {"apps": {"app": [application("application_1_0001", APP, "ip-10-40-2-9.ec2.internal")]}}
    _refresh(url, output)
    inode = output.stat().st_ino

    _refresh(url, output)

    assert output.stat().st_ino == inode  # a rewrite would have renamed a new file over it


def test_the_resource_manager_address_comes_from_yarn_site(tmp_path: Path) -> None:
    site = tmp_path / "yarn-site.xml"

    def write(properties: dict[str, str]) -> None:
        entries = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in properties.items())
        site.write_text(f'<?xml version="1.0"?><configuration>{entries}</configuration>', encoding="utf-8")

    assert yarn_discovery.resource_manager_url(tmp_path / "missing.xml", hostname="primary") == "http://primary:8088"
    write({"yarn.resourcemanager.hostname": "ip-10-40-0-5.ec2.internal"})
    assert yarn_discovery.resource_manager_url(site) == "http://ip-10-40-0-5.ec2.internal:8088"
    write({"yarn.resourcemanager.hostname": "rm", "yarn.resourcemanager.webapp.address": "0.0.0.0:8188"})
    assert yarn_discovery.resource_manager_url(site) == "http://rm:8188"
    # In-transit encryption can make the web API HTTPS only.
    write({"yarn.resourcemanager.hostname": "rm", "yarn.http.policy": "HTTPS_ONLY",
           "yarn.resourcemanager.webapp.https.address": "${yarn.resourcemanager.hostname}:8090"})
    assert yarn_discovery.resource_manager_url(site) == "https://rm:8090"


def test_the_application_name_is_the_name_the_deploy_gives_the_streaming_job() -> None:
    artifacts = JobArtifacts(job_uri="s3://b/j.py", wheel_uri="s3://b/w.whl", config_uri="s3://b/c.json",
                             jar_uris=("s3://b/k.jar",))
    args = list(spark_submit_step(JobKind.STREAMING, artifacts, Settings.model_validate({})).args)

    assert args[args.index("--name") + 1] == APP
    assert args[args.index("--deploy-mode") + 1] == "cluster"  # the YARN name is fixed at submission in this mode
    assert "spark.yarn.maxAppAttempts=4" in args
    assert MonitoringSettings().streaming_metrics_port == PORT


def test_the_program_imports_only_the_standard_library() -> None:
    tree = ast.parse(PROGRAM.read_text(encoding="utf-8"))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}

    assert modules - set(sys.stdlib_module_names) == set()


def _command(output: Path, url: str, *extra: str) -> list[str]:
    """The unit's ExecStart (infra/emr_bootstrap.discovery_command) with this interpreter and checkout."""
    return [*emr_bootstrap.discovery_command(python=sys.executable, program=str(PROGRAM), output=str(output)),
            "--resource-manager", url, *extra]


def test_the_units_command_line_runs_the_program_as_a_script(
        resource_manager: tuple[str, type[ResourceManager]], tmp_path: Path) -> None:
    url, rm = resource_manager
    rm.document = {"apps": {"app": [application("application_1_0001", APP, "127.0.0.1")]}}
    output = tmp_path / "claims-stream.json"

    result = subprocess.run(_command(output, url, "--once"), capture_output=True, text=True, check=False,
                            timeout=60, cwd=tmp_path, env={"PATH": os.environ["PATH"]})  # no PYTHONPATH: stdlib

    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text(encoding="utf-8"))[0]["targets"] == [f"127.0.0.1:{PORT}"]
    assert f"targets of YARN application '{APP}': 127.0.0.1:{PORT}" in result.stderr


def _wait_for(condition: Any, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + LOOP_SECONDS
    while not condition():
        assert process.poll() is None, f"the discovery loop exited while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_the_loop_survives_an_unreachable_resource_manager_and_recovers_when_it_answers(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "claims-stream.json"
    output.write_text("[]\n", encoding="utf-8")
    log_file = tmp_path / "discovery.log"
    with log_file.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(_command(output, f"http://127.0.0.1:{port}", "--interval", "0.2"),
                                   stdout=log, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    server = None
    try:
        _wait_for(lambda: log_file.read_text(encoding="utf-8").count("left as it was") >= 2, process,
                  "two passes that found no ResourceManager")
        assert output.read_text(encoding="utf-8") == "[]\n"
        server, rm, thread = serve(port)  # the ResourceManager comes up (after the bootstrap actions, on EMR)
        rm.document = {"apps": {"app": [application("application_1_0001", APP, "ip-10-40-2-9.ec2.internal")]}}
        _wait_for(lambda: output.read_text(encoding="utf-8") != "[]\n", process, "the driver's target")

        assert process.poll() is None
        assert json.loads(output.read_text(encoding="utf-8"))[0]["targets"] == [f"ip-10-40-2-9.ec2.internal:{PORT}"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        if server is not None:
            server.shutdown()
            thread.join()
