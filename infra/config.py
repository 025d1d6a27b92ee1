"""Typed stack configuration: every scaling knob and security switch of a stack, validated before any resource exists.

Why: a capacity change (more brokers, more Spark core nodes, bigger Redshift nodes) must be a config edit in
Pulumi.<stack>.yaml and nothing else, and a typo or an impossible combination (4 brokers over 3 availability zones)
must fail at `pulumi preview` with the exact config key named, not 20 minutes into an MSK create.

Config keys are camelCase under the project namespace, e.g. `medical-claims:kafka: {brokerCount: 6}`; field names in
Python are snake_case. Error messages always use the config spelling (`medical-claims:kafka.brokerCount`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.emr_releases import DEFAULT_RELEASE_LABEL, is_supported_release, unsupported_release_message

PROJECT = "medical-claims"

# Redshift RA3 node types that AWS only offers as multi-node clusters (minimum two nodes).
_REDSHIFT_MULTI_NODE_ONLY = frozenset({"ra3.4xlarge", "ra3.16xlarge"})


# CloudWatch Logs accepts only these retention periods (days); 2192 days = 6 years, the HIPAA documentation period.
CLOUDWATCH_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                             2922, 3288, 3653)


def _cloudwatch_retention(days: int) -> int:
    if days not in CLOUDWATCH_RETENTION_DAYS:
        msg = f"expected a CloudWatch Logs retention period {CLOUDWATCH_RETENTION_DAYS}, found {days}"
        raise ValueError(msg)
    return days


LogRetentionDays = Annotated[int, AfterValidator(_cloudwatch_retention)]


class StackConfigError(ValueError):
    """The stack configuration is invalid; the message names the config key, what was expected and what was found."""


class DeployEnvironment(StrEnum):
    """Environments that have a Pulumi stack (the apps' `local` environment never does)."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class _Section(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected (typos fail loudly), immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class NetworkConfig(_Section):
    """The VPC that hosts every data service; private subnets only, no internet gateway."""

    cidr_block: str = Field(default="10.40.0.0/16", description="IPv4 CIDR of the VPC; /16 to /20.")
    availability_zones: list[str] = Field(
        min_length=2,
        description="AZs to spread private subnets over (>= 2); MSK broker count must be a multiple of this count.",
    )
    interface_endpoints: list[str] = Field(
        default=["sts", "logs", "kms", "secretsmanager", "elasticmapreduce", "redshift-data", "aps-workspaces",
                 "codeartifact.api", "codeartifact.repositories"],
        description="AWS services reached through interface VPC endpoints, so nothing needs a NAT or the internet.",
    )
    flow_log_retention_days: LogRetentionDays = Field(default=365, description="Retention of VPC flow logs (audit).")

    @field_validator("cidr_block")
    @classmethod
    def _cidr_is_private_network(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if not network.is_private or not 16 <= network.prefixlen <= 20:
            msg = f"expected a private IPv4 CIDR between /16 and /20, found {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("availability_zones")
    @classmethod
    def _zones_are_distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            msg = f"expected distinct availability zones, found {value}"
            raise ValueError(msg)
        return value


class KafkaConfig(_Section):
    """Amazon MSK provisioned cluster sizing."""

    version: str = Field(default="3.9.x", pattern=r"^\d+\.\d+\.(\d+|x)(\.kraft)?$", description="MSK Kafka version.")
    broker_count: int = Field(
        default=3, ge=3, description="Brokers in total; >= 3 (replication factor 3), multiple of the AZ count."
    )
    instance_type: str = Field(default="kafka.m7g.large", pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$",
                               description="MSK broker instance type.")
    ebs_volume_gb: int = Field(default=100, ge=1, le=16384, description="EBS storage per broker in GiB.")
    log_retention_days: LogRetentionDays = Field(default=365, description="Retention of broker logs in CloudWatch.")


class EmrConfig(_Section):
    """EMR (Spark on YARN) cluster sizing and the Spark settings rendered into the apps' config."""

    release_label: str = Field(
        default=DEFAULT_RELEASE_LABEL,
        description="EMR release label; must be listed in configs/spark/emr-releases.json, which names the Spark "
                    "and Delta lines the jobs are tested on locally.",
    )
    primary_instance_type: str = Field(default="m6g.xlarge", description="Primary (master) node instance type.")
    core_instance_type: str = Field(default="r6g.2xlarge", description="Core node instance type (HDFS + executors).")
    core_min: int = Field(default=2, ge=1, description="Managed scaling lower bound of core nodes.")
    core_max: int = Field(default=4, ge=1, description="Managed scaling upper bound of core nodes.")
    task_max: int = Field(default=0, ge=0, description="Extra task nodes managed scaling may add on top of core_max.")
    core_ebs_gb: int = Field(default=128, ge=32, description="gp3 EBS volume per core node in GiB.")
    tls_certificates: str = Field(
        default="security/emr-in-transit-certificates.zip",
        description="PEM certificate zip for EMR in-transit TLS: s3://bucket/key.zip or a key in the artifact bucket.",
    )
    termination_protection: bool = Field(default=True, description="Refuse API termination of the cluster.")
    step_concurrency: int = Field(default=4, ge=1, le=256, description="Steps (jobs) allowed to run at once.")
    shuffle_partitions: int = Field(default=200, ge=1, description="spark.sql.shuffle.partitions for the apps.")
    trigger_seconds: float = Field(default=10.0, gt=0, description="Streaming micro-batch trigger interval.")
    max_offsets_per_trigger: int | None = Field(default=None, ge=1, description="Back-pressure cap per micro-batch.")
    driver_memory: str = Field(default="4g", pattern=r"^\d+[gm]$", description="Spark driver memory.")

    @field_validator("release_label")
    @classmethod
    def _release_is_supported(cls, value: str) -> str:
        if not is_supported_release(value):
            raise ValueError(unsupported_release_message(value))
        return value

    @field_validator("tls_certificates")
    @classmethod
    def _certificates_are_a_zip(cls, value: str) -> str:
        if not value.endswith(".zip") or value.startswith(("http:", "https:", "/")):
            msg = f"expected an s3://bucket/key.zip URI or an artifact-bucket key ending in .zip, found {value!r}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _core_bounds_ordered(self) -> Self:
        if self.core_max < self.core_min:
            msg = f"emr.coreMax: expected >= emr.coreMin ({self.core_min}), found {self.core_max}"
            raise ValueError(msg)
        return self


class RedshiftConfig(_Section):
    """Provisioned Redshift cluster sizing."""

    node_type: str = Field(default="ra3.xlplus", pattern=r"^(ra3|dc2)\.[a-z0-9]+$", description="Redshift node type.")
    node_count: int = Field(default=2, ge=1, le=128, description="Nodes; 1 means a single-node cluster.")
    database: str = Field(default="claims", pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Initial database name.")
    master_username: str = Field(default="claims_admin", pattern=r"^[a-z][a-z0-9_]{0,127}$",
                                 description="Admin user; its password is generated and rotated by Secrets Manager.")
    snapshot_retention_days: int = Field(default=7, ge=1, le=35, description="Automated snapshot retention in days.")
    skip_final_snapshot: bool = Field(default=False, description="Destroy without a final snapshot (dev only).")
    log_retention_days: LogRetentionDays = Field(default=365, description="Retention of the audit logs in CloudWatch.")

    @model_validator(mode="after")
    def _node_count_fits_node_type(self) -> Self:
        if self.node_type in _REDSHIFT_MULTI_NODE_ONLY and self.node_count < 2:
            msg = f"redshift.nodeCount: {self.node_type} is multi-node only, expected >= 2, found {self.node_count}"
            raise ValueError(msg)
        return self


class LakeConfig(_Section):
    """S3 lake buckets: lifecycle to cheaper storage classes and version retention."""

    raw_infrequent_access_days: int = Field(default=30, ge=30, description="Raw objects move to STANDARD_IA after.")
    raw_glacier_days: int = Field(default=180, ge=60, description="Raw objects move to GLACIER_IR after.")
    processed_intelligent_tiering_days: int = Field(default=30, ge=0,
                                                    description="Processed objects move to INTELLIGENT_TIERING after.")
    noncurrent_version_days: int = Field(default=90, ge=1, description="Overwritten object versions expire after.")
    checkpoint_noncurrent_version_days: int = Field(default=7, ge=1,
                                                    description="Overwritten checkpoint versions expire after.")
    force_destroy: bool = Field(default=False, description="Allow deleting non-empty buckets (never in prod).")

    @model_validator(mode="after")
    def _glacier_after_infrequent_access(self) -> Self:
        # S3 bills STANDARD_IA for a 30-day minimum; moving on earlier is rejected by the lifecycle API.
        if self.raw_glacier_days < self.raw_infrequent_access_days + 30:
            msg = (f"lake.rawGlacierDays: expected >= lake.rawInfrequentAccessDays + 30 "
                   f"({self.raw_infrequent_access_days + 30}), found {self.raw_glacier_days}")
            raise ValueError(msg)
        return self


class KubernetesConfig(_Section):
    """Optional in-cluster Prometheus + Grafana (kube-prometheus-stack) on an existing Kubernetes cluster."""

    enabled: bool = Field(default=False, description="Deploy Prometheus and Grafana to the cluster below.")
    context: str | None = Field(default=None, description="kubeconfig context naming the target cluster.")
    kubeconfig: str | None = Field(default=None, description="kubeconfig path or content; default ~/.kube/config.")
    namespace: str = Field(default="monitoring", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                           description="Namespace of Prometheus, Grafana and the dashboard ConfigMaps.")
    chart_version: str = Field(default="75.15.1", description="kube-prometheus-stack Helm chart version.")
    prometheus_role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
                                            description="IRSA role Prometheus assumes to remote-write to AMP.")

    @model_validator(mode="after")
    def _enabled_needs_context(self) -> Self:
        if self.enabled and not self.context:
            msg = "monitoring.kubernetes.context: expected a kubeconfig context when enabled is true, found none"
            raise ValueError(msg)
        return self


class MonitoringConfig(_Section):
    """Amazon Managed Prometheus workspace, its rules, and the optional Kubernetes Prometheus/Grafana."""

    rules_file: str = Field(default="configs/monitoring/prometheus-rules.yaml",
                            description="Prometheus rule groups loaded into AMP (path relative to the repo root).")
    dashboards_dir: str = Field(default="configs/monitoring/grafana",
                                description="Grafana dashboards (*.json) shipped as ConfigMaps.")
    log_retention_days: LogRetentionDays = Field(default=365, description="Retention of AMP rule/alert logs.")
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig,
                                         description="In-cluster Prometheus and Grafana.")


class ApiConfig(_Section):
    """The claims REST API on the monitoring Kubernetes cluster (infra/api_service.py)."""

    enabled: bool = Field(default=False, description="Deploy the API; needs monitoring.kubernetes.enabled.")
    image: str | None = Field(default=None, description="Container image (registry/repo:tag or @sha256 digest).")
    namespace: str = Field(default="claims-api", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                           description="Kubernetes namespace of the API.")
    replicas_min: int = Field(default=2, ge=1, description="Autoscaler lower bound (and initial replicas).")
    replicas_max: int = Field(default=6, ge=1, description="Autoscaler upper bound.")
    cpu_target_percent: int = Field(default=70, ge=10, le=95, description="Average CPU the autoscaler aims for.")
    allowed_cidrs: list[str] = Field(default=["10.0.0.0/8"], min_length=1,
                                     description="Private ranges allowed to reach the API (load balancer, policy).")
    tls_secret_name: str = Field(default="claims-api-tls",
                                 description="Kubernetes TLS secret (tls.crt, tls.key) the pods serve HTTPS with.")
    tokenization_secret_name: str = Field(default="claims-tokenization",
                                          description="Kubernetes secret (key 'secret') synced from Secrets Manager.")
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
                                 description="IRSA role of the API pods (MSK, KMS, S3, Redshift Data API).")
    jwks_url: str | None = Field(default=None, pattern=r"^https://",
                                 description="The OAuth2 issuer's JWKS URL; rendered into app_config.api.")
    issuer: str | None = Field(default=None, description="Expected `iss` of bearer tokens.")
    audience: str = Field(default="claims-api", description="Expected `aud` of bearer tokens.")
    state_storage_class: str = Field(
        default="gp3", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="StorageClass of each pod's volume for the audit log and idempotency store: an encrypted EBS "
                    "class (the audit log is PHI-adjacent and must survive the pod).")
    state_storage_size: str = Field(default="10Gi", pattern=r"^\d+(Mi|Gi|Ti)$",
                                    description="Size of each pod's state volume.")

    @model_validator(mode="after")
    def _enabled_needs_what_it_runs_with(self) -> Self:
        if self.replicas_max < self.replicas_min:
            msg = f"api.replicasMax: expected >= api.replicasMin ({self.replicas_min}), found {self.replicas_max}"
            raise ValueError(msg)
        for cidr in self.allowed_cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            if not network.is_private:
                msg = f"api.allowedCidrs: expected private ranges only (the API is internal), found {cidr}"
                raise ValueError(msg)
        if self.enabled:
            missing = [key for key, value in (("image", self.image), ("roleArn", self.role_arn),
                                              ("jwksUrl", self.jwks_url), ("issuer", self.issuer)) if not value]
            if missing:
                msg = f"api.{missing[0]}: expected a value when api.enabled is true, found none"
                raise ValueError(msg)
        return self


