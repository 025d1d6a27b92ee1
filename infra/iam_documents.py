"""IAM, KMS and bucket policy documents as pure functions of resolved ARNs.

Why separate: least privilege is easiest to review (and to unit-test) as plain data; the components only wrap these
functions in `Output.apply`. Every statement has an Sid saying why it exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PolicyDocument = dict[str, Any]

# The services that publish to (AMP's Alertmanager) and deliver from (SNS) the KMS-encrypted alert topics.
ALERT_TOPIC_SERVICES = ("sns.amazonaws.com", "aps.amazonaws.com")
_KMS_DATA_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]


def to_json(document: PolicyDocument) -> str:
    """Stable JSON (sorted keys) so unchanged policies never show as diffs."""
    return json.dumps(document, sort_keys=True)


def assume_role_policy(service: str) -> PolicyDocument:
    """Trust policy letting one AWS service (e.g. `ec2.amazonaws.com`) assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TrustService",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }],
    }


def kms_key_policy(*, account_id: str, partition: str, region: str) -> PolicyDocument:
    """The lake key: the account administers it through IAM; CloudWatch Logs may use it for this account's groups;
    SNS and AMP may use it for this account's encrypted alert topics.

    Why the service statement: the alert topics (infra/monitoring.py) are SSE-KMS with this key, and a service that
    publishes to an encrypted topic needs a data key. AMP's Alertmanager publishes as `aps.amazonaws.com`, SNS itself
    decrypts to deliver to subscribers; without the grant every alert is dropped with a KMS AccessDenied that only
    shows in the AMP log group. `aws:SourceAccount` is the confused-deputy guard: another account's workspace or
    topic cannot use the key through the services.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Without this statement IAM policies could not grant use of the key at all.
                "Sid": "AccountAdministersThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*",
                }},
            },
            {
                "Sid": "AlertTopicsPublishEncrypted",
                "Effect": "Allow",
                "Principal": {"Service": list(ALERT_TOPIC_SERVICES)},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ],
    }


def deny_insecure_transport_policy(bucket_arn: str) -> PolicyDocument:
    """Bucket policy refusing any request not made over TLS 1.2+ (HIPAA transmission security)."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyTlsOlderThan12",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ],
    }


def msk_resource_arns(cluster_arn: str) -> dict[str, str]:
    """Topic and consumer-group ARN patterns of one MSK cluster (arn:...:cluster/<name>/<uuid>)."""
    return {
        "cluster": cluster_arn,
        "topic": cluster_arn.replace(":cluster/", ":topic/", 1) + "/*",
        "group": cluster_arn.replace(":cluster/", ":group/", 1) + "/*",
    }


def emr_instance_policy(
    *,
    lake_bucket_arns: Sequence[str],
    artifact_bucket_arn: str,
    log_prefix: str,
    kms_key_arn: str,
    msk_cluster_arn: str,
    redshift_secret_arn: str,
    amp_workspace_arn: str,
    codeartifact_domain_arn: str,
    codeartifact_repository_arn: str,
    agent_config_parameter_arn: str | None = None,
) -> PolicyDocument:
    """What the Spark apps on EMR nodes may do, and nothing more.

    With `agent_config_parameter_arn`, the primary node's Prometheus agent bootstrap may read its configuration from
    that one SSM parameter (a String parameter: no KMS grant needed); the agent remote-writes as `RemoteWriteMetrics`.
    """
    msk = msk_resource_arns(msk_cluster_arn)
    agent: list[dict[str, Any]] = [] if agent_config_parameter_arn is None else [{
        "Sid": "ReadPrometheusAgentConfig",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter"],
        "Resource": [agent_config_parameter_arn],
    }]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListLakeAndArtifactBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [*lake_bucket_arns, artifact_bucket_arn],
            },
            {
                # Delta commits and streaming checkpoints rewrite and delete objects.
                "Sid": "ReadWriteLakeObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"{arn}/*" for arn in lake_bucket_arns],
            },
            {
                "Sid": "ReadAppArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{artifact_bucket_arn}/*"],
            },
            {
                "Sid": "WriteClusterLogs",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"{artifact_bucket_arn}/{log_prefix.strip('/')}/*"],
            },
            {
                "Sid": "UseLakeKey",
                "Effect": "Allow",
                "Action": _KMS_DATA_KEY_ACTIONS,
                "Resource": [kms_key_arn],
            },
            {
                "Sid": "KafkaIamAuthentication",
                "Effect": "Allow",
                "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                "Resource": [msk["cluster"]],
            },
            {
                "Sid": "KafkaReadWriteTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData"],
                "Resource": [msk["topic"]],
            },
            {
                "Sid": "KafkaConsumerGroups",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                "Resource": [msk["group"]],
            },
            {
                # The batch job loads the warehouse through the Redshift Data API with the AWS-managed admin secret.
                "Sid": "ReadWarehouseSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [redshift_secret_arn],
            },
            {
                "Sid": "RedshiftDataApi",
                "Effect": "Allow",
                "Action": ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement",
                           "redshift-data:DescribeStatement", "redshift-data:GetStatementResult"],
                "Resource": ["*"],
            },
            {
                # Bootstrap: pip reads the CodeArtifact PyPI mirror (the nodes have no internet access).
                "Sid": "CodeArtifactToken",
                "Effect": "Allow",
                "Action": ["codeartifact:GetAuthorizationToken"],
                "Resource": [codeartifact_domain_arn],
            },
            {
                "Sid": "CodeArtifactRead",
                "Effect": "Allow",
                "Action": ["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
                "Resource": [codeartifact_repository_arn],
            },
            {
                "Sid": "CodeArtifactBearerToken",
                "Effect": "Allow",
                "Action": ["sts:GetServiceBearerToken"],
                "Resource": ["*"],
                "Condition": {"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
            },
            {
                "Sid": "RemoteWriteMetrics",
                "Effect": "Allow",
                "Action": ["aps:RemoteWrite"],
                "Resource": [amp_workspace_arn],
            },
            *agent,
        ],
    }


def emr_service_kms_policy(kms_key_arn: str) -> PolicyDocument:
    """EMR's service role creates KMS grants so EBS volumes of the nodes are encrypted with the lake key."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EncryptNodeVolumes",
            "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant", *_KMS_DATA_KEY_ACTIONS],
            "Resource": [kms_key_arn],
        }],
    }


def redshift_copy_policy(*, processed_bucket_arn: str, kms_key_arn: str) -> PolicyDocument:
    """Redshift's COPY role: read the processed (silver/gold) bucket and decrypt its objects; nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListProcessedBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [processed_bucket_arn],
            },
            {
                "Sid": "ReadProcessedObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{processed_bucket_arn}/*"],
            },
            {
                "Sid": "DecryptProcessedObjects",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": [kms_key_arn],
            },
        ],
    }


def flow_logs_policy(log_group_arn: str) -> PolicyDocument:
    """VPC flow logs service writes into its own log group only."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        }],
    }
