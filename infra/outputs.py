"""The stack outputs the apps and `make deploy-apps` consume.

Why a pure function: `app_config` must validate against `libs.settings.Settings` (the apps load it through
CLAIMS_CONFIG), and that contract is easiest to test on plain strings. Only names, ARNs and endpoints are exported,
never credentials: the Redshift password stays in Secrets Manager and is referenced by ARN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config import EmrConfig

# Exact names read by the deploy tooling (libs/deploy); renaming one is a breaking change.
TOP_LEVEL_OUTPUTS = (
    "app_config",
    "artifact_bucket",
    "emr_cluster_id",
    "msk_bootstrap_brokers",
    "redshift_cluster_identifier",
    "redshift_database",
    "redshift_secret_arn",
    "kms_key_arn",
    "region",
    "environment",
)


@dataclass(frozen=True)
class ResolvedStack:
    """Resolved values of the resources the apps need to know about."""

    environment: str
    region: str
    msk_bootstrap_brokers: str
    raw_bucket: str
    processed_bucket: str
    checkpoint_bucket: str
    artifact_bucket: str
    redshift_cluster_identifier: str
    redshift_database: str
    redshift_secret_arn: str
    redshift_copy_role_arn: str
    remote_write_url: str
    kms_key_arn: str
    emr_cluster_id: str


def render_app_config(stack: ResolvedStack, spark: EmrConfig) -> dict[str, Any]:
    """The `Settings` document of this stack (same shape as the CLAIMS_CONFIG JSON file)."""
    spark_settings: dict[str, Any] = {
        "master": "yarn",
        "trigger_seconds": spark.trigger_seconds,
        "shuffle_partitions": spark.shuffle_partitions,
        "driver_memory": spark.driver_memory,
    }
    if spark.max_offsets_per_trigger is not None:
        spark_settings["max_offsets_per_trigger"] = spark.max_offsets_per_trigger
    return {
        "environment": stack.environment,
        "kafka": {
            "bootstrap_servers": stack.msk_bootstrap_brokers,
            "security_protocol": "SASL_SSL",
            # MSK IAM authentication is SASL/OAUTHBEARER with a token signed for this region.
            "sasl_mechanism": "OAUTHBEARER",
            "aws_region": stack.region,
        },
        "lake": {
            "root": f"s3a://{stack.processed_bucket}/lake",
            "checkpoint_root": f"s3a://{stack.checkpoint_bucket}/checkpoints",
            "raw_bucket": stack.raw_bucket,
            "processed_bucket": stack.processed_bucket,
        },
        "warehouse": {
            "kind": "redshift",
            "redshift_cluster_id": stack.redshift_cluster_identifier,
            "redshift_database": stack.redshift_database,
            "redshift_secret_arn": stack.redshift_secret_arn,
            "redshift_copy_role_arn": stack.redshift_copy_role_arn,
        },
        "spark": spark_settings,
        "monitoring": {"remote_write_url": stack.remote_write_url},
        "security": {"environment": stack.environment, "key_provider": "kms", "kms_key_id": stack.kms_key_arn},
        "aws": {"region": stack.region, "artifact_bucket": stack.artifact_bucket,
                "emr_cluster_id": stack.emr_cluster_id},
    }
