"""The Pulumi program: stack config in, components wired together, outputs out.

Why a function instead of top-level code in __main__.py: the unit tests run exactly this function under Pulumi
mocks for each of Pulumi.dev/staging/prod.yaml, so what is tested is what `pulumi up` deploys.
Order matters only through data: the lake key comes first (everything encrypts with it), the network next, then the
data services, and EMR last because its least-privilege role names the MSK cluster, Redshift secret and AMP workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.api_service import ApiService, ApiServiceArgs
from infra.config import StackConfig, load_stack_config
from infra.data_lake import BucketRole, DataLake, DataLakeArgs
from infra.emr_bootstrap import runtime_requirements
from infra.kafka_cluster import KafkaCluster, KafkaClusterArgs
from infra.monitoring import (
    KubernetesMonitoringArgs,
    Monitoring,
    MonitoringArgs,
    MonitoringAssets,
    load_monitoring_assets,
)
from infra.network import Network, NetworkArgs
from infra.outputs import ResolvedStack, render_app_config
from infra.spark_cluster import SparkCluster, SparkClusterArgs
from infra.tags import register_tagging, standard_tags
from infra.warehouse import Warehouse, WarehouseArgs
from libs.deploy.api_image import IMAGE_WEB_ASSETS_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_stack(assets: MonitoringAssets | None = None) -> dict[str, Any]:
    """Create every resource of the current stack and return its outputs (name -> value or Output)."""
    config = load_stack_config()
    register_tagging(standard_tags(config))
    if assets is None:
        assets = load_monitoring_assets(REPO_ROOT / config.monitoring.rules_file,
                                        REPO_ROOT / config.monitoring.dashboards_dir)
    prefix = config.name_prefix
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output()

    lake = _data_lake(config, prefix, identity.account_id, partition.partition)
    network = Network(f"{prefix}-net", NetworkArgs(
        availability_zones=config.network.availability_zones, region=config.region, kms_key_arn=lake.kms_key_arn,
        cidr_block=config.network.cidr_block, interface_endpoints=config.network.interface_endpoints,
        flow_log_retention_days=config.network.flow_log_retention_days))
    kafka = KafkaCluster(f"{prefix}-kafka", KafkaClusterArgs(
        subnet_ids=network.private_subnet_ids, security_group_ids=[network.msk_sg_id], kms_key_arn=lake.kms_key_arn,
        kafka_version=config.kafka.version, broker_count=config.kafka.broker_count,
        instance_type=config.kafka.instance_type, ebs_volume_gb=config.kafka.ebs_volume_gb,
        log_retention_days=config.kafka.log_retention_days))
    warehouse = _warehouse(config, prefix, network, lake)
    kubernetes = _kubernetes(config, prefix)
    monitoring = Monitoring(f"{prefix}-monitoring", MonitoringArgs(
        region=config.region, kms_key_arn=lake.kms_key_arn, assets=assets,
        log_retention_days=config.monitoring.log_retention_days, kubernetes=kubernetes))
    spark = _spark(config=config, prefix=prefix, network=network, lake=lake, kafka=kafka, warehouse=warehouse,
                   monitoring=monitoring, account_id=identity.account_id)
    outputs = _outputs(config=config, lake=lake, kafka=kafka, warehouse=warehouse, monitoring=monitoring, spark=spark,
                       network=network)
    _api(config, prefix, kubernetes, outputs["app_config"])
    return outputs


def main() -> None:
    """Entry point of `pulumi up`: export every output."""
    for name, value in build_stack().items():
        pulumi.export(name, value)


def _data_lake(config: StackConfig, prefix: str, account_id: pulumi.Output[str],
               partition: pulumi.Output[str]) -> DataLake:
    lake = config.lake
    return DataLake(f"{prefix}-lake", DataLakeArgs(
        account_id=account_id, partition=partition, region=config.region,
        raw_infrequent_access_days=lake.raw_infrequent_access_days, raw_glacier_days=lake.raw_glacier_days,
        processed_intelligent_tiering_days=lake.processed_intelligent_tiering_days,
        noncurrent_version_days=lake.noncurrent_version_days,
        checkpoint_noncurrent_version_days=lake.checkpoint_noncurrent_version_days,
        force_destroy=lake.force_destroy))


def _warehouse(config: StackConfig, prefix: str, network: Network, lake: DataLake) -> Warehouse:
    redshift = config.redshift
    return Warehouse(f"{prefix}-warehouse", WarehouseArgs(
        cluster_identifier=f"{prefix}-warehouse", subnet_ids=network.private_subnet_ids,
        security_group_ids=[network.redshift_sg_id], kms_key_arn=lake.kms_key_arn,
        processed_bucket_arn=lake.bucket_arns[BucketRole.PROCESSED], node_type=redshift.node_type,
        node_count=redshift.node_count, database=redshift.database, master_username=redshift.master_username,
        snapshot_retention_days=redshift.snapshot_retention_days, skip_final_snapshot=redshift.skip_final_snapshot,
        log_retention_days=redshift.log_retention_days))


def _kubernetes(config: StackConfig, prefix: str) -> KubernetesMonitoringArgs | None:
    kube = config.monitoring.kubernetes
    if not kube.enabled:
        return None
    # The one place a provider is created: components receive it and never build their own.
    provider = k8s.Provider(f"{prefix}-k8s", context=kube.context, kubeconfig=kube.kubeconfig)
    return KubernetesMonitoringArgs(provider=provider, namespace=kube.namespace, chart_version=kube.chart_version,
                                    prometheus_role_arn=kube.prometheus_role_arn)


def _api(config: StackConfig, prefix: str, kubernetes: KubernetesMonitoringArgs | None,
         app_config: pulumi.Output[Any]) -> ApiService | None:
    """The REST API on the monitoring cluster, configured from app_config (config checks it has a cluster)."""
    api = config.api
    if not api.enabled or kubernetes is None or api.image is None or api.role_arn is None:
        return None
    return ApiService(f"{prefix}-api", ApiServiceArgs(
        provider=kubernetes.provider, image=api.image, app_config=app_config, role_arn=api.role_arn,
        allowed_cidrs=api.allowed_cidrs, namespace=api.namespace, tls_secret_name=api.tls_secret_name,
        tokenization_secret_name=api.tokenization_secret_name, monitoring_namespace=kubernetes.namespace,
        replicas_min=api.replicas_min, replicas_max=api.replicas_max, cpu_target_percent=api.cpu_target_percent,
        state_storage_class=api.state_storage_class, state_storage_size=api.state_storage_size))


def _api_settings(config: StackConfig) -> dict[str, Any]:
    """app_config's `api` section: the OAuth2 issuer the API trusts (absent: the API refuses to start in AWS)."""
    api = config.api
    if api.jwks_url is None:
        return {}
    return {"api": {"jwks_url": api.jwks_url, "issuer": api.issuer or "", "audience": api.audience,
                    "web_assets_dir": IMAGE_WEB_ASSETS_DIR}}


