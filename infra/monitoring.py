"""Metrics and alerting: Amazon Managed Prometheus (AMP) with the pipeline's rules, plus optional in-cluster
Prometheus and Grafana on Kubernetes.

Why AMP: the apps on EMR remote-write their Prometheus metrics (lag, rejects per reason code, throughput) into a
managed, KMS-encrypted workspace; the alert rules in configs/monitoring/prometheus-rules.yaml are evaluated there, so
alerting works without any cluster of our own. Teams that already run Kubernetes can also get Prometheus + Grafana
(kube-prometheus-stack) with the dashboards in configs/monitoring/grafana/*.json; the Kubernetes provider is created
by the program from stack config and passed in, never built here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

DASHBOARD_LABEL = "grafana_dashboard"
PROMETHEUS_CHART = "kube-prometheus-stack"
PROMETHEUS_CHART_REPO = "https://prometheus-community.github.io/helm-charts"


class MonitoringAssetError(ValueError):
    """A rules or dashboard file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class MonitoringAssets:
    """The rule groups (Prometheus rules YAML text) and dashboards (file name -> JSON text) to deploy."""

    rule_groups_yaml: str
    dashboards: Mapping[str, str] = field(default_factory=dict)


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


def load_monitoring_assets(rules_file: Path, dashboards_dir: Path) -> MonitoringAssets:
    """Read the rules file (required) and every dashboard JSON (optional directory)."""
    if not rules_file.is_file():
        msg = f"{rules_file}: expected the Prometheus rules file (monitoring.rulesFile), found no such file"
        raise MonitoringAssetError(msg)
    rules = validate_rule_groups(rules_file.read_text(encoding="utf-8"), str(rules_file))
    dashboards: dict[str, str] = {}
    for path in sorted(dashboards_dir.glob("*.json")) if dashboards_dir.is_dir() else []:
        text = path.read_text(encoding="utf-8")
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            msg = f"{path}:{error.lineno}: expected a Grafana dashboard JSON document, found invalid JSON"
            raise MonitoringAssetError(msg) from None
        dashboards[path.name] = text
    return MonitoringAssets(rule_groups_yaml=rules, dashboards=dashboards)


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
        if args.kubernetes is not None:
            self._create_kubernetes_stack(args.kubernetes)
        self.register_outputs({
            "workspace_id": self.workspace_id,
            "remote_write_url": self.remote_write_url,
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
