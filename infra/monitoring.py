"""Metrics and alerting: Amazon Managed Prometheus (AMP) with the pipeline's rules, Alertmanager routes and scrape
configuration, plus optional in-cluster Prometheus and Grafana on Kubernetes.

Why AMP: the apps on EMR remote-write their Prometheus metrics (lag, rejects per reason code, throughput) into a
managed, KMS-encrypted workspace; the alert rules in configs/monitoring/prometheus-rules.yaml are evaluated there, so
alerting works without any cluster of our own. Everything comes from the same files the local Prometheus uses
(`make monitor-up`) and the tests check with promtool and amtool:

- prometheus-rules.yaml -> the workspace's rule group namespace, unchanged;
- alertmanager.yml -> the workspace's Alertmanager definition: the same routes by severity, each receiver given an
  SNS topic of its own (KMS-encrypted; SNS is the only receiver type AMP supports), subscribed to by the on-call
  tooling outside this stack;
- scrape-jobs.yaml -> the scrape configuration of the Prometheus agent that runs beside the apps and remote-writes
  to the workspace (SigV4), stored in SSM Parameter Store for the nodes to read, and added to the in-cluster
  Prometheus when Kubernetes is enabled. On EMR the `claims-stream` job's target comes from a file_sd file that the
  primary node's discovery service keeps current from YARN (the driver runs on a core node, infra/yarn_discovery.py);
  the other jobs are static on localhost.

Teams that already run Kubernetes can also get Prometheus + Grafana (kube-prometheus-stack) with the dashboards in
configs/monitoring/grafana/*.json; the Kubernetes provider is created by the program from stack config and passed
in, never built here.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from infra import emr_bootstrap

DASHBOARD_LABEL = "grafana_dashboard"
ALERTMANAGER_FILE = "alertmanager.yml"
SCRAPE_JOBS_FILE = "scrape-jobs.yaml"
AGENT_CONFIG_FILE = "prometheus-agent.yml"
PROMETHEUS_CHART = "kube-prometheus-stack"
PROMETHEUS_CHART_REPO = "https://prometheus-community.github.io/helm-charts"
# EMR jobs whose targets are not on the primary node: job -> the file_sd file the node's discovery service writes.
EMR_FILE_SD_JOBS: Mapping[str, str] = {"claims-stream": emr_bootstrap.STREAM_TARGETS_FILE}
# How often the agent re-reads a file_sd file besides reacting to its changes (inotify).
FILE_SD_REFRESH_INTERVAL = "1m"


class MonitoringAssetError(ValueError):
    """A rules or dashboard file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class MonitoringAssets:
    """The rule groups (Prometheus rules YAML text), dashboards (file name -> JSON text), the Alertmanager
    configuration and the scrape jobs (YAML texts; without them no Alertmanager definition or agent config)."""

    rule_groups_yaml: str
    dashboards: Mapping[str, str] = field(default_factory=dict)
    alertmanager_yaml: str | None = None
    scrape_jobs_yaml: str | None = None


def validate_rule_groups(text: str, source: str) -> str:
    """Check the text is a Prometheus rules file with at least one named group holding rules; return it unchanged."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        msg = f"{source}: expected Prometheus rules YAML, found invalid YAML ({error})"
        raise MonitoringAssetError(msg) from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not groups:
        msg = f"{source}: expected a top-level non-empty 'groups' list, found {type(groups).__name__}"
        raise MonitoringAssetError(msg)
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or not group.get("name") or not isinstance(group.get("rules"), list):
            msg = f"{source}: groups[{index}]: expected a mapping with 'name' and a 'rules' list"
            raise MonitoringAssetError(msg)
    return text


def validate_alertmanager(text: str, source: str) -> str:
    """Check the text is an Alertmanager configuration with a route and named receivers; return it unchanged."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        msg = f"{source}: expected Alertmanager YAML, found invalid YAML ({error})"
        raise MonitoringAssetError(msg) from None
    receivers = document.get("receivers") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(document.get("route"), dict) or not receivers:
        msg = f"{source}: expected a mapping with a 'route' and a non-empty 'receivers' list"
        raise MonitoringAssetError(msg)
    if any(not isinstance(receiver, dict) or not receiver.get("name") for receiver in receivers):
        msg = f"{source}: expected every receiver to have a 'name'"
        raise MonitoringAssetError(msg)
    return text