def _spark(*, config: StackConfig, prefix: str, network: Network, lake: DataLake, kafka: KafkaCluster,
           warehouse: Warehouse, monitoring: Monitoring, account_id: pulumi.Output[str]) -> SparkCluster:
    emr = config.emr
    return SparkCluster(f"{prefix}-spark", SparkClusterArgs(
        # Instance groups live in one subnet; the first private subnet is as good as any.
        subnet_id=network.private_subnet_ids[0],
        primary_security_group_id=network.emr_primary_sg_id, core_security_group_id=network.emr_core_sg_id,
        service_access_security_group_id=network.emr_service_access_sg_id,
        client_security_group_id=network.emr_client_sg_id, kms_key_arn=lake.kms_key_arn,
        lake_bucket_arns=[lake.bucket_arns[role] for role in
                          (BucketRole.RAW, BucketRole.PROCESSED, BucketRole.CHECKPOINT)],
        artifact_bucket=lake.bucket_names[BucketRole.ARTIFACT],
        artifact_bucket_arn=lake.bucket_arns[BucketRole.ARTIFACT], msk_cluster_arn=kafka.cluster_arn,
        redshift_secret_arn=warehouse.master_password_secret_arn, amp_workspace_arn=monitoring.workspace_arn,
        agent_config_parameter=monitoring.agent_config_parameter,
        agent_config_parameter_arn=monitoring.agent_config_parameter_arn,
        account_id=account_id, region=config.region,
        runtime_requirements=runtime_requirements((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"),
                                                  (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")),
        constraints=(REPO_ROOT / "requirements.lock").read_text(encoding="utf-8"),
        tls_certificates=emr.tls_certificates, release_label=emr.release_label,
        primary_instance_type=emr.primary_instance_type, core_instance_type=emr.core_instance_type,
        core_min=emr.core_min, core_max=emr.core_max, task_max=emr.task_max, core_ebs_gb=emr.core_ebs_gb,
        termination_protection=emr.termination_protection, step_concurrency=emr.step_concurrency,
        shuffle_partitions=emr.shuffle_partitions))


def _outputs(*, config: StackConfig, lake: DataLake, kafka: KafkaCluster, warehouse: Warehouse,
             monitoring: Monitoring, spark: SparkCluster, network: Network) -> dict[str, Any]:
    buckets = lake.bucket_names
    resolved = pulumi.Output.all(
        msk_bootstrap_brokers=kafka.bootstrap_brokers_sasl_iam,
        raw_bucket=buckets[BucketRole.RAW],
        processed_bucket=buckets[BucketRole.PROCESSED],
        checkpoint_bucket=buckets[BucketRole.CHECKPOINT],
        artifact_bucket=buckets[BucketRole.ARTIFACT],
        redshift_cluster_identifier=warehouse.cluster_identifier,
        redshift_database=warehouse.database,
        redshift_secret_arn=warehouse.master_password_secret_arn,
        redshift_copy_role_arn=warehouse.copy_role_arn,
        remote_write_url=monitoring.remote_write_url,
        kms_key_arn=lake.kms_key_arn,
        emr_cluster_id=spark.cluster_id,
    ).apply(lambda values: ResolvedStack(environment=config.environment.value, region=config.region, **values))
    return {
        "app_config": resolved.apply(lambda stack: {**render_app_config(stack, config.emr), **_api_settings(config)}),
        "artifact_bucket": buckets[BucketRole.ARTIFACT],
        "emr_cluster_id": spark.cluster_id,
        "msk_bootstrap_brokers": kafka.bootstrap_brokers_sasl_iam,
        "redshift_cluster_identifier": warehouse.cluster_identifier,
        "redshift_database": warehouse.database,
        "redshift_secret_arn": warehouse.master_password_secret_arn,
        "kms_key_arn": lake.kms_key_arn,
        "region": config.region,
        "environment": config.environment.value,
        # Not read by the deploy tooling, but handy for operators.
        "raw_bucket": buckets[BucketRole.RAW],
        "processed_bucket": buckets[BucketRole.PROCESSED],
        "checkpoint_bucket": buckets[BucketRole.CHECKPOINT],
        "redshift_copy_role_arn": warehouse.copy_role_arn,
        "amp_workspace_id": monitoring.workspace_id,
        "amp_remote_write_url": monitoring.remote_write_url,
        # The Prometheus agent's configuration on the EMR primary node (None without scrape jobs).
        "monitoring_agent_config_parameter": monitoring.agent_config_parameter,
        "emr_instance_role_arn": spark.instance_role_arn,
        "vpc_id": network.vpc_id,
    }
