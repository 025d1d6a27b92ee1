"""Amazon EMR cluster (Spark on YARN) running the streaming and batch apps.

Why these settings: EMR nodes hold PHI in memory, on local disks and in shuffle files, so the security configuration
encrypts S3 writes (SSE-KMS), local disks and EBS volumes (KMS) and all traffic between nodes (TLS with the PEM
certificates named in config). Nodes live in a private subnet without public IPs; the instance role may touch the
lake buckets, the lake key, the MSK topics, the Redshift Data API with the admin secret and the AMP workspace, and
nothing else. Capacity is elastic between `emr.coreMin` and `emr.coreMax` through EMR managed scaling.

The release label must be listed in configs/spark/emr-releases.json: an EMR runtime on the Spark and Delta lines the
jobs are tested on locally. An EMR 7.x release would run them on Spark 3.5, where they were never tested.

The bootstrap action (infra/emr_bootstrap.py) installs Python 3.11 and the apps' pinned runtime dependencies from a
KMS-encrypted CodeArtifact mirror of PyPI, reached through VPC endpoints; the app wheel itself is shipped per step by
`make deploy-apps`. When the monitoring component wrote an agent configuration, a second bootstrap action runs a
Prometheus agent on the primary node (the pinned release tarball, uploaded here beside the scripts); the instance role
may then read that one SSM parameter, and it may remote-write to the AMP workspace either way. The same action installs
the stream driver's discovery (infra/yarn_discovery.py, uploaded here too): the stream runs in YARN cluster mode, so
the agent scrapes its driver on a core node; the EMR client group (on every node) admits exactly that port between
the cluster's nodes, so the path does not rest on the rules EMR adds to its managed groups.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import emr_bootstrap
from infra.emr_releases import DEFAULT_RELEASE_LABEL, is_supported_release, unsupported_release_message
from infra.iam_documents import assume_role_policy, emr_instance_policy, emr_service_kms_policy, to_json
from infra.prometheus_release import RELEASE_DIR, tarball_path

LOG_PREFIX = "logs/emr/"
EMR_SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
PACKAGE_REPOSITORY = "pypi-mirror"


def security_configuration(*, kms_key_arn: str, certificates_s3_uri: str) -> dict[str, Any]:
    """EMR security configuration: at-rest (S3 SSE-KMS, local disk + EBS with KMS) and in-transit (PEM TLS)."""
    return {
        "EncryptionConfiguration": {
            "EnableAtRestEncryption": True,
            "EnableInTransitEncryption": True,
            "AtRestEncryptionConfiguration": {
                "S3EncryptionConfiguration": {"EncryptionMode": "SSE-KMS", "AwsKmsKey": kms_key_arn},
                "LocalDiskEncryptionConfiguration": {
                    "EncryptionKeyProviderType": "AwsKms",
                    "AwsKmsKey": kms_key_arn,
                    "EnableEbsEncryption": True,
                },
            },
            "InTransitEncryptionConfiguration": {
                "TLSCertificateConfiguration": {"CertificateProviderType": "PEM", "S3Object": certificates_s3_uri},
            },
        },
        # IMDSv2 only: a server-side request forgery in an app cannot read the instance role's credentials.
        "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": 2,
                                                 "HttpPutResponseHopLimit": 1},
    }


def spark_defaults(shuffle_partitions: int) -> list[dict[str, Any]]:
    """EMR `configurations` JSON: Spark defaults shared by every step, PySpark on the bootstrapped Python 3.11.

    Python 3.11 is the oldest Python the release supports (configs/spark/emr-releases.json) and the one the project
    targets (pyproject `requires-python`, ruff `py311`); tests/infra/test_emr_runtime.py checks it stays in range.
    """
    return [
        {
            "Classification": "spark-defaults",
            "Properties": {
                "spark.dynamicAllocation.enabled": "true",
                "spark.sql.shuffle.partitions": str(shuffle_partitions),
                "spark.pyspark.python": emr_bootstrap.PYTHON,
            },
        },
        {
            "Classification": "spark-env",
            "Configurations": [{"Classification": "export",
                                "Properties": {"PYSPARK_PYTHON": emr_bootstrap.PYTHON}}],
            "Properties": {},
        },
    ]


@dataclass(frozen=True)
class SparkClusterArgs:
    """EMR sizing from `medical-claims:emr` plus everything the cluster talks to."""

    subnet_id: pulumi.Input[str]
    primary_security_group_id: pulumi.Input[str]
    core_security_group_id: pulumi.Input[str]
    service_access_security_group_id: pulumi.Input[str]
    client_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    lake_bucket_arns: Sequence[pulumi.Input[str]]
    artifact_bucket: pulumi.Input[str]
    artifact_bucket_arn: pulumi.Input[str]
    msk_cluster_arn: pulumi.Input[str]
    redshift_secret_arn: pulumi.Input[str]
    amp_workspace_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str
    runtime_requirements: str
    constraints: str
    tls_certificates: str = "security/emr-in-transit-certificates.zip"
    release_label: str = DEFAULT_RELEASE_LABEL
    primary_instance_type: str = "m6g.xlarge"
    core_instance_type: str = "r6g.2xlarge"
    core_min: int = 2
    core_max: int = 4
    task_max: int = 0
    core_ebs_gb: int = 128
    termination_protection: bool = True
    step_concurrency: int = 4
    shuffle_partitions: int = 200
    # The Prometheus agent on the primary node: the SSM parameter with its configuration (from the Monitoring
    # component; None: no agent) and where the pinned release tarball was fetched to (infra/prometheus_release.py).
    agent_config_parameter: pulumi.Input[str] | None = None
    agent_config_parameter_arn: pulumi.Input[str] | None = None
    prometheus_release_dir: Path = RELEASE_DIR

    def __post_init__(self) -> None:
        if not is_supported_release(self.release_label):
            msg = f"SparkClusterArgs.release_label: {unsupported_release_message(self.release_label)}"
            raise ValueError(msg)
        if not 1 <= self.core_min <= self.core_max:
            msg = f"SparkClusterArgs.core_max: expected >= core_min ({self.core_min}) >= 1, found {self.core_max}"
            raise ValueError(msg)
        if self.task_max < 0:
            msg = f"SparkClusterArgs.task_max: expected >= 0, found {self.task_max}"
            raise ValueError(msg)
        if not self.runtime_requirements.strip():
            msg = "SparkClusterArgs.runtime_requirements: expected pinned requirements, found an empty text"
            raise ValueError(msg)
        if (self.agent_config_parameter is None) != (self.agent_config_parameter_arn is None):
            msg = ("SparkClusterArgs.agent_config_parameter_arn: expected it together with agent_config_parameter "
                   "(both from the Monitoring component) or neither")
            raise ValueError(msg)
        if not self.tls_certificates.endswith(".zip"):
            msg = f"SparkClusterArgs.tls_certificates: expected a .zip of PEM files, found {self.tls_certificates!r}"
            raise ValueError(msg)

    @property
    def runs_agent(self) -> bool:
        """Whether the primary node runs the Prometheus agent."""
        return self.agent_config_parameter is not None

    @property
    def primary_architecture(self) -> str:
        """`arm64` or `amd64`: which Prometheus tarball the primary node needs."""
        return emr_bootstrap.instance_architecture(self.primary_instance_type)

    def certificates_uri(self, artifact_bucket: str) -> str:
        """Full s3:// URI of the certificate zip (config may give only a key in the artifact bucket)."""
        if self.tls_certificates.startswith("s3://"):
            return self.tls_certificates
        return f"s3://{artifact_bucket}/{self.tls_certificates.lstrip('/')}"