def validate_scrape_jobs(text: str, source: str) -> str:
    """Check the text lists scrape jobs, each with a job_name and an integer port; return it unchanged."""
    document = yaml.safe_load(text)
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, list) or not jobs or any(
            not isinstance(job, dict) or not job.get("job_name") or not isinstance(job.get("port"), int)
            for job in jobs):
        msg = f"{source}: expected a non-empty 'jobs' list, each with 'job_name' and an integer 'port'"
        raise MonitoringAssetError(msg)
    return text


def _optional_text(path: Path | None, validate: Callable[[str, str], str]) -> str | None:
    if path is None or not path.is_file():
        return None
    return validate(path.read_text(encoding="utf-8"), str(path))


def load_monitoring_assets(rules_file: Path, dashboards_dir: Path, alertmanager_file: Path | None = None,
                           scrape_jobs_file: Path | None = None) -> MonitoringAssets:
    """Read the rules file (required), every dashboard JSON (optional directory), and the Alertmanager and
    scrape-jobs files (by default alertmanager.yml and scrape-jobs.yaml beside the rules file, when present)."""
    if not rules_file.is_file():
        msg = f"{rules_file}: expected the Prometheus rules file (monitoring.rulesFile), found no such file"
        raise MonitoringAssetError(msg)
    rules = validate_rule_groups(rules_file.read_text(encoding="utf-8"), str(rules_file))
    alertmanager = _optional_text(alertmanager_file or rules_file.parent / ALERTMANAGER_FILE, validate_alertmanager)
    scrape_jobs = _optional_text(scrape_jobs_file or rules_file.parent / SCRAPE_JOBS_FILE, validate_scrape_jobs)
    dashboards: dict[str, str] = {}
    for path in sorted(dashboards_dir.glob("*.json")) if dashboards_dir.is_dir() else []:
        text = path.read_text(encoding="utf-8")
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            msg = f"{path}:{error.lineno}: expected a Grafana dashboard JSON document, found invalid JSON"
            raise MonitoringAssetError(msg) from None
        dashboards[path.name] = text
    return MonitoringAssets(rule_groups_yaml=rules, dashboards=dashboards, alertmanager_yaml=alertmanager,
                            scrape_jobs_yaml=scrape_jobs)


def amp_alertmanager_definition(alertmanager_yaml: str, topic_arns: Mapping[str, str], region: str) -> str:
    """The AMP Alertmanager definition: the same routes, each receiver publishing to its SNS topic (SigV4).

    AMP wants the Alertmanager configuration as a string under `alertmanager_config`, and accepts SNS receivers only;
    message attributes carry the receiver so one subscription filter can tell pages from the rest.
    """
    document = yaml.safe_load(alertmanager_yaml)
    for receiver in document["receivers"]:
        name = receiver["name"]
        if name not in topic_arns:
            msg = f"alertmanager receivers: expected an SNS topic for {name!r}, found topics for {sorted(topic_arns)}"
            raise MonitoringAssetError(msg)
        receiver["sns_configs"] = [{"topic_arn": topic_arns[name], "sigv4": {"region": region},
                                    "attributes": {"receiver": name}}]
    # A literal block keeps the embedded configuration readable in the console and in diffs.
    return "alertmanager_config: |\n" + textwrap.indent(yaml.safe_dump(document, sort_keys=False), "  ")


def receiver_names(alertmanager_yaml: str) -> list[str]:
    """The receivers of an Alertmanager configuration, in file order."""
    return [str(receiver["name"]) for receiver in yaml.safe_load(alertmanager_yaml)["receivers"]]


