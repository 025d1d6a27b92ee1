"""The S3 lake (raw, processed, checkpoint, artifact buckets) and the KMS key that encrypts all PHI at rest.

Why one component: every bucket gets the same HIPAA baseline (SSE-KMS by default, versioning, public access blocked,
ACLs disabled, TLS-only bucket policy) and only its lifecycle differs, so the baseline cannot drift between buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_aws as aws

from infra.iam_documents import deny_insecure_transport_policy, kms_key_policy, to_json


class BucketRole(StrEnum):
    """What a lake bucket holds."""

    RAW = "raw"  # bronze: files and Kafka payloads exactly as received
    PROCESSED = "processed"  # silver/gold Delta tables, COPY source of the warehouse
    CHECKPOINT = "checkpoint"  # Spark structured streaming offsets and state
    ARTIFACT = "artifact"  # app wheels, EMR bootstrap scripts, TLS certificates, cluster logs


@dataclass(frozen=True)
class DataLakeArgs:
    """Inputs of the lake; lifecycle day counts come from `medical-claims:lake`."""

    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    raw_infrequent_access_days: int = 30
    raw_glacier_days: int = 180
    processed_intelligent_tiering_days: int = 30
    noncurrent_version_days: int = 90
    checkpoint_noncurrent_version_days: int = 7
    force_destroy: bool = False
    key_deletion_window_days: int = 30

    def __post_init__(self) -> None:
        if self.raw_infrequent_access_days < 30:
            msg = (f"DataLakeArgs.raw_infrequent_access_days: expected >= 30 (S3 minimum), "
                   f"found {self.raw_infrequent_access_days}")
            raise ValueError(msg)
        if self.raw_glacier_days < self.raw_infrequent_access_days + 30:
            msg = (f"DataLakeArgs.raw_glacier_days: expected >= raw_infrequent_access_days + 30, "
                   f"found {self.raw_glacier_days}")
            raise ValueError(msg)
        if not 7 <= self.key_deletion_window_days <= 30:
            msg = f"DataLakeArgs.key_deletion_window_days: expected 7..30, found {self.key_deletion_window_days}"
            raise ValueError(msg)


class DataLake(pulumi.ComponentResource):
    """KMS key + four hardened buckets."""

    kms_key_arn: pulumi.Output[str]
    kms_key_id: pulumi.Output[str]
    bucket_names: dict[BucketRole, pulumi.Output[str]]
    bucket_arns: dict[BucketRole, pulumi.Output[str]]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:datalake:DataLake", name, None, opts)
        self._name = name
        self._args = args
        key = self._create_key()
        self.kms_key_arn = key.arn
        self.kms_key_id = key.key_id
        self.bucket_names = {}
        self.bucket_arns = {}
        for role in BucketRole:
            bucket = self._create_bucket(role, key)
            self.bucket_names[role] = bucket.bucket
            self.bucket_arns[role] = bucket.arn
        self.register_outputs({
            "kms_key_arn": self.kms_key_arn,
            **{f"{role.value}_bucket": bucket_name for role, bucket_name in self.bucket_names.items()},
        })

    def _child(self, *, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_key(self) -> aws.kms.Key:
        policy = pulumi.Output.all(self._args.account_id, self._args.partition).apply(
            lambda values: to_json(kms_key_policy(account_id=values[0], partition=values[1], region=self._args.region))
        )
        key = aws.kms.Key(
            f"{self._name}-key",
            description="Encrypts PHI at rest: lake buckets, MSK, Redshift, EMR disks, logs",
            enable_key_rotation=True,
            deletion_window_in_days=self._args.key_deletion_window_days,
            policy=policy,
            opts=self._child(),
        )
        aws.kms.Alias(f"{self._name}-key-alias", name=f"alias/{self._name}", target_key_id=key.key_id,
                      opts=self._child())
        return key

    def _create_bucket(self, role: BucketRole, key: aws.kms.Key) -> aws.s3.Bucket:
        prefix = f"{self._name}-{role.value}"
        bucket = aws.s3.Bucket(prefix, force_destroy=self._args.force_destroy, tags={"lake-role": role.value},
                               opts=self._child())
        # ACLs disabled: access is decided by IAM and the bucket policy only.
        ownership = aws.s3.BucketOwnershipControls(
            f"{prefix}-ownership", bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=self._child())
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{prefix}-public-access-block", bucket=bucket.id,
            block_public_acls=True, block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
            opts=self._child())
        aws.s3.BucketVersioning(
            f"{prefix}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"},
            opts=self._child())
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{prefix}-encryption", bucket=bucket.id,
            rules=[{
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn},
                # S3 bucket keys cut KMS request costs by ~99% for the millions of small lake objects.
                "bucket_key_enabled": True,
            }],
            opts=self._child())
        aws.s3.BucketPolicy(
            f"{prefix}-tls-only", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: to_json(deny_insecure_transport_policy(arn))),
            # S3 rejects a bucket policy while the public access block is still being applied.
            opts=self._child(depends_on=[public_block, ownership]))
        aws.s3.BucketLifecycleConfiguration(
            f"{prefix}-lifecycle", bucket=bucket.id, rules=self._lifecycle_rules(role), opts=self._child())
        return bucket

    def _lifecycle_rules(self, role: BucketRole) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
        args = self._args
        noncurrent_days = (args.checkpoint_noncurrent_version_days if role is BucketRole.CHECKPOINT
                           else args.noncurrent_version_days)
        housekeeping: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
            "id": "expire-noncurrent-versions-and-abandoned-uploads",
            "status": "Enabled",
            "filter": {},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }
        rules = [housekeeping]
        if role is BucketRole.RAW:
            # Raw input is re-read only for replays and audits: cheaper tiers as it ages, never deleted.
            rules.append({
                "id": "raw-to-cheaper-storage",
                "status": "Enabled",
                "filter": {},
                "transitions": [
                    {"days": args.raw_infrequent_access_days, "storage_class": "STANDARD_IA"},
                    {"days": args.raw_glacier_days, "storage_class": "GLACIER_IR"},
                ],
            })
        elif role is BucketRole.PROCESSED:
            # Query patterns of silver/gold tables are unpredictable; let S3 tier by access.
            rules.append({
                "id": "processed-intelligent-tiering",
                "status": "Enabled",
                "filter": {},
                "transitions": [{"days": args.processed_intelligent_tiering_days,
                                 "storage_class": "INTELLIGENT_TIERING"}],
            })
        return rules
