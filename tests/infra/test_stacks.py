"""The Pulumi program for dev, staging and prod under mocks: what gets created, the app_config contract, sizing
by config, and the HIPAA controls (encryption at rest and in transit, nothing public, audit logs, tags)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.outputs import TOP_LEVEL_OUTPUTS
from infra.policy.rules import STACK_RULES, StackResource, resource_violations
from infra.tags import is_taggable_type
from libs.settings import Environment, KafkaSecurityProtocol, KeyProviderKind, Settings, WarehouseKind
from tests.infra.mocks import REPO_ROOT, StackRun, run_program

BUCKET = "aws:s3/bucket:Bucket"
MSK = "aws:msk/cluster:Cluster"
EMR = "aws:emr/cluster:Cluster"
REDSHIFT = "aws:redshift/cluster:Cluster"
KMS_KEY = "aws:kms/key:Key"


def _yaml_section(stack: str, section: str) -> dict[str, Any]:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    return config[f"medical-claims:{section}"]


def _kms_key_arn(run: StackRun) -> str:
    return run.one(KMS_KEY).state["arn"]


def _by_bucket(run: StackRun, type_token: str) -> dict[str, dict[str, Any]]:
    return {resource.inputs["bucket"]: resource.inputs for resource in run.of_type(type_token)}


def _size_rank(instance_type: str) -> int:
    """Relative size of an EC2/MSK/Redshift instance by its size suffix (t3.small < m7g.large < m7g.xlarge ...)."""
    size = instance_type.rsplit(".", 1)[-1]
    named = {"small": 1, "medium": 2, "large": 3, "xlplus": 5, "xlarge": 4}
    if size in named:
        return named[size]
    return 4 * int(size.removesuffix("xlarge"))  # 2xlarge -> 8, 4xlarge -> 16


# --- what the program creates -------------------------------------------------------------------------------------

def test_every_stack_creates_msk_emr_redshift_and_the_lake_buckets(stack_run: StackRun) -> None:
    assert len(stack_run.of_type(MSK)) == 1
    assert len(stack_run.of_type(EMR)) == 1
    assert len(stack_run.of_type(REDSHIFT)) == 1
    roles = sorted(bucket.inputs["tags"]["lake-role"] for bucket in stack_run.of_type(BUCKET))
    assert roles == ["artifact", "checkpoint", "processed", "raw"]
    assert len(stack_run.of_type("aws:amp/workspace:Workspace")) == 1


def test_components_parent_their_children_with_the_documented_type_tokens(stack_run: StackRun) -> None:
    components = {resource.type for resource in stack_run.resources if resource.type.startswith("claims:")}
    # The API runs on the monitoring Kubernetes cluster, so only stacks that have one deploy it.
    api = {"claims:api:ApiService"} if _yaml_section(stack_run.stack, "api")["enabled"] else set()
    assert components == {"claims:datalake:DataLake", "claims:network:Network", "claims:kafka:KafkaCluster",
                          "claims:spark:SparkCluster", "claims:warehouse:Warehouse", "claims:monitoring:Monitoring",
                          *api}


# --- outputs ----------------------------------------------------------------------------------------------------

def test_app_config_validates_against_the_apps_settings_model(stack_run: StackRun,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMS_CONFIG", raising=False)
    settings = Settings(**stack_run.outputs["app_config"])
    assert settings.environment is Environment(stack_run.stack)
    assert settings.security.environment is Environment(stack_run.stack)
    assert settings.kafka.security_protocol is KafkaSecurityProtocol.SASL_SSL
    assert settings.kafka.sasl_mechanism == "OAUTHBEARER"
    assert settings.kafka.bootstrap_servers == stack_run.outputs["msk_bootstrap_brokers"]
    assert settings.warehouse.kind is WarehouseKind.REDSHIFT
    assert settings.warehouse.redshift_secret_arn == stack_run.outputs["redshift_secret_arn"]
    assert settings.security.key_provider is KeyProviderKind.KMS
    assert settings.security.kms_key_id == stack_run.outputs["kms_key_arn"]
    assert settings.spark.master == "yarn"
    assert settings.lake.root == f"s3a://{settings.lake.processed_bucket}/lake"
    assert settings.lake.checkpoint_root == f"s3a://{stack_run.outputs['checkpoint_bucket']}/checkpoints"
    assert settings.monitoring.remote_write_url
    assert settings.monitoring.remote_write_url.endswith("/api/v1/remote_write")
    assert settings.aws.artifact_bucket == stack_run.outputs["artifact_bucket"]


def test_top_level_outputs_read_by_the_deploy_tooling_exist_with_values(stack_run: StackRun) -> None:
    for name in TOP_LEVEL_OUTPUTS:
        assert stack_run.outputs.get(name), f"output {name} missing or empty"
    assert stack_run.outputs["environment"] == stack_run.stack
    assert stack_run.outputs["region"] == "us-east-1"
    assert stack_run.outputs["emr_cluster_id"].startswith("j-")
    assert stack_run.outputs["redshift_cluster_identifier"] == f"claims-{stack_run.stack}-warehouse"


# --- sizing comes from config -----------------------------------------------------------------------------------

def test_cluster_sizes_are_exactly_the_stack_config(stack_run: StackRun) -> None:
    kafka, emr, redshift = (_yaml_section(stack_run.stack, name) for name in ("kafka", "emr", "redshift"))
    msk = stack_run.one(MSK).inputs
    assert msk["numberOfBrokerNodes"] == kafka["brokerCount"]
    assert msk["brokerNodeGroupInfo"]["instanceType"] == kafka["instanceType"]
    assert msk["brokerNodeGroupInfo"]["storageInfo"]["ebsStorageInfo"]["volumeSize"] == kafka["ebsVolumeGb"]
    assert msk["kafkaVersion"] == kafka["version"]
    cluster = stack_run.one(EMR).inputs
    assert cluster["coreInstanceGroup"]["instanceType"] == emr["coreInstanceType"]
    assert cluster["coreInstanceGroup"]["instanceCount"] == emr["coreMin"]
    assert cluster["releaseLabel"] == emr["releaseLabel"]
    limits = stack_run.one("aws:emr/managedScalingPolicy:ManagedScalingPolicy").inputs["computeLimits"][0]
    assert limits["minimumCapacityUnits"] == emr["coreMin"]
    assert limits["maximumCoreCapacityUnits"] == emr["coreMax"]
    assert limits["maximumCapacityUnits"] == emr["coreMax"] + emr.get("taskMax", 0)
    warehouse = stack_run.one(REDSHIFT).inputs
    assert warehouse["nodeType"] == redshift["nodeType"]
    assert warehouse["numberOfNodes"] == redshift["nodeCount"]
    assert warehouse["clusterType"] == ("single-node" if redshift["nodeCount"] == 1 else "multi-node")


def test_prod_has_more_and_larger_brokers_core_nodes_and_warehouse_nodes_than_dev(
        stack_runs: dict[str, StackRun]) -> None:
    dev, prod = stack_runs["dev"], stack_runs["prod"]
    dev_msk, prod_msk = dev.one(MSK).inputs, prod.one(MSK).inputs
    assert prod_msk["numberOfBrokerNodes"] > dev_msk["numberOfBrokerNodes"]
    assert (_size_rank(prod_msk["brokerNodeGroupInfo"]["instanceType"])
            > _size_rank(dev_msk["brokerNodeGroupInfo"]["instanceType"]))
    scaling = "aws:emr/managedScalingPolicy:ManagedScalingPolicy"
    dev_limits, prod_limits = (run.one(scaling).inputs["computeLimits"][0] for run in (dev, prod))
    assert prod_limits["minimumCapacityUnits"] > dev_limits["minimumCapacityUnits"]
    assert prod_limits["maximumCoreCapacityUnits"] > dev_limits["maximumCoreCapacityUnits"]
    assert (_size_rank(prod.one(EMR).inputs["coreInstanceGroup"]["instanceType"])
            > _size_rank(dev.one(EMR).inputs["coreInstanceGroup"]["instanceType"]))
    dev_rs, prod_rs = dev.one(REDSHIFT).inputs, prod.one(REDSHIFT).inputs
    assert prod_rs["numberOfNodes"] > dev_rs["numberOfNodes"]
    assert _size_rank(prod_rs["nodeType"]) > _size_rank(dev_rs["nodeType"])


# --- HIPAA: encryption at rest ------------------------------------------------------------------------------------

def test_lake_key_rotates(stack_run: StackRun) -> None:
    assert stack_run.one(KMS_KEY).inputs["enableKeyRotation"] is True


def test_every_bucket_defaults_to_sse_kms_with_the_lake_key(stack_run: StackRun) -> None:
    encryption = _by_bucket(stack_run, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                       "BucketServerSideEncryptionConfiguration")
    for bucket in stack_run.of_type(BUCKET):
        rule = encryption[bucket.state["bucket"]]["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                              "kmsMasterKeyId": _kms_key_arn(stack_run)}


def test_msk_encrypts_at_rest_with_the_lake_key_and_in_transit_with_tls(stack_run: StackRun) -> None:
    encryption = stack_run.one(MSK).inputs["encryptionInfo"]
    assert encryption["encryptionAtRestKmsKeyArn"] == _kms_key_arn(stack_run)
    assert encryption["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}


def test_redshift_is_encrypted_with_the_lake_key_and_requires_ssl(stack_run: StackRun) -> None:
    cluster = stack_run.one(REDSHIFT).inputs
    assert cluster["encrypted"] == "true"
    assert cluster["kmsKeyId"] == _kms_key_arn(stack_run)
    assert cluster["manageMasterPassword"] is True
    assert "masterPassword" not in cluster
    parameters = stack_run.one("aws:redshift/parameterGroup:ParameterGroup")
    assert {"name": "require_ssl", "value": "true"} in parameters.inputs["parameters"]
    assert cluster["clusterParameterGroupName"] == parameters.state["name"]


def test_emr_security_configuration_encrypts_at_rest_and_in_transit(stack_run: StackRun) -> None:
    security = stack_run.one("aws:emr/securityConfiguration:SecurityConfiguration")
    encryption = json.loads(security.inputs["configuration"])["EncryptionConfiguration"]
    at_rest = encryption["AtRestEncryptionConfiguration"]
    assert encryption["EnableAtRestEncryption"] is True
    assert at_rest["S3EncryptionConfiguration"] == {"EncryptionMode": "SSE-KMS", "AwsKmsKey": _kms_key_arn(stack_run)}
    assert at_rest["LocalDiskEncryptionConfiguration"]["EncryptionKeyProviderType"] == "AwsKms"
    assert at_rest["LocalDiskEncryptionConfiguration"]["EnableEbsEncryption"] is True
    assert encryption["EnableInTransitEncryption"] is True
    tls = encryption["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]
    assert tls["CertificateProviderType"] == "PEM"
    assert tls["S3Object"] == f"s3://{stack_run.outputs['artifact_bucket']}/security/emr-in-transit-certificates.zip"
    assert stack_run.one(EMR).inputs["securityConfiguration"] == security.state["name"]


def test_every_log_group_is_kms_encrypted_with_retention(stack_run: StackRun) -> None:
    for group in stack_run.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["kmsKeyId"] == _kms_key_arn(stack_run), group.name
        assert group.inputs["retentionInDays"] > 0, group.name


# --- HIPAA: TLS in transit ------------------------------------------------------------------------------------------

def test_every_bucket_policy_denies_requests_without_tls(stack_run: StackRun) -> None:
    policies = _by_bucket(stack_run, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket in stack_run.of_type(BUCKET):
        statements = json.loads(policies[bucket.state["bucket"]]["policy"])["Statement"]
        deny = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
        assert deny["Effect"] == "Deny"
        assert deny["Principal"] == "*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert bucket.state["arn"] in deny["Resource"]


def test_msk_clients_authenticate_with_iam_only(stack_run: StackRun) -> None:
    authentication = stack_run.one(MSK).inputs["clientAuthentication"]
    assert authentication == {"sasl": {"iam": True}, "unauthenticated": False}


def test_msk_server_properties_are_durable_and_disable_topic_auto_creation(stack_run: StackRun) -> None:
    properties = stack_run.one("aws:msk/configuration:Configuration").inputs["serverProperties"].splitlines()
    for line in ("min.insync.replicas=2", "default.replication.factor=3", "auto.create.topics.enable=false"):
        assert line in properties


# --- HIPAA: nothing publicly reachable -------------------------------------------------------------------------------

def test_buckets_block_all_public_access(stack_run: StackRun) -> None:
    blocks = _by_bucket(stack_run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for bucket in stack_run.of_type(BUCKET):
        block = blocks[bucket.state["bucket"]]
        assert all(block[flag] is True for flag in
                   ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


def test_redshift_and_msk_have_no_public_endpoint(stack_run: StackRun) -> None:
    cluster = stack_run.one(REDSHIFT).inputs
    assert cluster["publiclyAccessible"] is False
    assert cluster["enhancedVpcRouting"] is True
    msk = stack_run.one(MSK).inputs
    assert msk["brokerNodeGroupInfo"]["connectivityInfo"]["publicAccess"]["type"] == "DISABLED"


def test_emr_runs_in_a_private_subnet_without_public_ips(stack_run: StackRun) -> None:
    subnets = {f"{subnet.name}-id": subnet.inputs for subnet in stack_run.of_type("aws:ec2/subnet:Subnet")}
    attributes = stack_run.one(EMR).inputs["ec2Attributes"]
    assert attributes["subnetId"] in subnets
    assert all(subnet["mapPublicIpOnLaunch"] is False for subnet in subnets.values())
    assert "keyName" not in attributes
    # No path to or from the internet exists at all.
    for internet_type in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway",
                          "aws:ec2/eip:Eip", "aws:ec2/route:Route"):
        assert not stack_run.of_type(internet_type)


def test_no_security_group_admits_the_internet(stack_run: StackRun) -> None:
    for group in stack_run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress"), group.name
    for rule in stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert "cidrIpv4" not in rule.inputs, rule.name
        assert "cidrIpv6" not in rule.inputs, rule.name
        assert rule.inputs["referencedSecurityGroupId"], rule.name
    assert not stack_run.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")


def test_msk_and_redshift_admit_only_the_emr_nodes_on_their_port(stack_run: StackRun) -> None:
    prefix = f"claims-{stack_run.stack}-net"
    ingress = {(rule.inputs["securityGroupId"], rule.inputs["referencedSecurityGroupId"], rule.inputs["fromPort"])
               for rule in stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    emr_client = f"{prefix}-emr-client-sg-id"
    msk_ingress = {(peer, port) for group, peer, port in ingress if group == f"{prefix}-msk-sg-id"}
    redshift_ingress = {(peer, port) for group, peer, port in ingress if group == f"{prefix}-redshift-sg-id"}
    assert msk_ingress == {(emr_client, 9098), (f"{prefix}-msk-sg-id", 9098)}
    assert redshift_ingress == {(emr_client, 5439)}
    assert stack_run.one(MSK).inputs["brokerNodeGroupInfo"]["securityGroups"] == [f"{prefix}-msk-sg-id"]
    assert stack_run.one(REDSHIFT).inputs["vpcSecurityGroupIds"] == [f"{prefix}-redshift-sg-id"]


def test_vpc_has_an_s3_gateway_endpoint_and_spans_at_least_two_zones(stack_run: StackRun) -> None:
    endpoints = stack_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    gateway = [e.inputs for e in endpoints if e.inputs["vpcEndpointType"] == "Gateway"]
    assert [g["serviceName"] for g in gateway] == ["com.amazonaws.us-east-1.s3"]
    zones = {subnet.inputs["availabilityZone"] for subnet in stack_run.of_type("aws:ec2/subnet:Subnet")}
    assert len(zones) >= 2


# --- HIPAA: audit -----------------------------------------------------------------------------------------------------

def test_audit_and_broker_logs_are_on(stack_run: StackRun) -> None:
    logging = stack_run.one("aws:redshift/logging:Logging").inputs
    assert logging["logDestinationType"] == "cloudwatch"
    assert set(logging["logExports"]) == {"connectionlog", "userlog", "useractivitylog"}
    broker_logs = stack_run.one(MSK).inputs["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]
    assert broker_logs["enabled"] is True
    assert broker_logs["logGroup"]
    assert stack_run.one(EMR).inputs["logUri"] == f"s3://{stack_run.outputs['artifact_bucket']}/logs/emr/"
    assert stack_run.one("aws:ec2/flowLog:FlowLog").inputs["trafficType"] == "ALL"


def test_every_taggable_resource_is_tagged_phi_owner_environment(stack_run: StackRun) -> None:
    taggable = [resource for resource in stack_run.resources if is_taggable_type(resource.type)]
    assert len(taggable) > 40
    for resource in taggable:
        tags = resource.inputs.get("tags", {})
        assert tags.get("data-classification") == "phi", resource.name
        assert tags.get("owner") == "claims-platform", resource.name
        assert tags.get("environment") == stack_run.stack, resource.name


def test_the_policy_pack_finds_no_violation_in_any_stack(stack_run: StackRun) -> None:
    violations = [(resource.name, *violation) for resource in stack_run.resources
                  for violation in resource_violations(resource.type, resource.inputs)]
    assert violations == []
    resources = [StackResource(resource.type, resource.name, resource.state) for resource in stack_run.resources]
    for name, _, check in STACK_RULES:
        assert check(resources) == [], name


# --- lake lifecycle, monitoring ---------------------------------------------------------------------------------

def test_raw_bucket_ages_into_cheaper_storage_and_old_versions_expire(stack_run: StackRun) -> None:
    lake = _yaml_section(stack_run.stack, "lake")
    raw = next(b for b in stack_run.of_type(BUCKET) if b.inputs["tags"]["lake-role"] == "raw")
    rules = _by_bucket(stack_run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    by_id = {rule["id"]: rule for rule in rules[raw.state["bucket"]]["rules"]}
    assert by_id["raw-to-cheaper-storage"]["transitions"] == [
        {"days": lake.get("rawInfrequentAccessDays", 30), "storageClass": "STANDARD_IA"},
        {"days": lake.get("rawGlacierDays", 180), "storageClass": "GLACIER_IR"},
    ]
    expiry = by_id["expire-noncurrent-versions-and-abandoned-uploads"]["noncurrentVersionExpiration"]
    assert expiry["noncurrentDays"] == lake["noncurrentVersionDays"]


def test_prometheus_rules_are_loaded_into_the_managed_prometheus_workspace(stack_run: StackRun) -> None:
    namespace = stack_run.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs
    assert yaml.safe_load(namespace["data"])["groups"]
    assert stack_run.one("aws:amp/workspace:Workspace").inputs["kmsKeyArn"] == _kms_key_arn(stack_run)


def test_kubernetes_prometheus_and_grafana_follow_the_stack_config(stack_run: StackRun) -> None:
    kubernetes = _yaml_section(stack_run.stack, "monitoring")["kubernetes"]
    releases = stack_run.of_type("kubernetes:helm.sh/v3:Release")
    providers = stack_run.of_type("pulumi:providers:kubernetes")
    # The API's own ConfigMap (its app_config) lives on the same cluster; every other one is a dashboard.
    dashboards = [m for m in stack_run.of_type("kubernetes:core/v1:ConfigMap") if not m.name.endswith("-api-config")]
    if not kubernetes["enabled"]:
        assert (releases, providers, dashboards) == ([], [], [])
        return
    assert providers[0].inputs["context"] == kubernetes["context"]
    values = releases[0].inputs["values"]
    remote_write = values["prometheus"]["prometheusSpec"]["remoteWrite"][0]["url"]
    assert remote_write == stack_run.outputs["app_config"]["monitoring"]["remote_write_url"]
    assert dashboards
    assert all(d.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"} for d in dashboards)


@pytest.mark.skipif(not (REPO_ROOT / "configs" / "monitoring" / "prometheus-rules.yaml").is_file(),
                    reason="infra/__main__.py loads configs/monitoring/prometheus-rules.yaml, not written yet")
def test_pulumi_entry_point_exports_every_output() -> None:
    run = run_program("dev", via_entry_point=True)
    assert set(TOP_LEVEL_OUTPUTS) <= set(run.outputs)
    assert run.outputs["environment"] == "dev"


def test_emr_bootstraps_python_and_pinned_dependencies_from_the_codeartifact_mirror(stack_run: StackRun) -> None:
    bucket = stack_run.outputs["artifact_bucket"]
    action = stack_run.one(EMR).inputs["bootstrapActions"][0]
    assert action["path"] == f"s3://{bucket}/bootstrap/install-claims-runtime.sh"
    repository = stack_run.one("aws:codeartifact/repository:Repository").inputs
    assert action["args"][:2] == [f"s3://{bucket}/bootstrap/requirements.txt",
                                  f"s3://{bucket}/bootstrap/constraints.txt"]
    assert action["args"][4] == repository["repository"]
    assert repository["externalConnections"] == {"externalConnectionName": "public:pypi"}
    objects = {o.inputs["key"]: o.inputs for o in stack_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    assert {"bootstrap/install-claims-runtime.sh", "bootstrap/requirements.txt",
            "bootstrap/constraints.txt"} <= set(objects)  # the agent's objects: tests/infra/test_prometheus_agent.py
    assert all(o["serverSideEncryption"] == "aws:kms" and o["bucket"] == bucket for o in objects.values())
    assert "pyspark" not in objects["bootstrap/requirements.txt"]["content"]
    endpoints = {e.inputs["serviceName"] for e in stack_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    codeartifact = {"com.amazonaws.us-east-1.codeartifact.api", "com.amazonaws.us-east-1.codeartifact.repositories"}
    assert codeartifact <= endpoints
    configurations = json.loads(stack_run.one(EMR).inputs["configurationsJson"])
    assert configurations[0]["Properties"]["spark.pyspark.python"] == "/usr/bin/python3.11"