def scrape_configs(scrape_jobs_yaml: str, host: str = "localhost") -> list[dict[str, Any]]:
    """One static scrape config per job of scrape-jobs.yaml, at `host` and the job's port."""
    document = yaml.safe_load(scrape_jobs_yaml)
    return [{"job_name": job["job_name"], "metrics_path": job.get("metrics_path", "/metrics"),
             "static_configs": [{"targets": [f"{host}:{job['port']}"]}]} for job in document["jobs"]]


def agent_config_parameter_name(component_name: str) -> str:
    """The SSM parameter holding the agent's configuration, for the Monitoring component called `component_name`.

    The one place the name is made: the component creates the parameter under it and passes the created name on
    (`Monitoring.agent_config_parameter`) to the EMR bootstrap and the instance role, which never rebuild it.
    """
    return f"/claims/{component_name}/{AGENT_CONFIG_FILE}"


def emr_scrape_jobs(scrape_jobs_yaml: str) -> str:
    """The scrape-jobs text reduced to the jobs marked `on_emr: true` (what the agent on the primary node reaches)."""
    document = yaml.safe_load(scrape_jobs_yaml)
    document["jobs"] = [job for job in document["jobs"] if job.get("on_emr") is True]
    if not document["jobs"]:
        msg = f"{SCRAPE_JOBS_FILE}: expected at least one job with 'on_emr: true' for the EMR agent, found none"
        raise MonitoringAssetError(msg)
    return yaml.safe_dump(document, sort_keys=False)


