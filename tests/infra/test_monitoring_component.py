"""The monitoring component under Pulumi mocks: the AMP workspace gets the committed rule groups, an Alertmanager
definition with the same routes (each receiver on its own encrypted SNS topic) and the agent's scrape configuration,
all from the files in configs/monitoring; amtool and promtool accept what is deployed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra import emr_bootstrap
from infra.monitoring import (
    FILE_SD_REFRESH_INTERVAL,
    MonitoringArgs,
    MonitoringAssetError,
    MonitoringAssets,
    agent_config,
    amp_alertmanager_definition,
    load_monitoring_assets,
    receiver_names,
)
from libs.monitoring.assets import ALERTMANAGER_FILE, DASHBOARDS_DIR, RULES_FILE, SCRAPE_JOBS_FILE
from libs.monitoring.tools import ToolNotFoundError, ensure_tools, run_tool
from tests.infra.mocks import REGION, StackRun

AMP_DEFINITION = "aws:amp/alertManagerDefinition:AlertManagerDefinition"
SNS_TOPIC = "aws:sns/topic:Topic"
SNS_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"


@pytest.fixture(scope="module")
def tools() -> None:
    try:
        ensure_tools()
    except ToolNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_assets_load_the_committed_alertmanager_and_scrape_jobs_beside_the_rules():
    assets = load_monitoring_assets(RULES_FILE, DASHBOARDS_DIR)

    assert assets.rule_groups_yaml == RULES_FILE.read_text(encoding="utf-8")
    assert assets.alertmanager_yaml == ALERTMANAGER_FILE.read_text(encoding="utf-8")
    assert assets.scrape_jobs_yaml == SCRAPE_JOBS_FILE.read_text(encoding="utf-8")
    assert set(assets.dashboards) == {path.name for path in DASHBOARDS_DIR.glob("*.json")}


def test_an_alertmanager_file_without_receivers_is_named(tmp_path: Path):
    (tmp_path / "rules.yaml").write_text("groups:\n  - name: g\n    rules: []\n", encoding="utf-8")
    (tmp_path / "alertmanager.yml").write_text("route: {receiver: x}\n", encoding="utf-8")

    with pytest.raises(MonitoringAssetError, match=r"alertmanager\.yml: expected a mapping with a 'route' and a"):
        load_monitoring_assets(tmp_path / "rules.yaml", tmp_path / "grafana")


def test_args_reject_scrape_jobs_without_ports():
    rules = RULES_FILE.read_text(encoding="utf-8")
    with pytest.raises(MonitoringAssetError, match=r"MonitoringArgs\.assets\.scrape_jobs_yaml: expected a non-empty"):
        MonitoringArgs(region=REGION, kms_key_arn="k",
                       assets=MonitoringAssets(rules, scrape_jobs_yaml="jobs:\n  - {job_name: x}\n"))


def test_the_amp_definition_keeps_the_routes_and_gives_every_receiver_its_topic(tools, tmp_path: Path):
    text = ALERTMANAGER_FILE.read_text(encoding="utf-8")
    arns = {name: f"arn:aws:sns:{REGION}:123456789012:{name}" for name in receiver_names(text)}

    definition = yaml.safe_load(amp_alertmanager_definition(text, arns, REGION))
    config = yaml.safe_load(definition["alertmanager_config"])
    path = tmp_path / "amp-alertmanager.yml"
    path.write_text(definition["alertmanager_config"], encoding="utf-8")

    assert config["route"] == yaml.safe_load(text)["route"]
    assert config["inhibit_rules"] == yaml.safe_load(text)["inhibit_rules"]
    for receiver in config["receivers"]:
        assert receiver["sns_configs"] == [{"topic_arn": arns[receiver["name"]], "sigv4": {"region": REGION},
                                            "attributes": {"receiver": receiver["name"]}}]
    result = run_tool("amtool", "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    routed = run_tool("amtool", "config", "routes", "test", f"--config.file={path}", "severity=critical")
    assert routed.stdout.strip() == "claims-page"


def test_a_receiver_without_a_topic_is_named():
    with pytest.raises(MonitoringAssetError, match=r"expected an SNS topic for 'claims-page'"):
        amp_alertmanager_definition(ALERTMANAGER_FILE.read_text(encoding="utf-8"), {}, REGION)


def test_the_agent_config_scrapes_the_emr_jobs_and_remote_writes_with_sigv4(tools, tmp_path: Path):
    jobs = [job for job in yaml.safe_load(SCRAPE_JOBS_FILE.read_text(encoding="utf-8"))["jobs"] if job.get("on_emr")]
    url = f"https://aps-workspaces.{REGION}.amazonaws.com/workspaces/ws-1/api/v1/remote_write"

    text = agent_config(SCRAPE_JOBS_FILE.read_text(encoding="utf-8"), remote_write_url=url, region=REGION,
                        cluster="claims-dev-monitoring")
    path = tmp_path / "agent.yml"
    path.write_text(text, encoding="utf-8")
    config = yaml.safe_load(text)

    assert [c["job_name"] for c in config["scrape_configs"]] == [job["job_name"] for job in jobs]
    assert {"claims-stream", "claims-exporter"} <= {job["job_name"] for job in jobs}
    by_job = {c["job_name"]: c for c in config["scrape_configs"]}
    # The stream's driver runs on a core node (YARN cluster mode): its target comes from the discovery's file.
    assert by_job["claims-stream"]["file_sd_configs"] == [
        {"files": [emr_bootstrap.STREAM_TARGETS_FILE], "refresh_interval": FILE_SD_REFRESH_INTERVAL}]
    assert "static_configs" not in by_job["claims-stream"]
    # Every other EMR job runs on the primary node itself.
    assert {name: c["static_configs"] for name, c in by_job.items() if name != "claims-stream"} == {
        job["job_name"]: [{"targets": [f"localhost:{job['port']}"]}] for job in jobs
        if job["job_name"] != "claims-stream"}
    assert config["remote_write"][0]["url"] == url
    assert config["remote_write"][0]["sigv4"] == {"region": REGION}
    result = run_tool("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the whole program under mocks (the session's stack runs) ----------------------------------------------------

def test_the_workspace_gets_the_committed_rules_unchanged(stack_run: StackRun):
    namespace = stack_run.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs

    assert namespace["data"] == RULES_FILE.read_text(encoding="utf-8")


def test_every_receiver_has_an_encrypted_topic_only_this_workspace_may_publish_to(stack_run: StackRun):
    receivers = receiver_names(ALERTMANAGER_FILE.read_text(encoding="utf-8"))
    topics = {receiver: [t for t in stack_run.of_type(SNS_TOPIC) if t.inputs["name"].endswith(f"-{receiver}")]
              for receiver in receivers}
    key_arn = stack_run.one("aws:kms/key:Key").state["arn"]
    workspace_arn = stack_run.one("aws:amp/workspace:Workspace").state["arn"]

    assert all(len(found) == 1 for found in topics.values()), topics
    assert len(stack_run.of_type(SNS_TOPIC)) == len(receivers)
    assert all(found[0].inputs["kmsMasterKeyId"] == key_arn for found in topics.values())
    policies = [json.loads(policy.inputs["policy"]) for policy in stack_run.of_type(SNS_POLICY)]
    assert len(policies) == len(receivers)
    for policy in policies:
        (statement,) = policy["Statement"]
        assert statement["Principal"] == {"Service": "aps.amazonaws.com"}
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": workspace_arn}}


def test_the_alertmanager_definition_routes_to_the_created_topics(stack_run: StackRun):
    definition = yaml.safe_load(stack_run.one(AMP_DEFINITION).inputs["definition"])
    config = yaml.safe_load(definition["alertmanager_config"])
    topic_arns = {resource.state["arn"] for resource in stack_run.of_type(SNS_TOPIC)}

    assert config["route"] == yaml.safe_load(ALERTMANAGER_FILE.read_text(encoding="utf-8"))["route"]
    assert {receiver["sns_configs"][0]["topic_arn"] for receiver in config["receivers"]} == topic_arns


def test_a_discovered_job_that_is_not_an_emr_job_is_refused_naming_the_file():
    with pytest.raises(MonitoringAssetError, match=r"scrape-jobs.yaml: expected an 'on_emr: true' job for each "
                                                   r"discovered job \['claims-stream'\], found only \['x'\]"):
        agent_config("jobs:\n  - {job_name: x, port: 1, on_emr: true}\n", remote_write_url="http://x",
                     region=REGION, cluster="c")


def test_the_agent_config_parameter_remote_writes_to_this_workspace(stack_run: StackRun):
    parameter = stack_run.one(SSM_PARAMETER).inputs
    value = parameter["value"]
    config = yaml.safe_load(value["value"] if isinstance(value, dict) else value)  # pulumi-aws marks it secret
    workspace = stack_run.one("aws:amp/workspace:Workspace").state

    assert parameter["name"].endswith("/prometheus-agent.yml")
    assert config["remote_write"][0]["url"] == f"{workspace['prometheusEndpoint'].rstrip('/')}/api/v1/remote_write"
    assert {c["job_name"] for c in config["scrape_configs"]} >= {"claims-stream", "claims-exporter"}
