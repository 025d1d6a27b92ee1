"""The claims REST API on the stack's Kubernetes cluster: StatefulSet, internal TLS Service, autoscaler, network policy.

Why Kubernetes and not ECS: the staging and prod stacks already run a Kubernetes cluster for Prometheus and Grafana
(`monitoring.kubernetes`), with the provider created once by the program; the API joins it, so its metrics are
scraped where the dashboards live and no second container platform has to be secured and operated. A stack without
that cluster (dev) does not deploy the API (`api.enabled` requires it, checked in infra/config.py).

Security, because the API receives PHI and can re-identify it:
- TLS end to end: the pods serve HTTPS themselves (uvicorn with the certificate in `api.tlsSecretName`, issued by the
  cluster's cert-manager or provided by operations); the load balancer passes TCP through and never sees plaintext.
- Private only: an internal NLB (`aws-load-balancer-scheme: internal`) restricted to `api.allowedCidrs`, and a
  NetworkPolicy that admits only those ranges (and Prometheus from the monitoring namespace) on the HTTPS port.
- Least privilege: pods run as a non-root user with a read-only root filesystem, no privilege escalation and no Linux
  capabilities; AWS access (MSK IAM, KMS, S3, Redshift Data API, EMR steps for `POST /v1/batches`) comes from the
  IRSA role `api.roleArn`.
- Configuration is the stack's `app_config` (the same document `make deploy-apps` renders), mounted read-only and read
  through CLAIMS_CONFIG; the tokenization key comes from a Kubernetes secret synced from Secrets Manager, never from
  Pulumi state.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

HTTPS_PORT = 8443
SERVICE_PORT = 443
CONFIG_PATH = "/etc/claims/config.json"
TLS_DIR = "/etc/claims/tls"
RUN_AS_USER = 10001
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Mi|Gi|Ki)?$")


@dataclass(frozen=True)
class ApiServiceArgs:
    """What to run and how big, from `medical-claims:api`, plus the stack's app_config and the cluster provider."""

    provider: pulumi.ProviderResource
    image: str
    app_config: pulumi.Input[Mapping[str, Any]]
    role_arn: str
    allowed_cidrs: Sequence[str]
    namespace: str = "claims-api"
    tls_secret_name: str = "claims-api-tls"  # noqa: S105  (the name of a Kubernetes secret, not a secret)
    tokenization_secret_name: str = "claims-tokenization"  # noqa: S105
    monitoring_namespace: str = "monitoring"
    replicas_min: int = 2
    replicas_max: int = 6
    cpu_target_percent: int = 70
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    state_storage_class: str = "gp3"
    state_storage_size: str = "10Gi"
    labels: Mapping[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "claims-api"})

    def __post_init__(self) -> None:
        problems = []
        if not _IMAGE.match(self.image):
            problems.append(f"image: expected registry/repository:tag or @sha256:<digest>, found {self.image!r}")
        for name in ("namespace", "tls_secret_name", "tokenization_secret_name", "monitoring_namespace"):
            if not _DNS_LABEL.match(getattr(self, name)):
                problems.append(f"{name}: expected a Kubernetes name (DNS label), found {getattr(self, name)!r}")
        if not 1 <= self.replicas_min <= self.replicas_max:
            problems.append(f"replicas_max: expected >= replicas_min ({self.replicas_min}) >= 1, "
                            f"found {self.replicas_max}")
        if not 10 <= self.cpu_target_percent <= 95:
            problems.append(f"cpu_target_percent: expected 10..95, found {self.cpu_target_percent}")
        if not _DNS_LABEL.match(self.state_storage_class):
            problems.append(f"state_storage_class: expected a Kubernetes name, found {self.state_storage_class!r}")
        for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit", "state_storage_size"):
            if not _QUANTITY.match(getattr(self, name)):
                problems.append(f"{name}: expected a Kubernetes quantity (500m, 2, 1Gi), found {getattr(self, name)!r}")
        if not self.role_arn.startswith("arn:aws"):
            problems.append(f"role_arn: expected an IAM role ARN, found {self.role_arn!r}")
        problems += _cidr_problems(self.allowed_cidrs)
        if problems:
            msg = "ApiServiceArgs: " + "; ".join(problems)
            raise ValueError(msg)


def _cidr_problems(cidrs: Sequence[str]) -> list[str]:
    if not cidrs:
        return ["allowed_cidrs: expected at least one private CIDR, found none"]
    problems = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.append(f"allowed_cidrs: expected CIDR notation, found {cidr!r}")
            continue
        if not network.is_private:
            problems.append(f"allowed_cidrs: expected private ranges only (the API is internal), found {cidr}")
    return problems


def app_config_json(app_config: Mapping[str, Any]) -> str:
    """The CLAIMS_CONFIG document mounted into the pods (sorted, so an unchanged config never restarts them)."""
    return json.dumps(app_config, sort_keys=True, indent=2)