def agent_config(scrape_jobs_yaml: str, *, remote_write_url: str, region: str, cluster: str,
                 host: str = "localhost", file_sd: Mapping[str, str] = EMR_FILE_SD_JOBS) -> str:
    """prometheus.yml of the agent on the EMR primary node: the pipeline's `on_emr` scrape jobs, remote-written to
    AMP with SigV4 (the instance role's credentials).

    Jobs named in `file_sd` (job -> file) take their targets from that file_sd file instead of `host`: the stream's
    driver runs wherever YARN placed it, and the discovery service on the node writes where (infra/yarn_discovery.py).
    """
    document = yaml.safe_load(scrape_jobs_yaml)
    configs = scrape_configs(emr_scrape_jobs(scrape_jobs_yaml), host)
    unknown = sorted(set(file_sd) - {config["job_name"] for config in configs})
    if unknown:
        msg = (f"{SCRAPE_JOBS_FILE}: expected an 'on_emr: true' job for each discovered job {unknown}, found only "
               f"{[config['job_name'] for config in configs]}")
        raise MonitoringAssetError(msg)
    for config in configs:
        if config["job_name"] in file_sd:
            del config["static_configs"]
            config["file_sd_configs"] = [{"files": [file_sd[config["job_name"]]],
                                          "refresh_interval": FILE_SD_REFRESH_INTERVAL}]
    config = {
        "global": {"scrape_interval": document.get("scrape_interval", "15s"),
                   "scrape_timeout": document.get("scrape_timeout", "10s"),
                   "external_labels": {"cluster": cluster}},
        "scrape_configs": configs,
        "remote_write": [{"url": remote_write_url, "sigv4": {"region": region},
                          # Small batches, sent often: alerts see fresh data without a large memory buffer.
                          "queue_config": {"max_samples_per_send": 1000, "batch_send_deadline": "5s"}}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def amp_publish_policy(topic_arn: str, workspace_arn: str) -> dict[str, Any]:
    """SNS topic policy: only this AMP workspace's Alertmanager may publish (confused-deputy guard on the ARN)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowManagedPrometheusAlertmanager",
            "Effect": "Allow",
            "Principal": {"Service": "aps.amazonaws.com"},
            "Action": ["sns:Publish", "sns:GetTopicAttributes"],
            "Resource": topic_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": workspace_arn}},
        }],
    }


def configmap_name(file_name: str) -> str:
    """Kubernetes-safe ConfigMap name for a dashboard file (`Claims Pipeline.json` -> `dashboard-claims-pipeline`)."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(file_name).stem.lower()).strip("-")
    return f"dashboard-{stem}"[:63].rstrip("-")


@dataclass(frozen=True)
class KubernetesMonitoringArgs:
    """Where and how to run Prometheus + Grafana in Kubernetes."""

    provider: pulumi.ProviderResource
    namespace: str = "monitoring"
    chart_version: str = "75.15.1"
    prometheus_role_arn: str | None = None


@dataclass(frozen=True)
class MonitoringArgs:
    """AMP workspace settings and the assets to load."""

    region: str
    kms_key_arn: pulumi.Input[str]
    assets: MonitoringAssets
    log_retention_days: int = 365
    kubernetes: KubernetesMonitoringArgs | None = None

    def __post_init__(self) -> None:
        validate_rule_groups(self.assets.rule_groups_yaml, "MonitoringArgs.assets.rule_groups_yaml")
        if self.assets.alertmanager_yaml is not None:
            validate_alertmanager(self.assets.alertmanager_yaml, "MonitoringArgs.assets.alertmanager_yaml")
        if self.assets.scrape_jobs_yaml is not None:
            validate_scrape_jobs(self.assets.scrape_jobs_yaml, "MonitoringArgs.assets.scrape_jobs_yaml")
        names = [configmap_name(name) for name in self.assets.dashboards]
        if len(set(names)) != len(names):
            msg = f"MonitoringArgs.assets.dashboards: expected distinct dashboard names, found {sorted(names)}"
            raise ValueError(msg)


class Monitoring(pulumi.ComponentResource):
    """AMP workspace + rule namespace; optionally Prometheus/Grafana with dashboards on Kubernetes."""

    workspace_id: pulumi.Output[str]
    workspace_arn: pulumi.Output[str]
    prometheus_endpoint: pulumi.Output[str]
    remote_write_url: pulumi.Output[str]
    alert_topic_arns: dict[str, pulumi.Output[str]]
    agent_config_parameter: pulumi.Output[str] | None
    agent_config_parameter_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        workspace = self._create_workspace()
        aws.amp.RuleGroupNamespace(f"{name}-rules", name="claims-pipeline", workspace_id=workspace.id,
                                   data=args.assets.rule_groups_yaml, opts=self._child())
        self.workspace_id = workspace.id
        self.workspace_arn = workspace.arn
        self.prometheus_endpoint = workspace.prometheus_endpoint
        self.remote_write_url = workspace.prometheus_endpoint.apply(
            lambda endpoint: f"{endpoint.rstrip('/')}/api/v1/remote_write")
        self.alert_topic_arns = self._create_alertmanager(workspace)
        parameter = self._create_agent_config()
        self.agent_config_parameter = parameter.name if parameter is not None else None
        self.agent_config_parameter_arn = parameter.arn if parameter is not None else None
        if args.kubernetes is not None:
            self._create_kubernetes_stack(args.kubernetes)
        self.register_outputs({
            "workspace_id": self.workspace_id,
            "remote_write_url": self.remote_write_url,
            "alert_topic_arns": self.alert_topic_arns,
            "agent_config_parameter": self.agent_config_parameter,
        })

    def _child(self, provider: pulumi.ProviderResource | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=provider)

    def _create_workspace(self) -> aws.amp.Workspace:
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-amp-logs", name=f"/claims/{self._name}/amp",
            retention_in_days=self._args.log_retention_days, kms_key_id=self._args.kms_key_arn, opts=self._child())
        return aws.amp.Workspace(
            f"{self._name}-workspace", alias=self._name, kms_key_arn=self._args.kms_key_arn,
            # AMP wants the log-stream wildcard form of the log group ARN.
            logging_configuration={"log_group_arn": log_group.arn.apply(lambda arn: f"{arn.removesuffix(':*')}:*")},
            opts=self._child())

    def _create_alertmanager(self, workspace: aws.amp.Workspace) -> dict[str, pulumi.Output[str]]:
        """One encrypted SNS topic per receiver, AMP allowed to publish to it, and the Alertmanager definition."""
        text = self._args.assets.alertmanager_yaml
        if text is None:
            return {}
        topics: dict[str, pulumi.Output[str]] = {}
        for receiver in receiver_names(text):
            topic = aws.sns.Topic(f"{self._name}-{receiver}", name=f"{self._name}-{receiver}",
                                  kms_master_key_id=self._args.kms_key_arn, opts=self._child())
            aws.sns.TopicPolicy(f"{self._name}-{receiver}-policy", arn=topic.arn,
                                policy=pulumi.Output.all(topic.arn, workspace.arn).apply(
                                    lambda arns: json.dumps(amp_publish_policy(arns[0], arns[1]))),
                                opts=self._child())
            topics[receiver] = topic.arn
        region = self._args.region
        definition = pulumi.Output.all(**topics).apply(
            lambda arns: amp_alertmanager_definition(text, arns, region))
        aws.amp.AlertManagerDefinition(f"{self._name}-alertmanager", workspace_id=workspace.id,
                                       definition=definition, opts=self._child())
        return topics

    def _create_agent_config(self) -> aws.ssm.Parameter | None:
        """The agent's prometheus.yml in SSM Parameter Store (read by the EMR primary node's bootstrap)."""
        text = self._args.assets.scrape_jobs_yaml
        if text is None:
            return None
        emr_scrape_jobs(text)  # fails now, naming the file, rather than inside an apply
        region, cluster = self._args.region, self._name
        value = self.remote_write_url.apply(
            lambda url: agent_config(text, remote_write_url=url, region=region, cluster=cluster))
        return aws.ssm.Parameter(
            f"{self._name}-agent-config", name=agent_config_parameter_name(self._name), type="String",
            value=value, tier="Standard", opts=self._child(),
            description="Prometheus agent configuration, from configs/monitoring/scrape-jobs.yaml")

    def _create_kubernetes_stack(self, kube: KubernetesMonitoringArgs) -> None:
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-namespace", metadata={"name": kube.namespace}, opts=self._child(kube.provider))
        for file_name, dashboard in sorted(self._args.assets.dashboards.items()):
            name = configmap_name(file_name)
            k8s.core.v1.ConfigMap(
                f"{self._name}-{name}",
                metadata={"name": name, "namespace": namespace.metadata["name"], "labels": {DASHBOARD_LABEL: "1"}},
                data={file_name: dashboard},
                opts=self._child(kube.provider))
        k8s.helm.v3.Release(
            f"{self._name}-prometheus-stack",
            name="claims-monitoring",
            chart=PROMETHEUS_CHART,
            version=kube.chart_version,
            repository_opts={"repo": PROMETHEUS_CHART_REPO},
            namespace=namespace.metadata["name"],
            values=pulumi.Output.all(self.remote_write_url, self.prometheus_endpoint).apply(
                lambda urls: self._helm_values(kube, remote_write_url=urls[0], query_url=urls[1])),
            atomic=True,
            opts=self._child(kube.provider))

    def _helm_values(self, kube: KubernetesMonitoringArgs, *, remote_write_url: str, query_url: str) -> dict[str, Any]:
        region = self._args.region
        service_account: dict[str, Any] = {}
        if kube.prometheus_role_arn:
            service_account = {"annotations": {"eks.amazonaws.com/role-arn": kube.prometheus_role_arn}}
        return {
            "prometheus": {
                "serviceAccount": service_account,
                "prometheusSpec": {
                    # Local retention is short: AMP holds the long-term series and evaluates the alert rules.
                    "retention": "24h",
                    "remoteWrite": [{"url": remote_write_url, "sigv4": {"region": region}}],
                    # The pipeline's own jobs (scrape-jobs.yaml), beside the chart's Kubernetes ones.
                    "additionalScrapeConfigs": (scrape_configs(self._args.assets.scrape_jobs_yaml)
                                                if self._args.assets.scrape_jobs_yaml else []),
                },
            },
            "grafana": {
                "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                           "searchNamespace": kube.namespace}},
                "additionalDataSources": [{
                    "name": "Amazon Managed Prometheus",
                    "type": "prometheus",
                    "url": query_url.rstrip("/"),
                    "jsonData": {"sigV4Auth": True, "sigV4Region": region, "sigV4AuthType": "default"},
                }],
            },
        }
