"""The HIPAA policy pack's rules on synthetic resource properties (no Pulumi CLI, no engine)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.policy import rules
from infra.policy.pack import build_policies
from infra.policy.rules import RESOURCE_RULES, STACK_RULES, StackResource, resource_violations

TAGS = {"data-classification": "phi", "owner": "claims-platform", "environment": "dev"}

GOOD_MSK: dict[str, Any] = {
    "tags": TAGS,
    "brokerNodeGroupInfo": {"connectivityInfo": {"publicAccess": {"type": "DISABLED"}}},
    "clientAuthentication": {"sasl": {"iam": True}, "unauthenticated": False},
    "encryptionInfo": {"encryptionAtRestKmsKeyArn": "arn:key",
                       "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True}},
    "loggingInfo": {"brokerLogs": {"cloudwatchLogs": {"enabled": True, "logGroup": "/claims/broker"}}},
}
GOOD_REDSHIFT: dict[str, Any] = {"tags": TAGS, "encrypted": "true", "kmsKeyId": "arn:key", "publiclyAccessible": False,
                                 "enhancedVpcRouting": True, "manageMasterPassword": True}
GOOD_EMR_SECURITY = {"configuration": json.dumps({"EncryptionConfiguration": {
    "EnableAtRestEncryption": True, "EnableInTransitEncryption": True,
    "AtRestEncryptionConfiguration": {
        "S3EncryptionConfiguration": {"EncryptionMode": "SSE-KMS", "AwsKmsKey": "arn:key"},
        "LocalDiskEncryptionConfiguration": {"EncryptionKeyProviderType": "AwsKms", "AwsKmsKey": "arn:key"}},
    "InTransitEncryptionConfiguration": {"TLSCertificateConfiguration": {"CertificateProviderType": "PEM",
                                                                         "S3Object": "s3://b/c.zip"}}}})}
TLS_POLICY = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn"],
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def _names(resource_type: str, props: dict[str, Any]) -> set[str]:
    return {name for name, _ in resource_violations(resource_type, props)}


def _messages(resource_type: str, props: dict[str, Any]) -> list[str]:
    return [message for _, message in resource_violations(resource_type, props)]


@pytest.mark.parametrize(("resource_type", "props"), [
    (rules.MSK_CLUSTER[0], GOOD_MSK),
    (rules.REDSHIFT_CLUSTER[0], GOOD_REDSHIFT),
    (rules.EMR_SECURITY_CONFIGURATION[0], GOOD_EMR_SECURITY),
    (rules.S3_POLICY[0], {"policy": TLS_POLICY}),
    (rules.S3_ENCRYPTION[0], {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                               "kmsMasterKeyId": "arn:key"}}]}),
    (rules.S3_PUBLIC_ACCESS_BLOCK[0], {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                                       "restrictPublicBuckets": True}),
    (rules.REDSHIFT_PARAMETER_GROUP[0], {"tags": TAGS, "parameters": [{"name": "require_ssl", "value": "true"}]}),
    (rules.REDSHIFT_LOGGING[0], {"logDestinationType": "cloudwatch",
                                 "logExports": ["connectionlog", "userlog", "useractivitylog"]}),
    (rules.SECURITY_GROUP_INGRESS_RULE[0], {"tags": TAGS, "referencedSecurityGroupId": "sg-emr", "fromPort": 9098}),
    (rules.LOG_GROUP[0], {"tags": TAGS, "kmsKeyId": "arn:key", "retentionInDays": 365}),
])
def test_compliant_resources_pass(resource_type: str, props: dict[str, Any]) -> None:
    assert resource_violations(resource_type, props) == []


def test_msk_without_tls_or_customer_key_is_reported_with_the_property_path() -> None:
    props = json.loads(json.dumps(GOOD_MSK))
    props["encryptionInfo"] = {"encryptionInTransit": {"clientBroker": "TLS_PLAINTEXT", "inCluster": False}}
    assert _messages(rules.MSK_CLUSTER[0], props) == [
        "encryptionInfo.encryptionAtRestKmsKeyArn: expected a customer KMS key, found None",
        "encryptionInfo.encryptionInTransit.clientBroker: expected 'TLS', found 'TLS_PLAINTEXT'",
        "encryptionInfo.encryptionInTransit.inCluster: expected true, found False",
    ]


def test_msk_public_unauthenticated_unlogged_cluster_breaks_three_rules() -> None:
    props = {**GOOD_MSK, "clientAuthentication": {"unauthenticated": True},
             "brokerNodeGroupInfo": {"connectivityInfo": {"publicAccess": {"type": "SERVICE_PROVIDED_EIPS"}}},
             "loggingInfo": {"brokerLogs": {"cloudwatchLogs": {"enabled": False}}}}
    assert _names(rules.MSK_CLUSTER[0], props) == {"msk-iam-authentication", "msk-no-public-access",
                                                    "msk-broker-logs"}


def test_public_or_unencrypted_redshift_is_reported() -> None:
    props = {**GOOD_REDSHIFT, "publiclyAccessible": True, "encrypted": "false", "masterPassword": "Hunter2hunter2",
             "manageMasterPassword": None}
    messages = _messages(rules.REDSHIFT_CLUSTER[0], props)
    assert "publiclyAccessible: expected false, found True" in messages
    assert "encrypted: expected true, found 'false'" in messages
    assert any(message.startswith("manageMasterPassword:") for message in messages)
    assert all("Hunter2" not in message for message in messages)  # never echo a secret


def test_redshift_without_require_ssl_is_reported() -> None:
    props = {"tags": TAGS, "parameters": [{"name": "require_ssl", "value": "false"}]}
    assert _messages(rules.REDSHIFT_PARAMETER_GROUP[0], props) == [
        "parameters.require_ssl: expected 'true', found 'false'"]


def test_redshift_logging_missing_user_activity_is_reported() -> None:
    props = {"logDestinationType": "cloudwatch", "logExports": ["connectionlog"]}
    assert _names(rules.REDSHIFT_LOGGING[0], props) == {"redshift-audit-logging"}


def test_bucket_with_sse_s3_instead_of_kms_is_reported() -> None:
    props = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    assert _messages(rules.S3_ENCRYPTION[0], props) == [
        "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm: expected aws:kms, found 'AES256'",
        "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId: expected a customer KMS key, found None",
    ]


def test_partially_open_public_access_block_is_reported() -> None:
    props = {"blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True}
    assert _messages(rules.S3_PUBLIC_ACCESS_BLOCK[0], props) == [
        "blockPublicPolicy: expected true, found False", "restrictPublicBuckets: expected true, found None"]


def test_bucket_policy_without_tls_denial_is_reported() -> None:
    allow_only = json.dumps({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:role"}, "Action": "s3:Get*"}})
    assert _names(rules.S3_POLICY[0], {"policy": allow_only}) == {"s3-tls-only"}
    assert _messages(rules.S3_POLICY[0], {"policy": "{not json"}) == [
        "policy: expected a JSON document, found invalid JSON at line 1"]


def test_unversioned_bucket_and_unrotated_key_are_reported() -> None:
    assert _names(rules.S3_VERSIONING[0], {"versioningConfiguration": {"status": "Suspended"}}) == {
        "s3-versioning-enabled"}
    assert "kms-key-rotation" in _names(rules.KMS_KEY[0], {"tags": TAGS, "enableKeyRotation": False})


def test_emr_without_in_transit_encryption_is_reported() -> None:
    document = json.loads(GOOD_EMR_SECURITY["configuration"])
    document["EncryptionConfiguration"]["EnableInTransitEncryption"] = False
    del document["EncryptionConfiguration"]["InTransitEncryptionConfiguration"]
    messages = _messages(rules.EMR_SECURITY_CONFIGURATION[0], {"configuration": json.dumps(document)})
    assert messages == [
        "configuration.EncryptionConfiguration.EnableInTransitEncryption: expected true, found False",
        "configuration.EncryptionConfiguration.InTransitEncryptionConfiguration.TLSCertificateConfiguration: "
        "expected a certificate provider, found None",
    ]


def test_emr_cluster_with_ssh_key_and_no_logs_is_reported() -> None:
    props = {"tags": TAGS, "securityConfiguration": "sec", "ec2Attributes": {"subnetId": "s", "keyName": "ops"}}
    assert _messages(rules.EMR_CLUSTER[0], props) == [
        "logUri: expected an S3 log location, found None",
        "ec2Attributes.keyName: expected no SSH key pair, found 'ops'",
    ]


@pytest.mark.parametrize(("resource_type", "props"), [
    (rules.SECURITY_GROUP_INGRESS_RULE[0], {"tags": TAGS, "cidrIpv4": "0.0.0.0/0", "fromPort": 5439}),
    (rules.SECURITY_GROUP_INGRESS_RULE[0], {"tags": TAGS, "cidrIpv6": "::/0", "fromPort": 9098}),
    (rules.SECURITY_GROUP_RULE[0], {"type": "ingress", "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}),
    (rules.SECURITY_GROUP[0], {"tags": TAGS, "ingress": [{"fromPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]}),
])
def test_ingress_from_anywhere_is_reported(resource_type: str, props: dict[str, Any]) -> None:
    assert _names(resource_type, props) == {"no-public-ingress"}


def test_egress_rule_to_anywhere_is_not_an_ingress_violation() -> None:
    assert resource_violations(rules.SECURITY_GROUP_RULE[0], {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]}) == []


def test_subnet_assigning_public_ips_is_reported() -> None:
    assert "subnet-no-public-ip" in _names(rules.SUBNET[0], {"tags": TAGS, "mapPublicIpOnLaunch": True})


def test_untagged_or_declassified_taggable_resource_is_reported() -> None:
    assert _messages("aws:sqs/queue:Queue", {"tags": {"data-classification": "public", "owner": "x"}}) == [
        "tags.data-classification: expected 'phi', found 'public'",
        "tags.environment: expected dev, staging or prod, found None",
    ]
    assert resource_violations("aws:s3/bucketPolicy:BucketPolicy", {"policy": TLS_POLICY}) == []  # not taggable


def test_unencrypted_log_group_and_amp_workspace_are_reported() -> None:
    assert _names(rules.LOG_GROUP[0], {"tags": TAGS}) == {"log-group-encrypted-retained"}
    assert _names(rules.AMP_WORKSPACE[0], {"tags": TAGS}) == {"amp-workspace-encrypted"}


def test_bucket_missing_a_companion_is_reported_by_the_stack_rule() -> None:
    resources = [
        StackResource(rules.S3_BUCKET[0], "raw", {"bucket": "raw-1"}),
        StackResource(rules.S3_ENCRYPTION[0], "raw-encryption", {"bucket": "raw-1"}),
        StackResource(rules.S3_VERSIONING[0], "raw-versioning", {"bucket": "raw-1"}),
        StackResource(rules.S3_POLICY[0], "raw-policy", {"bucket": "raw-1"}),
    ]
    assert rules.check_bucket_baselines(resources) == ["bucket raw: expected a public access block, found none"]


def test_redshift_cluster_without_logging_is_reported_by_the_stack_rule() -> None:
    resources = [StackResource(rules.REDSHIFT_CLUSTER[0], "wh", {"clusterIdentifier": "claims-dev-warehouse"})]
    assert rules.check_redshift_audit_logged(resources) == [
        "redshift cluster wh: expected audit logging (aws.redshift.Logging), found none"]


def test_pack_has_one_mandatory_policy_per_rule_and_reports_through_the_sdk_callback() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [r.name for r in RESOURCE_RULES] + [name for name, _, _ in STACK_RULES]
    msk_policy = next(p for p in policies if p.name == "msk-encryption")
    assert isinstance(msk_policy, ResourceValidationPolicy)
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    # The SDK hands rules its unknown-checking proxy (Mapping/Sequence, not dict/list); use the same here.
    props = unknown_checking_proxy({**GOOD_MSK, "encryptionInfo": {}})
    args = ResourceValidationArgs(resource_type=rules.MSK_CLUSTER[0], props=props,
                                  urn="urn:pulumi:dev::medical-claims::aws:msk/cluster:Cluster::k", name="k",
                                  opts=None, provider=None)  # type: ignore[arg-type]
    msk_policy.validate(args, report)
    assert reported[0] == "encryptionInfo.encryptionAtRestKmsKeyArn: expected a customer KMS key, found None"
    args.resource_type = rules.REDSHIFT_CLUSTER[0]
    reported.clear()
    msk_policy.validate(args, report)
    assert reported == []  # the rule ignores other resource types


def test_unknown_preview_values_surface_as_the_sdk_unknown_error_not_as_violations() -> None:
    props = unknown_checking_proxy({**GOOD_REDSHIFT, "kmsKeyId": UNKNOWN_STRING_VALUE})
    with pytest.raises(UnknownValueError):
        resource_violations(rules.REDSHIFT_CLUSTER[0], props)
