"""Provisioned Amazon Redshift cluster: the AWS warehouse the batch jobs load through COPY.

Why these settings: the admin password is generated, stored and rotated by AWS Secrets Manager (never in Pulumi
state), storage is encrypted with the lake key, clients must use TLS (require_ssl), the cluster has no public
endpoint and its COPY traffic stays in the VPC (enhanced VPC routing through the S3 gateway endpoint). Connection,
user and user-activity logs go to KMS-encrypted CloudWatch log groups (Redshift's S3 audit logging cannot use KMS).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam_documents import assume_role_policy, redshift_copy_policy, to_json

AUDIT_LOG_EXPORTS = ("connectionlog", "userlog", "useractivitylog")
PARAMETER_GROUP_FAMILY = "redshift-2.0"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class WarehouseArgs:
    """Redshift sizing from `medical-claims:redshift` plus network, key and the bucket COPY reads."""

    cluster_identifier: str
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    processed_bucket_arn: pulumi.Input[str]
    node_type: str = "ra3.xlplus"
    node_count: int = 2
    database: str = "claims"
    master_username: str = "claims_admin"
    snapshot_retention_days: int = 7
    skip_final_snapshot: bool = False
    log_retention_days: int = 365

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.cluster_identifier) or "--" in self.cluster_identifier:
            msg = (f"WarehouseArgs.cluster_identifier: expected lowercase letters, digits and single hyphens, "
                   f"found {self.cluster_identifier!r}")
            raise ValueError(msg)
        if not 1 <= self.node_count <= 128:
            msg = f"WarehouseArgs.node_count: expected 1..128, found {self.node_count}"
            raise ValueError(msg)
        if not 1 <= self.snapshot_retention_days <= 35:
            msg = f"WarehouseArgs.snapshot_retention_days: expected 1..35, found {self.snapshot_retention_days}"
            raise ValueError(msg)

    @property
    def cluster_type(self) -> str:
        """Redshift calls a one-node cluster `single-node` and requires number_of_nodes=1 with it."""
        return "single-node" if self.node_count == 1 else "multi-node"


class Warehouse(pulumi.ComponentResource):
    """Redshift cluster, its parameter group, subnet group, COPY role and audit logging."""

    cluster_identifier: pulumi.Output[str]
    database: pulumi.Output[str]
    master_password_secret_arn: pulumi.Output[str]
    copy_role_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: WarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:warehouse:Warehouse", name, None, opts)
        self._name = name
        self._args = args
        copy_role = self._create_copy_role()
        parameter_group = self._create_parameter_group()
        subnet_group = aws.redshift.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids),
                                                opts=self._child())
        log_groups = self._create_audit_log_groups()
        cluster = self._create_cluster(copy_role, parameter_group, subnet_group)
        aws.redshift.Logging(f"{name}-audit-logging", cluster_identifier=cluster.cluster_identifier,
                             log_destination_type="cloudwatch", log_exports=list(AUDIT_LOG_EXPORTS),
                             opts=self._child(depends_on=log_groups))
        self.cluster_identifier = cluster.cluster_identifier
        self.database = cluster.database_name
        self.master_password_secret_arn = cluster.master_password_secret_arn
        self.copy_role_arn = copy_role.arn
        self.endpoint = cluster.endpoint
        self.register_outputs({
            "cluster_identifier": self.cluster_identifier,
            "database": self.database,
            "master_password_secret_arn": self.master_password_secret_arn,
            "copy_role_arn": self.copy_role_arn,
        })

    def _child(self, *, depends_on: Sequence[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on or []))

    def _create_copy_role(self) -> aws.iam.Role:
        role = aws.iam.Role(f"{self._name}-copy-role",
                            assume_role_policy=to_json(assume_role_policy("redshift.amazonaws.com")),
                            description="Redshift COPY from the processed lake bucket", opts=self._child())
        policy = pulumi.Output.all(self._args.processed_bucket_arn, self._args.kms_key_arn).apply(
            lambda arns: to_json(redshift_copy_policy(processed_bucket_arn=arns[0], kms_key_arn=arns[1])))
        aws.iam.RolePolicy(f"{self._name}-copy-policy", role=role.id, policy=policy, opts=self._child())
        return role

    def _create_parameter_group(self) -> aws.redshift.ParameterGroup:
        return aws.redshift.ParameterGroup(
            f"{self._name}-params", family=PARAMETER_GROUP_FAMILY,
            description="TLS required; user activity logged",
            parameters=[
                {"name": "require_ssl", "value": "true"},
                {"name": "enable_user_activity_logging", "value": "true"},
            ],
            opts=self._child())

    def _create_audit_log_groups(self) -> list[aws.cloudwatch.LogGroup]:
        # Pre-created with KMS and retention; Redshift would otherwise create them unencrypted, kept forever.
        return [
            aws.cloudwatch.LogGroup(
                f"{self._name}-{export}", name=f"/aws/redshift/cluster/{self._args.cluster_identifier}/{export}",
                retention_in_days=self._args.log_retention_days, kms_key_id=self._args.kms_key_arn,
                opts=self._child())
            for export in AUDIT_LOG_EXPORTS
        ]

    def _create_cluster(self, copy_role: aws.iam.Role, parameter_group: aws.redshift.ParameterGroup,
                        subnet_group: aws.redshift.SubnetGroup) -> aws.redshift.Cluster:
        args = self._args
        return aws.redshift.Cluster(
            f"{self._name}-cluster",
            cluster_identifier=args.cluster_identifier,
            node_type=args.node_type,
            cluster_type=args.cluster_type,
            number_of_nodes=args.node_count,
            database_name=args.database,
            master_username=args.master_username,
            manage_master_password=True,
            master_password_secret_kms_key_id=args.kms_key_arn,
            encrypted="true",
            kms_key_id=args.kms_key_arn,
            publicly_accessible=False,
            enhanced_vpc_routing=True,
            cluster_parameter_group_name=parameter_group.name,
            cluster_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=list(args.security_group_ids),
            iam_roles=[copy_role.arn],
            default_iam_role_arn=copy_role.arn,
            automated_snapshot_retention_period=args.snapshot_retention_days,
            skip_final_snapshot=args.skip_final_snapshot,
            final_snapshot_identifier=None if args.skip_final_snapshot else f"{args.cluster_identifier}-final",
            allow_version_upgrade=True,
            opts=self._child())