class StackConfig(_Section):
    """Everything one stack (dev, staging, prod) needs; built from `medical-claims:*` and `aws:region`."""

    environment: DeployEnvironment = Field(description="Which environment this stack is.")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region (from aws:region).")
    owner: str = Field(min_length=1, description="Owning team; tagged on every resource.")
    cost_center: str | None = Field(default=None, description="Optional cost-center tag.")
    extra_tags: dict[str, str] = Field(default_factory=dict, description="Additional tags on every resource.")
    network: NetworkConfig = Field(description="VPC layout.")
    kafka: KafkaConfig = Field(default_factory=KafkaConfig, description="MSK sizing.")
    emr: EmrConfig = Field(default_factory=EmrConfig, description="EMR sizing and Spark settings.")
    redshift: RedshiftConfig = Field(default_factory=RedshiftConfig, description="Redshift sizing.")
    lake: LakeConfig = Field(default_factory=LakeConfig, description="S3 lake lifecycle.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Prometheus and Grafana.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="The REST API on the Kubernetes cluster.")

    @model_validator(mode="after")
    def _cross_section_rules(self) -> Self:
        zones = len(self.network.availability_zones)
        if self.kafka.broker_count % zones:
            # MSK places the same number of brokers in every client subnet (one subnet per AZ).
            msg = (f"kafka.brokerCount: expected a multiple of the {zones} availability zones in "
                   f"network.availabilityZones, found {self.kafka.broker_count}")
            raise ValueError(msg)
        if self.api.enabled and not self.monitoring.kubernetes.enabled:
            msg = ("api.enabled: expected monitoring.kubernetes.enabled (the API runs on that cluster), "
                   "found it disabled")
            raise ValueError(msg)
        if self.environment is DeployEnvironment.PROD:
            unsafe = {
                "lake.forceDestroy": self.lake.force_destroy,
                "redshift.skipFinalSnapshot": self.redshift.skip_final_snapshot,
                "emr.terminationProtection": not self.emr.termination_protection,
            }
            for key, is_unsafe in unsafe.items():
                if is_unsafe:
                    msg = f"{key}: expected the safe setting in prod (no data loss on destroy), found the unsafe one"
                    raise ValueError(msg)
        return self

    @property
    def name_prefix(self) -> str:
        """Prefix of every physical name, e.g. `claims-dev`."""
        return f"claims-{self.environment.value}"


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate a raw config mapping (camelCase keys); raise StackConfigError naming every bad key."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise StackConfigError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """One line per problem, keyed by the config path as written in Pulumi.<stack>.yaml."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in problem["loc"])
        message = re.sub(r"^Value error, ", "", problem["msg"])
        if not path or message.startswith(f"{path}."):
            # Model-level validators already start their message with the full config path of the bad key.
            lines.append(f"{PROJECT}:{message}")
        else:
            lines.append(f"{PROJECT}:{path}: {message}")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def load_stack_config() -> StackConfig:
    """Read the current Pulumi stack's configuration (works under `pulumi up` and under test mocks)."""
    import pulumi  # noqa: PLC0415 - keep parse_stack_config importable without the Pulumi runtime

    project = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {
        "environment": project.get("environment"),
        "region": pulumi.Config("aws").get("region"),
        "owner": project.get("owner"),
        "costCenter": project.get("costCenter"),
        "extraTags": project.get_object("extraTags"),
    }
    for section in ("network", "kafka", "emr", "redshift", "lake", "monitoring", "api"):
        raw[section] = project.get_object(section)
    return parse_stack_config({key: value for key, value in raw.items() if value is not None})