def service_annotations() -> dict[str, str]:
    """AWS Load Balancer Controller: an internal NLB to the pod IPs, TCP passthrough (TLS ends in the pods), and
    source-IP stickiness, so a client's retries reach the pod whose idempotency store holds its keys."""
    return {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "HTTPS",
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": "/healthz",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":
            "stickiness.enabled=true,stickiness.type=source_ip",
    }


class ApiService(pulumi.ComponentResource):
    """The API's Kubernetes objects; `service_name` and `namespace` say where clients reach it (port 443)."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: ApiServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:api:ApiService", name, None, opts)
        self._name = name
        self._args = args
        namespace = self._create_namespace()
        account = self._create_service_account(namespace)
        config = self._create_config(namespace)
        service = self._create_service(namespace)
        pods = self._create_stateful_set(namespace, account, config, service)
        self._create_autoscaler(namespace, pods)
        self._create_network_policy(namespace)
        self._create_disruption_budget(namespace)
        self.namespace = namespace.metadata.name
        self.service_name = service.metadata.name
        self.register_outputs({"namespace": self.namespace, "service_name": self.service_name})

    def _child(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=list(depends_on))

    def _metadata(self, namespace: k8s.core.v1.Namespace, name: str,
                  annotations: Mapping[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgsDict:
        return {"name": name, "namespace": namespace.metadata.name, "labels": dict(self._args.labels),
                "annotations": dict(annotations or {})}

    def _create_namespace(self) -> k8s.core.v1.Namespace:
        # The restricted Pod Security Standard is enforced for the whole namespace, not only declared by our pods.
        return k8s.core.v1.Namespace(f"{self._name}-namespace", metadata={
            "name": self._args.namespace,
            "labels": {**self._args.labels, "pod-security.kubernetes.io/enforce": "restricted"},
        }, opts=self._child())

    def _create_service_account(self, namespace: k8s.core.v1.Namespace) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(f"{self._name}-account", metadata=self._metadata(
            namespace, "claims-api", {"eks.amazonaws.com/role-arn": self._args.role_arn}),
            automount_service_account_token=True, opts=self._child())

    def _create_config(self, namespace: k8s.core.v1.Namespace) -> k8s.core.v1.ConfigMap:
        document = pulumi.Output.from_input(self._args.app_config).apply(app_config_json)
        return k8s.core.v1.ConfigMap(f"{self._name}-config", metadata=self._metadata(namespace, "claims-api-config"),
                                     data={"config.json": document}, opts=self._child())

    def _container(self) -> k8s.core.v1.ContainerArgsDict:
        args = self._args
        return {
            "name": "api",
            "image": args.image,
            "args": ["claims", "api", "--host", "0.0.0.0", "--port", str(HTTPS_PORT),  # noqa: S104  (pod network)
                     "--ssl-certfile", f"{TLS_DIR}/tls.crt", "--ssl-keyfile", f"{TLS_DIR}/tls.key"],
            "ports": [{"name": "https", "container_port": HTTPS_PORT, "protocol": "TCP"}],
            "env": [
                {"name": "CLAIMS_CONFIG", "value": CONFIG_PATH},
                {"name": "CLAIMS__SECURITY__TOKENIZATION_SECRET", "value_from": {"secret_key_ref": {
                    "name": args.tokenization_secret_name, "key": "secret"}}},
                # Writable paths on the read-only root filesystem: the audit log and the idempotency store.
                {"name": "CLAIMS__SECURITY__AUDIT_LOG", "value": "/var/lib/claims/audit/audit.jsonl"},
                {"name": "CLAIMS__API__IDEMPOTENCY_DB", "value": "/var/lib/claims/api/idempotency.sqlite3"},
            ],
            "resources": {"requests": {"cpu": args.cpu_request, "memory": args.memory_request},
                          "limits": {"cpu": args.cpu_limit, "memory": args.memory_limit}},
            "liveness_probe": {"http_get": {"path": "/healthz", "port": HTTPS_PORT, "scheme": "HTTPS"},
                               "period_seconds": 10, "failure_threshold": 3},
            "readiness_probe": {"http_get": {"path": "/readyz", "port": HTTPS_PORT, "scheme": "HTTPS"},
                                "period_seconds": 10, "failure_threshold": 2},
            "security_context": {"run_as_non_root": True, "run_as_user": RUN_AS_USER, "run_as_group": RUN_AS_USER,
                                 "read_only_root_filesystem": True, "allow_privilege_escalation": False,
                                 "capabilities": {"drop": ["ALL"]}, "seccomp_profile": {"type": "RuntimeDefault"}},
            "volume_mounts": [
                {"name": "config", "mount_path": CONFIG_PATH, "sub_path": "config.json", "read_only": True},
                {"name": "tls", "mount_path": TLS_DIR, "read_only": True},
                {"name": "state", "mount_path": "/var/lib/claims"},
                {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108  (an emptyDir of the pod, not the node's /tmp)
            ],
        }

    def _create_stateful_set(self, namespace: k8s.core.v1.Namespace, account: k8s.core.v1.ServiceAccount,
                             config: k8s.core.v1.ConfigMap, service: k8s.core.v1.Service) -> k8s.apps.v1.StatefulSet:
        """The pods, each with its own encrypted volume for the audit log and the idempotency store.

        Why a StatefulSet and not a Deployment: the audit log is the HIPAA record of every request, hash-chained per
        file, and an emptyDir would lose it (and the chain) with the pod. Each pod keeps its chain on its own
        PersistentVolume (`state_storage_class`, an encrypted gp3 EBS class), which follows the pod through restarts
        and is retained when the set scales in or is deleted; `claims audit verify` checks one volume's chain.
        """
        args = self._args
        labels = dict(args.labels)
        return k8s.apps.v1.StatefulSet(f"{self._name}-pods", metadata=self._metadata(namespace, "claims-api"), spec={
            "replicas": args.replicas_min,
            "service_name": service.metadata.name,
            "selector": {"match_labels": labels},
            "pod_management_policy": "Parallel",  # scale out without waiting for each pod in turn
            "update_strategy": {"type": "RollingUpdate"},
            "persistent_volume_claim_retention_policy": {"when_scaled": "Retain", "when_deleted": "Retain"},
            "volume_claim_templates": [{
                "metadata": {"name": "state", "labels": labels},
                "spec": {"access_modes": ["ReadWriteOnce"], "storage_class_name": args.state_storage_class,
                         "resources": {"requests": {"storage": args.state_storage_size}}},
            }],
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/scheme": "https",
                                             "prometheus.io/port": str(HTTPS_PORT)}},
                "spec": {
                    "service_account_name": account.metadata.name,
                    "security_context": {"run_as_non_root": True, "fs_group": RUN_AS_USER,
                                         "seccomp_profile": {"type": "RuntimeDefault"}},
                    "containers": [self._container()],
                    "volumes": [
                        {"name": "config", "config_map": {"name": config.metadata.name}},
                        {"name": "tls", "secret": {"secret_name": args.tls_secret_name}},
                        {"name": "tmp", "empty_dir": {}},
                    ],
                    "topology_spread_constraints": [{"max_skew": 1, "topology_key": "topology.kubernetes.io/zone",
                                                     "when_unsatisfiable": "ScheduleAnyway",
                                                     "label_selector": {"match_labels": labels}}],
                },
            },
        }, opts=self._child(config))

    def _create_service(self, namespace: k8s.core.v1.Namespace) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(f"{self._name}-service", metadata=self._metadata(
            namespace, "claims-api", service_annotations()), spec={
            "type": "LoadBalancer",
            "selector": dict(self._args.labels),
            "ports": [{"name": "https", "port": SERVICE_PORT, "target_port": HTTPS_PORT, "protocol": "TCP"}],
            "load_balancer_source_ranges": list(self._args.allowed_cidrs),
        }, opts=self._child())

    def _create_autoscaler(self, namespace: k8s.core.v1.Namespace,
                           pods: k8s.apps.v1.StatefulSet) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        args = self._args
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(f"{self._name}-autoscaler", metadata=self._metadata(
            namespace, "claims-api"), spec={
            "scale_target_ref": {"api_version": "apps/v1", "kind": "StatefulSet", "name": pods.metadata.name},
            "min_replicas": args.replicas_min,
            "max_replicas": args.replicas_max,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "average_utilization": args.cpu_target_percent}}}],
        }, opts=self._child())

    def _create_network_policy(self, namespace: k8s.core.v1.Namespace) -> k8s.networking.v1.NetworkPolicy:
        args = self._args
        sources: list[k8s.networking.v1.NetworkPolicyPeerArgsDict] = [
            {"ip_block": {"cidr": cidr}} for cidr in args.allowed_cidrs]
        sources.append({"namespace_selector": {"match_labels": {
            "kubernetes.io/metadata.name": args.monitoring_namespace}}})
        return k8s.networking.v1.NetworkPolicy(f"{self._name}-network-policy", metadata=self._metadata(
            namespace, "claims-api"), spec={
            "pod_selector": {"match_labels": dict(args.labels)},
            "policy_types": ["Ingress", "Egress"],
            "ingress": [{"from_": sources, "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]}],
            # Out: DNS, HTTPS (AWS APIs through VPC endpoints, the issuer's JWKS), MSK with IAM (9098), Redshift.
            "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53},
                                  {"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 9098},
                                  {"protocol": "TCP", "port": 5439}]}],
        }, opts=self._child())

    def _create_disruption_budget(self, namespace: k8s.core.v1.Namespace) -> k8s.policy.v1.PodDisruptionBudget:
        # Node drains and upgrades never take the last replica away.
        return k8s.policy.v1.PodDisruptionBudget(f"{self._name}-disruption-budget", metadata=self._metadata(
            namespace, "claims-api"), spec={"min_available": 1, "selector": {"match_labels": dict(self._args.labels)}},
            opts=self._child())
