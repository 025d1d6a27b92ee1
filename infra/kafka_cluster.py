"""Amazon MSK (provisioned) cluster carrying the claim topics.

Why these settings: claims are PHI, so clients authenticate with IAM (no shared passwords) over TLS only, brokers
encrypt at rest with the lake key, and broker logs go to CloudWatch for the audit trail. Durability: with replication
factor 3 and min.insync.replicas=2 an acknowledged claim survives the loss of any one broker; topics are created only
from configs/kafka/topics.json (auto-creation off), so a typo'd topic name fails instead of silently losing claims.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Broker-side defaults; topics.json may override per topic but never lower min.insync.replicas.
SERVER_PROPERTIES: Mapping[str, str] = {
    "auto.create.topics.enable": "false",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "num.partitions": "6",
    "delete.topic.enable": "true",
}
MIN_BROKERS = 3  # replication factor 3 needs three brokers


def render_server_properties(properties: Mapping[str, str]) -> str:
    """server.properties text as MSK expects it (one key=value per line, sorted for stable diffs)."""
    return "".join(f"{key}={value}\n" for key, value in sorted(properties.items()))


@dataclass(frozen=True)
class KafkaClusterArgs:
    """MSK sizing from `medical-claims:kafka` plus the network and key it runs with."""

    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    kafka_version: str = "3.9.x"
    broker_count: int = 3
    instance_type: str = "kafka.m7g.large"
    ebs_volume_gb: int = 100
    log_retention_days: int = 365

    def __post_init__(self) -> None:
        if self.broker_count < MIN_BROKERS:
            msg = f"KafkaClusterArgs.broker_count: expected >= {MIN_BROKERS}, found {self.broker_count}"
            raise ValueError(msg)
        if not self.subnet_ids or self.broker_count % len(self.subnet_ids):
            msg = (f"KafkaClusterArgs.broker_count: expected a multiple of the {len(self.subnet_ids)} client subnets, "
                   f"found {self.broker_count}")
            raise ValueError(msg)
        if not self.instance_type.startswith("kafka."):
            msg = f"KafkaClusterArgs.instance_type: expected a kafka.* instance type, found {self.instance_type!r}"
            raise ValueError(msg)


class KafkaCluster(pulumi.ComponentResource):
    """MSK cluster, its server configuration and its broker log group."""

    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    bootstrap_brokers_sasl_iam: pulumi.Output[str]

    def __init__(self, name: str, args: KafkaClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:kafka:KafkaCluster", name, None, opts)
        self._name = name
        self._args = args
        log_group = self._create_log_group()
        configuration = self._create_configuration()
        cluster = self._create_cluster(configuration, log_group)
        self.cluster_arn = cluster.arn
        self.cluster_name = cluster.cluster_name
        self.bootstrap_brokers_sasl_iam = cluster.bootstrap_brokers_sasl_iam
        self.register_outputs({
            "cluster_arn": self.cluster_arn,
            "bootstrap_brokers_sasl_iam": self.bootstrap_brokers_sasl_iam,
        })

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _create_log_group(self) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{self._name}-broker-logs", name=f"/claims/{self._name}/broker-logs",
            retention_in_days=self._args.log_retention_days, kms_key_id=self._args.kms_key_arn, opts=self._child())

    def _create_configuration(self) -> aws.msk.Configuration:
        return aws.msk.Configuration(
            f"{self._name}-config", name=f"{self._name}-config", kafka_versions=[self._args.kafka_version],
            server_properties=render_server_properties(SERVER_PROPERTIES),
            description="Durable, no auto-created topics",
            # A configuration revision in use cannot be deleted; create the replacement first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False))

    def _create_cluster(self, configuration: aws.msk.Configuration,
                        log_group: aws.cloudwatch.LogGroup) -> aws.msk.Cluster:
        args = self._args
        return aws.msk.Cluster(
            f"{self._name}-cluster",
            cluster_name=self._name,
            kafka_version=args.kafka_version,
            number_of_broker_nodes=args.broker_count,
            broker_node_group_info={
                "instance_type": args.instance_type,
                "client_subnets": list(args.subnet_ids),
                "security_groups": list(args.security_group_ids),
                "storage_info": {"ebs_storage_info": {"volume_size": args.ebs_volume_gb}},
                "connectivity_info": {"public_access": {"type": "DISABLED"}},
            },
            client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
            encryption_info={
                "encryption_at_rest_kms_key_arn": args.kms_key_arn,
                "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True},
            },
            configuration_info={"arn": configuration.arn, "revision": configuration.latest_revision},
            logging_info={"broker_logs": {"cloudwatch_logs": {"enabled": True, "log_group": log_group.name}}},
            # Per-topic lag and throughput feed the Prometheus alerts (open monitoring exporters).
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            open_monitoring={"prometheus": {"jmx_exporter": {"enabled_in_broker": True},
                                            "node_exporter": {"enabled_in_broker": True}}},
            opts=self._child())
