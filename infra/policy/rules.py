"""HIPAA guardrails as plain functions over resource properties (camelCase, as the Pulumi engine sees them).

Why plain functions: the same checks run in three places - the pulumi-policy pack at `pulumi preview/up`
(`pulumi up --policy-pack infra/policy`), the unit tests with synthetic properties, and the Pulumi-mock tests over
every resource the program registers. A check returns violation messages ("<property path>: expected ..., found ...")
and never raises on a well-formed resource. During preview some properties are unknown; reading one raises the
policy SDK's UnknownValueError, which the SDK handles by skipping the check for that resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.tags import PHI_CLASSIFICATION, is_taggable_type

Props = Mapping[str, Any]
ResourceCheck = Callable[[str, Props], list[str]]

S3_BUCKET = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
S3_PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
S3_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
S3_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
KMS_KEY = ("aws:kms/key:Key",)
MSK_CLUSTER = ("aws:msk/cluster:Cluster",)
REDSHIFT_CLUSTER = ("aws:redshift/cluster:Cluster",)
REDSHIFT_PARAMETER_GROUP = ("aws:redshift/parameterGroup:ParameterGroup",)
REDSHIFT_LOGGING = ("aws:redshift/logging:Logging",)
EMR_SECURITY_CONFIGURATION = ("aws:emr/securityConfiguration:SecurityConfiguration",)
EMR_CLUSTER = ("aws:emr/cluster:Cluster",)
SUBNET = ("aws:ec2/subnet:Subnet",)
SECURITY_GROUP = ("aws:ec2/securityGroup:SecurityGroup",)
SECURITY_GROUP_RULE = ("aws:ec2/securityGroupRule:SecurityGroupRule",)
SECURITY_GROUP_INGRESS_RULE = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",)
LOG_GROUP = ("aws:cloudwatch/logGroup:LogGroup",)
AMP_WORKSPACE = ("aws:amp/workspace:Workspace",)

OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
REDSHIFT_AUDIT_LOGS = ("connectionlog", "userlog", "useractivitylog")
KMS_SSE_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})


@dataclass(frozen=True)
class ResourceRule:
    """One guardrail: which resource types it applies to (None: all) and the check."""

    name: str
    description: str
    resource_types: tuple[str, ...] | None
    check: ResourceCheck

    def applies_to(self, resource_type: str) -> bool:
        """True when the rule checks resources of this type."""
        return self.resource_types is None or resource_type in self.resource_types


def _get(props: Props, path: str) -> Any:
    """Nested property by dotted path; None when any level is missing."""
    value: Any = props
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _items(value: Any) -> list[Any]:
    """A list property as a list (absent -> empty; strings are not lists)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def _is_true(value: Any) -> bool:
    """Booleans travel as bool or as the strings "true"/"false" depending on the provider schema."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _expect(condition: bool, path: str, expected: str, found: Any) -> list[str]:
    return [] if condition else [f"{path}: expected {expected}, found {found!r}"]


def _json(value: Any, path: str) -> tuple[Any, list[str]]:
    if isinstance(value, Mapping):
        return value, []
    if not isinstance(value, str):
        return None, [f"{path}: expected a JSON document, found {type(value).__name__}"]
    try:
        return json.loads(value), []
    except json.JSONDecodeError as error:
        return None, [f"{path}: expected a JSON document, found invalid JSON at line {error.lineno}"]


# --- S3 -----------------------------------------------------------------------------------------------------------

def check_bucket_encryption(_: str, props: Props) -> list[str]:
    """Default encryption is SSE-KMS with a customer key."""
    rules = _items(props.get("rules"))
    if not rules:
        return ["rules: expected at least one server-side encryption rule, found none"]
    problems: list[str] = []
    for index, rule in enumerate(rules):
        default = _get(rule, "applyServerSideEncryptionByDefault") or {}
        algorithm = _get(default, "sseAlgorithm")
        path = f"rules[{index}].applyServerSideEncryptionByDefault"
        problems += _expect(algorithm in KMS_SSE_ALGORITHMS, f"{path}.sseAlgorithm", "aws:kms", algorithm)
        problems += _expect(bool(_get(default, "kmsMasterKeyId")), f"{path}.kmsMasterKeyId", "a customer KMS key",
                            _get(default, "kmsMasterKeyId"))
    return problems


def check_public_access_block(_: str, props: Props) -> list[str]:
    """All four public access switches are on."""
    problems: list[str] = []
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        problems += _expect(_is_true(props.get(flag)), flag, "true", props.get(flag))
    return problems


def _denies_insecure_transport(statement: Any) -> bool:
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, Mapping) and principal.get("AWS") == "*")
    if not everyone:
        return False
    secure_transport = _get(statement, "Condition.Bool.aws:SecureTransport")
    return secure_transport in ("false", False, ["false"])


def check_bucket_policy_tls_only(_: str, props: Props) -> list[str]:
    """The bucket policy denies every request made without TLS (aws:SecureTransport = false)."""
    document, problems = _json(props.get("policy"), "policy")
    if problems:
        return problems
    statements = document.get("Statement") if isinstance(document, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    if any(_denies_insecure_transport(statement) for statement in _items(statements)):
        return []
    return ["policy: expected a Deny statement for Principal '*' with Condition Bool aws:SecureTransport=false, "
            "found none"]


def check_bucket_versioning(_: str, props: Props) -> list[str]:
    """Versioning is enabled (recovery from overwrites and deletes)."""
    status = _get(props, "versioningConfiguration.status")
    return _expect(status == "Enabled", "versioningConfiguration.status", "'Enabled'", status)


# --- KMS, logs, AMP -------------------------------------------------------------------------------------------------

def check_kms_rotation(_: str, props: Props) -> list[str]:
    """Customer keys rotate yearly."""
    return _expect(_is_true(props.get("enableKeyRotation")), "enableKeyRotation", "true",
                   props.get("enableKeyRotation"))


def check_log_group(_: str, props: Props) -> list[str]:
    """Log groups (which may quote PHI-adjacent identifiers) are KMS-encrypted and have a retention period."""
    return (_expect(bool(props.get("kmsKeyId")), "kmsKeyId", "a KMS key", props.get("kmsKeyId"))
            + _expect(bool(props.get("retentionInDays")), "retentionInDays", "a retention period",
                      props.get("retentionInDays")))


def check_amp_workspace(_: str, props: Props) -> list[str]:
    """Metrics (labels can carry payer or provider identifiers) are encrypted with the customer key."""
    return _expect(bool(props.get("kmsKeyArn")), "kmsKeyArn", "a customer KMS key", props.get("kmsKeyArn"))


# --- MSK ------------------------------------------------------------------------------------------------------------

def check_msk_encryption(_: str, props: Props) -> list[str]:
    """At rest with the customer key; TLS between clients and brokers and between brokers."""
    at_rest = _get(props, "encryptionInfo.encryptionAtRestKmsKeyArn")
    client_broker = _get(props, "encryptionInfo.encryptionInTransit.clientBroker")
    in_cluster = _get(props, "encryptionInfo.encryptionInTransit.inCluster")
    return (_expect(bool(at_rest), "encryptionInfo.encryptionAtRestKmsKeyArn", "a customer KMS key", at_rest)
            + _expect(client_broker == "TLS", "encryptionInfo.encryptionInTransit.clientBroker", "'TLS'",
                      client_broker)
            + _expect(_is_true(in_cluster), "encryptionInfo.encryptionInTransit.inCluster", "true", in_cluster))


def check_msk_authentication(_: str, props: Props) -> list[str]:
    """Clients authenticate with IAM; unauthenticated access is off."""
    iam = _get(props, "clientAuthentication.sasl.iam")
    unauthenticated = _get(props, "clientAuthentication.unauthenticated")
    return (_expect(_is_true(iam), "clientAuthentication.sasl.iam", "true", iam)
            + _expect(not _is_true(unauthenticated), "clientAuthentication.unauthenticated", "false",
                      unauthenticated))


def check_msk_private(_: str, props: Props) -> list[str]:
    """No public broker endpoints."""
    access = _get(props, "brokerNodeGroupInfo.connectivityInfo.publicAccess.type")
    return _expect(access in (None, "DISABLED"), "brokerNodeGroupInfo.connectivityInfo.publicAccess.type",
                   "'DISABLED'", access)


def check_msk_broker_logs(_: str, props: Props) -> list[str]:
    """Broker logs are delivered somewhere (CloudWatch, S3 or Firehose)."""
    destinations = ("cloudwatchLogs", "s3", "firehose")
    enabled = [name for name in destinations if _is_true(_get(props, f"loggingInfo.brokerLogs.{name}.enabled"))]
    return _expect(bool(enabled), "loggingInfo.brokerLogs", "an enabled destination", _get(props, "loggingInfo"))


# --- Redshift -------------------------------------------------------------------------------------------------------

def check_redshift_cluster(_: str, props: Props) -> list[str]:
    """Encrypted with the customer key, private, VPC-routed, no password in Pulumi state."""
    return (_expect(_is_true(props.get("encrypted")), "encrypted", "true", props.get("encrypted"))
            + _expect(bool(props.get("kmsKeyId")), "kmsKeyId", "a customer KMS key", props.get("kmsKeyId"))
            + _expect(props.get("publiclyAccessible") is False, "publiclyAccessible", "false",
                      props.get("publiclyAccessible"))
            + _expect(_is_true(props.get("enhancedVpcRouting")), "enhancedVpcRouting", "true",
                      props.get("enhancedVpcRouting"))
            + _expect(_is_true(props.get("manageMasterPassword")) and not props.get("masterPassword"),
                      "manageMasterPassword", "true (password managed by Secrets Manager, not in state)",
                      props.get("manageMasterPassword")))


def check_redshift_parameters(_: str, props: Props) -> list[str]:
    """Clients must connect with TLS."""
    values = {_get(item, "name"): _get(item, "value") for item in _items(props.get("parameters"))}
    require_ssl = values.get("require_ssl")
    return _expect(_is_true(require_ssl), "parameters.require_ssl", "'true'", require_ssl)


def check_redshift_logging(_: str, props: Props) -> list[str]:
    """Audit logging covers connections, users and user activity."""
    destination = props.get("logDestinationType")
    if destination == "s3":
        return _expect(bool(props.get("bucketName")), "bucketName", "an audit log bucket", props.get("bucketName"))
    if destination != "cloudwatch":
        return [f"logDestinationType: expected 'cloudwatch' or 's3', found {destination!r}"]
    exports = set(_items(props.get("logExports")))
    missing = [log for log in REDSHIFT_AUDIT_LOGS if log not in exports]
    return _expect(not missing, "logExports", f"all of {list(REDSHIFT_AUDIT_LOGS)}", sorted(exports))


# --- EMR, network -----------------------------------------------------------------------------------------------------

def check_emr_security_configuration(_: str, props: Props) -> list[str]:
    """At rest: S3 SSE-KMS and local disks with KMS; in transit: TLS certificates."""
    document, problems = _json(props.get("configuration"), "configuration")
    if problems:
        return problems
    encryption = _get(document, "EncryptionConfiguration") or {}
    base = "configuration.EncryptionConfiguration"
    at_rest = _get(encryption, "AtRestEncryptionConfiguration") or {}
    s3_mode = _get(at_rest, "S3EncryptionConfiguration.EncryptionMode")
    disk_provider = _get(at_rest, "LocalDiskEncryptionConfiguration.EncryptionKeyProviderType")
    certificates = _get(encryption, "InTransitEncryptionConfiguration.TLSCertificateConfiguration")
    return (_expect(_is_true(_get(encryption, "EnableAtRestEncryption")), f"{base}.EnableAtRestEncryption", "true",
                    _get(encryption, "EnableAtRestEncryption"))
            + _expect(s3_mode in ("SSE-KMS", "CSE-KMS"),
                      f"{base}.AtRestEncryptionConfiguration.S3EncryptionConfiguration.EncryptionMode", "SSE-KMS",
                      s3_mode)
            + _expect(disk_provider == "AwsKms", f"{base}.AtRestEncryptionConfiguration."
                      "LocalDiskEncryptionConfiguration.EncryptionKeyProviderType", "AwsKms", disk_provider)
            + _expect(_is_true(_get(encryption, "EnableInTransitEncryption")), f"{base}.EnableInTransitEncryption",
                      "true", _get(encryption, "EnableInTransitEncryption"))
            + _expect(bool(certificates), f"{base}.InTransitEncryptionConfiguration.TLSCertificateConfiguration",
                      "a certificate provider", certificates))


def check_emr_cluster(_: str, props: Props) -> list[str]:
    """Security configuration attached, logs kept, placed in a subnet, no SSH key pair."""
    subnet = _get(props, "ec2Attributes.subnetId") or _items(_get(props, "ec2Attributes.subnetIds"))
    return (_expect(bool(props.get("securityConfiguration")), "securityConfiguration", "a security configuration",
                    props.get("securityConfiguration"))
            + _expect(bool(props.get("logUri")), "logUri", "an S3 log location", props.get("logUri"))
            + _expect(bool(subnet), "ec2Attributes.subnetId", "a (private) subnet", subnet)
            + _expect(not _get(props, "ec2Attributes.keyName"), "ec2Attributes.keyName", "no SSH key pair",
                      _get(props, "ec2Attributes.keyName")))


def check_subnet_private(_: str, props: Props) -> list[str]:
    """Instances never get public IPs."""
    value = props.get("mapPublicIpOnLaunch")
    return _expect(not _is_true(value), "mapPublicIpOnLaunch", "false", value)


def _open_cidrs(values: Iterable[Any]) -> list[str]:
    return sorted(value for value in values if value in OPEN_CIDRS)


def check_no_public_ingress(resource_type: str, props: Props) -> list[str]:
    """No security group admits traffic from anywhere (0.0.0.0/0 or ::/0)."""
    if resource_type in SECURITY_GROUP:
        problems: list[str] = []
        for index, rule in enumerate(_items(props.get("ingress"))):
            cidrs = _items(_get(rule, "cidrBlocks")) + _items(_get(rule, "ipv6CidrBlocks"))
            problems += _expect(not _open_cidrs(cidrs), f"ingress[{index}].cidrBlocks", "no open CIDR", cidrs)
        return problems
    if resource_type in SECURITY_GROUP_RULE:
        if props.get("type") != "ingress":
            return []
        cidrs = _items(props.get("cidrBlocks")) + _items(props.get("ipv6CidrBlocks"))
        return _expect(not _open_cidrs(cidrs), "cidrBlocks", "no open CIDR", cidrs)
    cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6")]
    return _expect(not _open_cidrs(cidrs), "cidrIpv4", "no open CIDR", [cidr for cidr in cidrs if cidr])


# --- tags -----------------------------------------------------------------------------------------------------------

def check_required_tags(resource_type: str, props: Props) -> list[str]:
    """Every taggable AWS resource says it holds PHI, who owns it and which environment it belongs to."""
    if not is_taggable_type(resource_type):
        return []
    tags = props.get("tags")
    tags = tags if isinstance(tags, Mapping) else {}
    return (_expect(tags.get("data-classification") == PHI_CLASSIFICATION, "tags.data-classification",
                    f"'{PHI_CLASSIFICATION}'", tags.get("data-classification"))
            + _expect(bool(tags.get("owner")), "tags.owner", "an owning team", tags.get("owner"))
            + _expect(bool(tags.get("environment")), "tags.environment", "dev, staging or prod",
                      tags.get("environment")))


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule("s3-bucket-sse-kms", "S3 default encryption is SSE-KMS with a customer key.", S3_ENCRYPTION,
                 check_bucket_encryption),
    ResourceRule("s3-public-access-blocked", "S3 public access block has all four switches on.",
                 S3_PUBLIC_ACCESS_BLOCK, check_public_access_block),
    ResourceRule("s3-tls-only", "S3 bucket policies deny requests without TLS.", S3_POLICY,
                 check_bucket_policy_tls_only),
    ResourceRule("s3-versioning-enabled", "S3 buckets are versioned.", S3_VERSIONING, check_bucket_versioning),
    ResourceRule("kms-key-rotation", "KMS keys rotate automatically.", KMS_KEY, check_kms_rotation),
    ResourceRule("log-group-encrypted-retained", "CloudWatch log groups are KMS-encrypted with a retention period.",
                 LOG_GROUP, check_log_group),
    ResourceRule("amp-workspace-encrypted", "Managed Prometheus workspaces use a customer KMS key.", AMP_WORKSPACE,
                 check_amp_workspace),
    ResourceRule("msk-encryption", "MSK encrypts at rest with a customer key and uses TLS in transit.", MSK_CLUSTER,
                 check_msk_encryption),
    ResourceRule("msk-iam-authentication", "MSK clients authenticate with IAM only.", MSK_CLUSTER,
                 check_msk_authentication),
    ResourceRule("msk-no-public-access", "MSK brokers have no public endpoints.", MSK_CLUSTER, check_msk_private),
    ResourceRule("msk-broker-logs", "MSK broker logs are delivered.", MSK_CLUSTER, check_msk_broker_logs),
    ResourceRule("redshift-hardened", "Redshift is encrypted, private, VPC-routed, with a managed admin password.",
                 REDSHIFT_CLUSTER, check_redshift_cluster),
    ResourceRule("redshift-require-ssl", "Redshift parameter groups require TLS.", REDSHIFT_PARAMETER_GROUP,
                 check_redshift_parameters),
    ResourceRule("redshift-audit-logging", "Redshift audit logging covers connections, users and activity.",
                 REDSHIFT_LOGGING, check_redshift_logging),
    ResourceRule("emr-encryption", "EMR security configurations encrypt at rest (KMS) and in transit (TLS).",
                 EMR_SECURITY_CONFIGURATION, check_emr_security_configuration),
    ResourceRule("emr-cluster-hardened", "EMR clusters use a security configuration, keep logs, have no SSH key.",
                 EMR_CLUSTER, check_emr_cluster),
    ResourceRule("subnet-no-public-ip", "Subnets never assign public IPs.", SUBNET, check_subnet_private),
    ResourceRule("no-public-ingress", "No security group admits 0.0.0.0/0 or ::/0.",
                 SECURITY_GROUP + SECURITY_GROUP_RULE + SECURITY_GROUP_INGRESS_RULE, check_no_public_ingress),
    ResourceRule("required-tags", "Taggable resources carry data-classification=phi, owner and environment.", None,
                 check_required_tags),
)


def resource_violations(resource_type: str, props: Props) -> list[tuple[str, str]]:
    """(rule name, message) for every rule the resource breaks."""
    return [(rule.name, message)
            for rule in RESOURCE_RULES if rule.applies_to(resource_type)
            for message in rule.check(resource_type, props)]


# --- stack-wide -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackResource:
    """The part of a deployed resource the stack-wide rules read."""

    resource_type: str
    name: str
    props: Props


def check_bucket_baselines(resources: Sequence[StackResource]) -> list[str]:
    """Each bucket has its encryption, public access block, versioning and TLS-only policy companions.

    The per-resource rules prove each companion is right; this proves none is missing.
    """
    companions = {
        "server-side encryption configuration": S3_ENCRYPTION,
        "public access block": S3_PUBLIC_ACCESS_BLOCK,
        "versioning": S3_VERSIONING,
        "bucket policy": S3_POLICY,
    }
    covered = {kind: {resource.props.get("bucket") for resource in resources if resource.resource_type in types}
               for kind, types in companions.items()}
    problems = []
    for resource in resources:
        if resource.resource_type not in S3_BUCKET:
            continue
        bucket = resource.props.get("bucket")
        problems += [f"bucket {resource.name}: expected a {kind}, found none"
                     for kind, buckets in covered.items() if bucket not in buckets]
    return problems


def check_redshift_audit_logged(resources: Sequence[StackResource]) -> list[str]:
    """Each Redshift cluster has an audit logging resource."""
    logged = {resource.props.get("clusterIdentifier") for resource in resources
              if resource.resource_type in REDSHIFT_LOGGING}
    return [f"redshift cluster {resource.name}: expected audit logging (aws.redshift.Logging), found none"
            for resource in resources
            if resource.resource_type in REDSHIFT_CLUSTER and resource.props.get("clusterIdentifier") not in logged]


STACK_RULES: tuple[tuple[str, str, Callable[[Sequence[StackResource]], list[str]]], ...] = (
    ("s3-bucket-baseline-complete", "Every bucket has encryption, public access block, versioning and TLS policy.",
     check_bucket_baselines),
    ("redshift-audit-logging-present", "Every Redshift cluster has audit logging.", check_redshift_audit_logged),
)
