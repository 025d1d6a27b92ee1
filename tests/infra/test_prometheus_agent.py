"""The Prometheus agent on the EMR primary node and the alert topics' key, under Pulumi mocks and on real engines.

What is proved: the lake key lets SNS and AMP use it for this account's alert topics only; the EMR cluster gets a
second bootstrap action that reads exactly the SSM parameter the monitoring component created (one name, passed on,
never rebuilt) and the instance role may read that one parameter and remote-write to that one workspace; the script
installs only the pinned tarball (a wrong digest is refused before anything is installed) and only on the primary
node; the agent's command line runs a real Prometheus in agent mode that remote-writes what it scraped.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from infra import emr_bootstrap, yarn_discovery
from infra.iam_documents import ALERT_TOPIC_SERVICES, emr_instance_policy, kms_key_policy
from infra.monitoring import AGENT_CONFIG_FILE, MonitoringAssetError, agent_config, agent_config_parameter_name
from infra.prometheus_release import PrometheusReleaseError, fetch_release, tarball_path, verify_tarball
from libs.monitoring.assets import SCRAPE_JOBS_FILE
from libs.monitoring.tools import ToolNotFoundError, ensure_tools, tool_path
from libs.settings import MonitoringSettings
from tests.infra import fake_yarn
from tests.infra.mocks import ACCOUNT_ID, REGION, StackRun
from tests.monitoring.conftest import free_port

EMR = "aws:emr/cluster:Cluster"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
READY_SECONDS = 60.0
REMOTE_WRITE_SECONDS = 90.0


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in document["Statement"] if s.get("Sid") == sid]
    return found


# --- item: the lake key and the encrypted alert topics ------------------------------------------------------------

def _start_agent(prometheus_binary: Path, config: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], IO[bytes],
                                                                              int]:
    """The agent exactly as the bootstrap's unit runs it (agent_command), on a free port, logging to agent.log."""
    agent_port = free_port()
    command = emr_bootstrap.agent_command(install_dir=str(prometheus_binary.parent), config_path=str(config),
                                          storage_path=str(tmp_path / "wal"), port=agent_port)
    # Credentials for the sigv4 block (never real ones, and no instance metadata lookup).
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": REGION,
           "AWS_EC2_METADATA_DISABLED": "true"}
    log = (tmp_path / "agent.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log, agent_port


def test_the_key_policy_lets_sns_and_amp_use_the_key_for_this_account_only() -> None:
    document = kms_key_policy(account_id="123456789012", partition="aws", region="us-east-1")

    statement = _statement(document, "AlertTopicsPublishEncrypted")
    assert statement["Principal"] == {"Service": ["sns.amazonaws.com", "aps.amazonaws.com"]}
    assert statement["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    # Nothing else reaches the services: no other statement names them.
    others = [s for s in document["Statement"] if s is not statement]
    assert not any(set(ALERT_TOPIC_SERVICES) & set(json.dumps(s.get("Principal", {})).split('"')) for s in others)


def test_the_deployed_key_grants_the_alert_services_and_encrypts_every_alert_topic(stack_run: StackRun) -> None:
    key = stack_run.one("aws:kms/key:Key")
    statement = _statement(json.loads(key.inputs["policy"]), "AlertTopicsPublishEncrypted")
    topics = stack_run.of_type("aws:sns/topic:Topic")

    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT_ID
    assert topics
    assert {topic.inputs["kmsMasterKeyId"] for topic in topics} == {key.state["arn"]}


# --- item: the agent's SSM parameter, bootstrap action and IAM under mocks ---------------------------------------

def test_the_bootstrap_reads_exactly_the_parameter_the_monitoring_component_created(stack_run: StackRun) -> None:
    parameter = stack_run.one(SSM_PARAMETER)
    bucket = stack_run.outputs["artifact_bucket"]
    actions = {action["name"]: action for action in stack_run.one(EMR).inputs["bootstrapActions"]}

    assert parameter.inputs["name"] == agent_config_parameter_name(f"claims-{stack_run.stack}-monitoring")
    assert parameter.inputs["name"].endswith(f"-monitoring/{AGENT_CONFIG_FILE}")
    agent = actions["prometheus-agent"]
    assert agent["path"] == f"s3://{bucket}/{emr_bootstrap.AGENT_SCRIPT_KEY}"
    assert agent["args"] == [f"s3://{bucket}/{emr_bootstrap.AGENT_TARBALL_PREFIX}", parameter.inputs["name"], REGION,
                             f"s3://{bucket}/{emr_bootstrap.DISCOVERY_SCRIPT_KEY}"]
    assert stack_run.outputs["monitoring_agent_config_parameter"] == parameter.inputs["name"]


def test_the_script_and_the_pinned_tarball_of_the_primary_nodes_architecture_are_shipped(
        stack_run: StackRun) -> None:
    objects = {o.inputs["key"]: o.inputs for o in stack_run.of_type(OBJECT)}
    primary_type = stack_run.one(EMR).inputs["masterInstanceGroup"]["instanceType"]
    architecture = emr_bootstrap.instance_architecture(primary_type)
    tarball = objects[emr_bootstrap.prometheus_tarball_key(architecture)]

    assert objects[emr_bootstrap.AGENT_SCRIPT_KEY]["content"] == emr_bootstrap.AGENT_SCRIPT
    # The stream driver's discovery: this checkout's infra/yarn_discovery.py, byte for byte, encrypted.
    discovery = objects[emr_bootstrap.DISCOVERY_SCRIPT_KEY]
    assert discovery["content"] == emr_bootstrap.DISCOVERY_SOURCE.read_text(encoding="utf-8")
    assert discovery["serverSideEncryption"] == "aws:kms"
    assert tarball["source"].path == str(tarball_path(architecture))
    assert tarball["serverSideEncryption"] == "aws:kms"
    assert len([key for key in objects if key.endswith(".tar.gz")]) == 1


def test_the_instance_role_reads_that_one_parameter_and_writes_to_that_one_workspace(stack_run: StackRun) -> None:
    parameter_arn = stack_run.one(SSM_PARAMETER).state["arn"]
    workspace_arn = stack_run.one("aws:amp/workspace:Workspace").state["arn"]
    (policy,) = [p for p in stack_run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-instance-policy")]
    document = json.loads(policy.inputs["policy"])

    assert parameter_arn == f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter{stack_run.one(SSM_PARAMETER).inputs['name']}"
    assert _statement(document, "ReadPrometheusAgentConfig")["Action"] == ["ssm:GetParameter"]
    assert _statement(document, "ReadPrometheusAgentConfig")["Resource"] == [parameter_arn]
    assert _statement(document, "RemoteWriteMetrics") == {
        "Sid": "RemoteWriteMetrics", "Effect": "Allow", "Action": ["aps:RemoteWrite"], "Resource": [workspace_arn]}
    assert not any("ssm:" in action for s in document["Statement"] if s["Sid"] != "ReadPrometheusAgentConfig"
                   for action in s["Action"])


def test_the_client_group_of_every_node_admits_the_stream_metrics_port_between_the_nodes(
        stack_run: StackRun) -> None:
    # The agent (primary node) scrapes the stream's driver in the YARN application master (a core node).
    groups = {g.name: g for g in stack_run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    (client,) = [g for name, g in groups.items() if name.endswith("-emr-client-sg")]
    client_id = f"{client.name}-id"
    ec2 = stack_run.one(EMR).inputs["ec2Attributes"]
    port = MonitoringSettings().streaming_metrics_port
    rules = [(rule.type.rsplit(":", 1)[-1], rule.inputs) for rule in
             [*stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
              *stack_run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
             if rule.inputs.get("fromPort") == port or rule.inputs.get("toPort") == port]

    assert ec2["additionalMasterSecurityGroups"] == client_id
    assert ec2["additionalSlaveSecurityGroups"] == client_id
    assert sorted(kind for kind, _ in rules) == ["SecurityGroupEgressRule", "SecurityGroupIngressRule"]
    for _kind, rule in rules:
        assert (rule["securityGroupId"], rule["referencedSecurityGroupId"]) == (client_id, client_id)
        assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", port, port)
        assert "cidrIpv4" not in rule  # a peer group, never an address range


def test_without_an_agent_the_role_gets_no_ssm_statement() -> None:
    document = emr_instance_policy(
        lake_bucket_arns=["arn:aws:s3:::raw"], artifact_bucket_arn="arn:aws:s3:::artifacts", log_prefix="logs/",
        kms_key_arn="arn:aws:kms:us-east-1:1:key/k", msk_cluster_arn="arn:aws:kafka:us-east-1:1:cluster/c/u",
        redshift_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:s", amp_workspace_arn="arn:aws:aps:ws",
        codeartifact_domain_arn="arn:d", codeartifact_repository_arn="arn:r")

    assert "ReadPrometheusAgentConfig" not in {s["Sid"] for s in document["Statement"]}


def test_graviton_primary_nodes_get_the_arm64_tarball_and_others_amd64() -> None:
    assert [emr_bootstrap.instance_architecture(t) for t in ("m6g.xlarge", "r7gd.2xlarge", "c7gn.large",
                                                              "is4gen.xlarge")] == ["arm64"] * 4
    assert [emr_bootstrap.instance_architecture(t) for t in ("m6i.xlarge", "r5.2xlarge", "g5.xlarge")] == [
        "amd64"] * 3
    with pytest.raises(ValueError, match=r"expected a name like m6g.xlarge, found 'xlarge'"):
        emr_bootstrap.instance_architecture("xlarge")


def test_scrape_jobs_without_an_emr_job_are_refused_naming_the_file() -> None:
    with pytest.raises(MonitoringAssetError, match=r"scrape-jobs.yaml: expected at least one job with 'on_emr: true'"):
        agent_config("jobs:\n  - {job_name: x, port: 1}\n", remote_write_url="http://x", region=REGION, cluster="c")


def test_the_agent_listens_on_the_prometheus_port_of_the_settings() -> None:
    assert MonitoringSettings().prometheus_port == emr_bootstrap.AGENT_PORT
    assert f"--web.listen-address=127.0.0.1:{MonitoringSettings().prometheus_port}" in emr_bootstrap.AGENT_SCRIPT


# --- the bootstrap script itself, with the AWS CLI, sudo and systemctl replaced by recorders ---------------------

@pytest.fixture
def node(tmp_path: Path) -> dict[str, Path]:
    """A fake node: shims for aws/sudo/systemctl on PATH that record their calls, a fake bucket directory."""
    bin_dir, bucket, calls = tmp_path / "bin", tmp_path / "bucket", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bucket / "bootstrap" / "prometheus").mkdir(parents=True)
    shims = {
        # s3 cp s3://bucket/<key> <dest>: copy from the bucket directory; ssm get-parameter: a fixed config.
        "aws": f'echo "aws $*" >> {calls}\n'
               f'if [ "$1" = s3 ]; then cp "{bucket}/${{4#s3://bucket/}}" "$5"; else echo "global: {{}}"; fi',
        # sudo tee <file>: keep what was written under written/; sudo test: nothing exists on a fresh node.
        "sudo": f'echo "sudo $*" >> {calls}\n'
                f'if [ "$1" = tee ]; then cat > "{tmp_path}/written/$(basename "$2")"; fi\n'
                f'if [ "$1" = test ]; then exit 1; fi',
        "systemctl": f'echo "systemctl $*" >> {calls}',
    }
    (tmp_path / "written").mkdir()
    for name, body in shims.items():
        shim = bin_dir / name
        shim.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        shim.chmod(0o755)
    script = tmp_path / "prometheus-agent.sh"
    script.write_text(emr_bootstrap.AGENT_SCRIPT, encoding="utf-8")
    return {"bin": bin_dir, "bucket": bucket, "calls": calls, "script": script, "info": tmp_path / "instance.json",
            "written": tmp_path / "written"}


def _run_script(node: dict[str, Path], *, primary: bool) -> subprocess.CompletedProcess[str]:
    node["info"].write_text(json.dumps({"isMaster": primary, "instanceGroupId": "ig-1"}), encoding="utf-8")
    env = {**os.environ, "PATH": f"{node['bin']}:{os.environ['PATH']}", "EMR_INSTANCE_INFO": str(node["info"])}
    return subprocess.run(["bash", str(node["script"]), "s3://bucket/bootstrap/prometheus",
                           "/claims/claims-dev-monitoring/prometheus-agent.yml", REGION,
                           f"s3://bucket/{emr_bootstrap.DISCOVERY_SCRIPT_KEY}"],
                          capture_output=True, text=True, env=env, check=False, timeout=60)


def _calls(node: dict[str, Path]) -> list[str]:
    return node["calls"].read_text(encoding="utf-8").splitlines() if node["calls"].exists() else []


def test_the_script_passes_bash_syntax_check(node: dict[str, Path]) -> None:
    result = subprocess.run(["bash", "-n", str(node["script"])], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


def test_core_and_task_nodes_install_nothing(node: dict[str, Path]) -> None:
    result = _run_script(node, primary=False)

    assert result.returncode == 0, result.stderr
    assert _calls(node) == []


def test_a_tarball_that_is_not_the_pinned_release_is_refused_before_anything_is_installed(
        node: dict[str, Path]) -> None:
    architecture = emr_bootstrap.MACHINE_ARCHITECTURES[os.uname().machine]
    release = emr_bootstrap.prometheus_release_name(architecture)
    (node["bucket"] / "bootstrap" / "prometheus" / f"{release}.tar.gz").write_bytes(b"not the release")

    result = _run_script(node, primary=True)

    assert result.returncode == 1
    assert f"expected {release}.tar.gz with sha256 {emr_bootstrap.PROMETHEUS_SHA256[architecture]}" in result.stderr
    calls = _calls(node)
    assert calls == [f"aws s3 cp --only-show-errors s3://bucket/bootstrap/prometheus/{release}.tar.gz "
                     f"{calls[0].rsplit(' ', 1)[-1]}"]  # downloaded, then nothing: no sudo, no systemctl


def test_the_primary_node_installs_the_discovery_service_beside_the_agent(node: dict[str, Path]) -> None:
    # A synthetic release tarball, and the script with its digest in place of the pinned one: the rest of the script
    # runs as on the node (the real tarball is not needed to see what is installed and started).
    architecture = emr_bootstrap.MACHINE_ARCHITECTURES[os.uname().machine]
    release = emr_bootstrap.prometheus_release_name(architecture)
    staging = node["bucket"].parent / "staging" / release
    staging.mkdir(parents=True)
    (staging / "prometheus").write_text("#!/bin/sh\n", encoding="utf-8")
    tarball = node["bucket"] / "bootstrap" / "prometheus" / f"{release}.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(staging.parent), release], check=True)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    node["script"].write_text(emr_bootstrap.AGENT_SCRIPT.replace(emr_bootstrap.PROMETHEUS_SHA256[architecture],
                                                                 digest), encoding="utf-8")
    shutil.copy(emr_bootstrap.DISCOVERY_SOURCE, node["bucket"] / emr_bootstrap.DISCOVERY_SCRIPT_KEY)

    result = _run_script(node, primary=True)

    assert result.returncode == 0, result.stderr
    calls = _calls(node)
    assert f"aws s3 cp --only-show-errors s3://bucket/{emr_bootstrap.DISCOVERY_SCRIPT_KEY}" in "\n".join(calls)
    installed = [call for call in calls if call.startswith("sudo install ")]
    assert any(call.endswith(f"/claims-stream-discovery.py {emr_bootstrap.DISCOVERY_PROGRAM_PATH}")
               for call in installed), installed
    # The file_sd file exists before the agent starts (an empty list until the stream's driver is found), owned by
    # the agent's user, which the discovery service runs as.
    assert any(call.startswith(f"sudo install -m 0644 -o {emr_bootstrap.AGENT_USER} ")
               and call.endswith(f"/claims-stream.json {emr_bootstrap.STREAM_TARGETS_FILE}") for call in installed)
    unit = (node["written"] / f"{emr_bootstrap.DISCOVERY_SERVICE}.service").read_text(encoding="utf-8")
    assert f"ExecStart={' '.join(emr_bootstrap.discovery_command())}\n" in unit
    assert f"User={emr_bootstrap.AGENT_USER}\n" in unit
    assert "Restart=always\n" in unit
    enabled = [call for call in calls if "enable --now" in call]
    assert enabled == [f"sudo systemctl enable --now {emr_bootstrap.DISCOVERY_SERVICE}.service",
                       f"sudo systemctl enable --now {emr_bootstrap.AGENT_SERVICE}.service"]


# --- the release tarball fetch on the deployer's machine ------------------------------------------------------------

class _Files(http.server.BaseHTTPRequestHandler):
    body = b""
    requests: list[tuple[str, str, dict[str, str]]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        type(self).requests.append(("POST", self.path, dict(self.headers.items())))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Files]]]:
    """A loopback HTTP server: GET answers `body`, POST requests are recorded."""
    handler = type("Handler", (_Files,), {"body": b"", "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    thread.join()


def test_a_download_with_another_digest_is_discarded(tmp_path: Path, http_server) -> None:
    url, handler = http_server
    handler.body = b"tampered tarball"

    with pytest.raises(PrometheusReleaseError, match=r"expected sha256 ec7236ec.*nothing was kept"):
        fetch_release("arm64", tmp_path, base_url=url)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_tarball_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(PrometheusReleaseError,
                       match=r"run `.venv/bin/python -m infra.prometheus_release --arch amd64`"):
        verify_tarball(tarball_path("amd64", tmp_path), "amd64")


# --- the agent's command line on a real Prometheus ------------------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    try:
        ensure_tools()
    except ToolNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    return tool_path("prometheus")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_the_agent_command_runs_prometheus_in_agent_mode_and_remote_writes_the_scraped_jobs(
        tmp_path: Path, prometheus_binary: Path, http_server) -> None:
    receiver, handler = http_server
    registry = CollectorRegistry()
    Gauge("claims_stream_batches", "a sample to ship", registry=registry).set(1)
    app_port = free_port()
    server, thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    jobs = yaml.safe_load(SCRAPE_JOBS_FILE.read_text(encoding="utf-8"))
    jobs["scrape_interval"], jobs["scrape_timeout"] = "1s", "1s"  # the committed jobs, scraped at the test's app
    for job in jobs["jobs"]:
        job["port"] = app_port
    config = tmp_path / "agent.yml"
    config.write_text(agent_config(yaml.safe_dump(jobs), remote_write_url=f"{receiver}/api/v1/remote_write",
                                   region=REGION, cluster="claims-test-monitoring", host="127.0.0.1"),
                      encoding="utf-8")
    process, log, agent_port = _start_agent(prometheus_binary, config, tmp_path)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _ready(f"http://127.0.0.1:{agent_port}/-/ready") and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "agent.log").read_text(encoding="utf-8")
            time.sleep(0.25)
        deadline = time.monotonic() + REMOTE_WRITE_SECONDS
        while not handler.requests and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "agent.log").read_text(encoding="utf-8")
            time.sleep(0.25)
        flags = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{agent_port}/api/v1/status/flags", timeout=5).read())["data"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        server.shutdown()
        thread.join()

    assert flags["enable-feature"] == "agent"
    assert handler.requests, (tmp_path / "agent.log").read_text(encoding="utf-8")
    _method, path, headers = handler.requests[0]
    assert path == "/api/v1/remote_write"
    assert headers["Content-Encoding"] == "snappy", headers
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    # Not asserted: the SigV4 signature. Debian's 2.42 build (the local binary) parses `sigv4` but sends the
    # request unsigned - one more reason the nodes run the upstream release tarball, never Debian's package.


def _targets(agent_port: int) -> list[dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{agent_port}/api/v1/targets", timeout=5) as response:
            return list(json.loads(response.read())["data"]["activeTargets"])
    except (urllib.error.URLError, OSError):
        return []


def _stream_targets(agent_port: int) -> list[tuple[str, str, str]]:
    return sorted((t["scrapeUrl"], t["health"], t["labels"].get(yarn_discovery.APPLICATION_LABEL, ""))
                  for t in _targets(agent_port) if t["labels"].get("job") == "claims-stream")


def test_the_agent_scrapes_the_stream_driver_where_the_discovery_found_it_and_follows_it(
        tmp_path: Path, prometheus_binary: Path, http_server) -> None:
    """A real agent with the rendered config, a real discovery pass against a ResourceManager-shaped server: the
    claims-stream job scrapes the host YARN names, and moves with the driver when its next attempt runs elsewhere
    (127.0.0.1 and 127.0.0.2: two loopback addresses standing in for two core nodes)."""
    receiver, _handler = http_server
    registry = CollectorRegistry()
    Gauge("claims_stream_batches", "a sample to ship", registry=registry).set(1)
    app_port = free_port()
    drivers = [start_http_server(app_port, addr=address, registry=registry) for address in ("127.0.0.1", "127.0.0.2")]
    rm_server, rm, rm_thread = fake_yarn.serve()
    rm_url = f"http://127.0.0.1:{rm_server.server_address[1]}"
    targets_file = tmp_path / "claims-stream.json"
    jobs = yaml.safe_load(SCRAPE_JOBS_FILE.read_text(encoding="utf-8"))
    jobs["scrape_interval"], jobs["scrape_timeout"] = "1s", "1s"
    for job in jobs["jobs"]:
        job["port"] = app_port
    config = tmp_path / "agent.yml"
    config.write_text(agent_config(yaml.safe_dump(jobs), remote_write_url=f"{receiver}/api/v1/remote_write",
                                   region=REGION, cluster="claims-test-monitoring", host="127.0.0.1",
                                   file_sd={"claims-stream": str(targets_file)}), encoding="utf-8")
    rm.document = {"apps": {"app": [fake_yarn.application("application_1_0001", emr_bootstrap.STREAM_APP_NAME,
                                                          "127.0.0.1")]}}
    assert yarn_discovery.refresh(targets_file, app_name=emr_bootstrap.STREAM_APP_NAME, port=app_port,
                                  rm_url=rm_url) is not None
    process, log, agent_port = _start_agent(prometheus_binary, config, tmp_path)

    def wait_for(expected: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        deadline = time.monotonic() + REMOTE_WRITE_SECONDS
        found = _stream_targets(agent_port)
        while found != expected and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "agent.log").read_text(encoding="utf-8")
            time.sleep(0.25)
            found = _stream_targets(agent_port)
        return found

    try:
        first = wait_for([(f"http://127.0.0.1:{app_port}/metrics", "up", "application_1_0001")])
        # The driver's next attempt runs on another node; the discovery's next pass rewrites the file.
        rm.document = {"apps": {"app": [fake_yarn.application("application_1_0001", emr_bootstrap.STREAM_APP_NAME,
                                                              "127.0.0.2")]}}
        yarn_discovery.refresh(targets_file, app_name=emr_bootstrap.STREAM_APP_NAME, port=app_port, rm_url=rm_url)
        moved = wait_for([(f"http://127.0.0.2:{app_port}/metrics", "up", "application_1_0001")])
        exporter = [t["scrapeUrl"] for t in _targets(agent_port) if t["labels"].get("job") == "claims-exporter"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        for server, thread in drivers:
            server.shutdown()
            thread.join()
        rm_server.shutdown()
        rm_thread.join()

    assert first == [(f"http://127.0.0.1:{app_port}/metrics", "up", "application_1_0001")]
    assert moved == [(f"http://127.0.0.2:{app_port}/metrics", "up", "application_1_0001")]
    assert exporter == [f"http://127.0.0.1:{app_port}/metrics"]  # the exporter stays static, on the node itself