class SparkCluster(pulumi.ComponentResource):
    """EMR cluster with security configuration, roles, bootstrap action and managed scaling."""

    cluster_id: pulumi.Output[str]
    instance_role_arn: pulumi.Output[str]
    security_configuration_name: pulumi.Output[str]

    def __init__(self, name: str, args: SparkClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:spark:SparkCluster", name, None, opts)
        self._name = name
        self._args = args
        domain, repository = self._create_package_mirror()
        service_role, service_policies = self._create_service_role()
        instance_role, instance_profile, instance_policy = self._create_instance_role(domain, repository)
        security = self._create_security_configuration()
        bootstrap_objects = self._create_bootstrap_objects()
        cluster = self._create_cluster(
            service_role=service_role, instance_profile=instance_profile, security=security, domain=domain,
            repository=repository, depends_on=[*service_policies, instance_policy, *bootstrap_objects])
        self._create_managed_scaling(cluster)
        self._create_stream_metrics_rules()
        self.cluster_id = cluster.id
        self.instance_role_arn = instance_role.arn
        self.security_configuration_name = security.name
        self.register_outputs({
            "cluster_id": self.cluster_id,
            "instance_role_arn": self.instance_role_arn,
            "security_configuration_name": self.security_configuration_name,
        })

    def _child(self, *, depends_on: Sequence[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on or []))

    def _create_package_mirror(self) -> tuple[aws.codeartifact.Domain, aws.codeartifact.Repository]:
        domain = aws.codeartifact.Domain(f"{self._name}-packages", domain=f"{self._name}-packages",
                                         encryption_key=self._args.kms_key_arn, opts=self._child())
        repository = aws.codeartifact.Repository(
            f"{self._name}-pypi-mirror", repository=PACKAGE_REPOSITORY, domain=domain.domain,
            description="Upstream mirror of PyPI for the EMR bootstrap (the nodes have no internet access)",
            external_connections={"external_connection_name": "public:pypi"}, opts=self._child())
        return domain, repository

    def _create_service_role(self) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        role = aws.iam.Role(f"{self._name}-service-role",
                            assume_role_policy=to_json(assume_role_policy("elasticmapreduce.amazonaws.com")),
                            description="EMR service role (managed policy v2 + the lake key for EBS)",
                            opts=self._child())
        managed = aws.iam.RolePolicyAttachment(f"{self._name}-service-managed", role=role.name,
                                               policy_arn=EMR_SERVICE_POLICY_ARN, opts=self._child())
        kms = aws.iam.RolePolicy(
            f"{self._name}-service-kms", role=role.id,
            policy=pulumi.Output.from_input(self._args.kms_key_arn).apply(
                lambda arn: to_json(emr_service_kms_policy(arn))),
            opts=self._child())
        return role, [managed, kms]

    def _create_instance_role(self, domain: aws.codeartifact.Domain, repository: aws.codeartifact.Repository,
                              ) -> tuple[aws.iam.Role, aws.iam.InstanceProfile, aws.iam.RolePolicy]:
        args = self._args
        role = aws.iam.Role(f"{self._name}-instance-role",
                            assume_role_policy=to_json(assume_role_policy("ec2.amazonaws.com")),
                            description="EMR nodes: lake, key, MSK topics, Redshift Data API, AMP", opts=self._child())
        document = pulumi.Output.all(
            lake=pulumi.Output.all(*args.lake_bucket_arns), artifact=args.artifact_bucket_arn, key=args.kms_key_arn,
            msk=args.msk_cluster_arn, secret=args.redshift_secret_arn, amp=args.amp_workspace_arn,
            domain=domain.arn, repository=repository.arn, agent=args.agent_config_parameter_arn,
        ).apply(lambda v: to_json(emr_instance_policy(
            lake_bucket_arns=v["lake"], artifact_bucket_arn=v["artifact"], log_prefix=LOG_PREFIX,
            kms_key_arn=v["key"], msk_cluster_arn=v["msk"], redshift_secret_arn=v["secret"],
            amp_workspace_arn=v["amp"], codeartifact_domain_arn=v["domain"],
            codeartifact_repository_arn=v["repository"], agent_config_parameter_arn=v["agent"])))
        policy = aws.iam.RolePolicy(f"{self._name}-instance-policy", role=role.id, policy=document,
                                    opts=self._child())
        profile = aws.iam.InstanceProfile(f"{self._name}-instance-profile", role=role.name, opts=self._child())
        return role, profile, policy

    def _create_security_configuration(self) -> aws.emr.SecurityConfiguration:
        configuration = pulumi.Output.all(self._args.kms_key_arn, self._args.artifact_bucket).apply(
            lambda values: json.dumps(security_configuration(
                kms_key_arn=values[0], certificates_s3_uri=self._args.certificates_uri(values[1])), sort_keys=True))
        return aws.emr.SecurityConfiguration(f"{self._name}-security", name_prefix=f"{self._name}-",
                                             configuration=configuration, opts=self._child())

    def _create_bootstrap_objects(self) -> list[aws.s3.BucketObjectv2]:
        files = {
            "bootstrap-script": (emr_bootstrap.SCRIPT_KEY, emr_bootstrap.SCRIPT, "text/x-shellscript"),
            "bootstrap-requirements": (emr_bootstrap.REQUIREMENTS_KEY, self._args.runtime_requirements, "text/plain"),
            "bootstrap-constraints": (emr_bootstrap.CONSTRAINTS_KEY, self._args.constraints, "text/plain"),
        }
        if self._args.runs_agent:
            files["agent-script"] = (emr_bootstrap.AGENT_SCRIPT_KEY, emr_bootstrap.AGENT_SCRIPT, "text/x-shellscript")
            files["stream-discovery"] = (emr_bootstrap.DISCOVERY_SCRIPT_KEY,
                                         emr_bootstrap.DISCOVERY_SOURCE.read_text(encoding="utf-8"), "text/x-python")
        objects = [
            aws.s3.BucketObjectv2(
                f"{self._name}-{role}", bucket=self._args.artifact_bucket, key=key, content=content,
                content_type=content_type, server_side_encryption="aws:kms", kms_key_id=self._args.kms_key_arn,
                opts=self._child())
            for role, (key, content, content_type) in files.items()
        ]
        if self._args.runs_agent:
            # The engine reads the file at `pulumi up`; infra/prometheus_release.py fetched and checked it.
            architecture = self._args.primary_architecture
            objects.append(aws.s3.BucketObjectv2(
                f"{self._name}-prometheus-{architecture}", bucket=self._args.artifact_bucket,
                key=emr_bootstrap.prometheus_tarball_key(architecture),
                source=pulumi.FileAsset(str(tarball_path(architecture, self._args.prometheus_release_dir))),
                content_type="application/gzip", server_side_encryption="aws:kms",
                kms_key_id=self._args.kms_key_arn, opts=self._child()))
        return objects

    def _create_cluster(self, *, service_role: aws.iam.Role, instance_profile: aws.iam.InstanceProfile,
                        security: aws.emr.SecurityConfiguration, domain: aws.codeartifact.Domain,
                        repository: aws.codeartifact.Repository,
                        depends_on: Sequence[pulumi.Resource]) -> aws.emr.Cluster:
        args = self._args
        bucket = pulumi.Output.from_input(args.artifact_bucket)
        additional_groups = pulumi.Output.from_input(args.client_security_group_id)
        return aws.emr.Cluster(
            f"{self._name}-cluster",
            name=self._name,
            release_label=args.release_label,
            # The Spark runtime releases (emr-spark-*) list no separate "Hadoop" application, unlike emr-7.x; the
            # Spark application brings the YARN components the steps run on.
            applications=["Spark"],
            service_role=service_role.arn,
            security_configuration=security.name,
            log_uri=bucket.apply(lambda name: f"s3://{name}/{LOG_PREFIX}"),
            log_encryption_kms_key_id=args.kms_key_arn,
            ec2_attributes=aws.emr.ClusterEc2AttributesArgs(
                subnet_id=args.subnet_id,
                instance_profile=instance_profile.arn,
                emr_managed_master_security_group=args.primary_security_group_id,
                emr_managed_slave_security_group=args.core_security_group_id,
                service_access_security_group=args.service_access_security_group_id,
                additional_master_security_groups=additional_groups,
                additional_slave_security_groups=additional_groups,
            ),
            master_instance_group=aws.emr.ClusterMasterInstanceGroupArgs(
                instance_type=args.primary_instance_type, instance_count=1,
                ebs_configs=[aws.emr.ClusterMasterInstanceGroupEbsConfigArgs(
                    size=args.core_ebs_gb, type="gp3", volumes_per_instance=1)]),
            core_instance_group=aws.emr.ClusterCoreInstanceGroupArgs(
                instance_type=args.core_instance_type, instance_count=args.core_min,
                ebs_configs=[aws.emr.ClusterCoreInstanceGroupEbsConfigArgs(
                    size=args.core_ebs_gb, type="gp3", volumes_per_instance=1)]),
            bootstrap_actions=[aws.emr.ClusterBootstrapActionArgs(
                name="install-claims-runtime",
                path=bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.SCRIPT_KEY}"),
                args=[
                    bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.REQUIREMENTS_KEY}"),
                    bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.CONSTRAINTS_KEY}"),
                    domain.domain,
                    pulumi.Output.from_input(args.account_id),
                    repository.repository,
                    args.region,
                ],
            ), *self._agent_bootstrap(bucket)],
            configurations_json=json.dumps(spark_defaults(args.shuffle_partitions), sort_keys=True),
            keep_job_flow_alive_when_no_steps=True,
            termination_protection=args.termination_protection,
            step_concurrency_level=args.step_concurrency,
            unhealthy_node_replacement=True,
            opts=self._child(depends_on=depends_on))

    def _agent_bootstrap(self, bucket: pulumi.Output[str]) -> list[aws.emr.ClusterBootstrapActionArgs]:
        """The Prometheus agent's bootstrap action (it exits at once on core and task nodes)."""
        if self._args.agent_config_parameter is None:
            return []
        return [aws.emr.ClusterBootstrapActionArgs(
            name="prometheus-agent",
            path=bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.AGENT_SCRIPT_KEY}"),
            args=[bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.AGENT_TARBALL_PREFIX}"),
                  pulumi.Output.from_input(self._args.agent_config_parameter), self._args.region,
                  bucket.apply(lambda name: f"s3://{name}/{emr_bootstrap.DISCOVERY_SCRIPT_KEY}")],
        )]

    def _create_stream_metrics_rules(self) -> None:
        """The agent on the primary node scrapes the stream's driver on a core node: admit that one port between
        the cluster's nodes in the client group, which every node carries (additional master and slave group).

        EMR's managed groups already let the primary and core groups talk on every port in a private subnet; this
        rule keeps the path open if those rules ever narrow, and says in code why the port must be reachable.
        """
        if not self._args.runs_agent:
            return
        group = self._args.client_security_group_id
        port = emr_bootstrap.STREAM_METRICS_PORT
        description = "Stream driver metrics: Prometheus agent (primary node) to the YARN application master"
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-stream-metrics-in", security_group_id=group, referenced_security_group_id=group,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self._child())
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-stream-metrics-out", security_group_id=group, referenced_security_group_id=group,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self._child())

    def _create_managed_scaling(self, cluster: aws.emr.Cluster) -> aws.emr.ManagedScalingPolicy:
        args = self._args
        # Limits apply to core + task nodes (the primary node never scales).
        limits = aws.emr.ManagedScalingPolicyComputeLimitArgs(
            unit_type="Instances",
            minimum_capacity_units=args.core_min,
            maximum_capacity_units=args.core_max + args.task_max,
            maximum_core_capacity_units=args.core_max,
            maximum_ondemand_capacity_units=args.core_max + args.task_max,
        )
        return aws.emr.ManagedScalingPolicy(f"{self._name}-scaling", cluster_id=cluster.id,
                                            compute_limits=[limits], opts=self._child())
