"""Component arguments fail early naming the bad field; the pure helpers behind the components."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from infra.config import EmrConfig
from infra.data_lake import DataLakeArgs
from infra.emr_bootstrap import runtime_requirements
from infra.iam_documents import (
    deny_insecure_transport_policy,
    emr_instance_policy,
    kms_key_policy,
    msk_resource_arns,
    redshift_copy_policy,
)
from infra.kafka_cluster import SERVER_PROPERTIES, KafkaClusterArgs, render_server_properties
from infra.monitoring import (
    MonitoringArgs,
    MonitoringAssetError,
    MonitoringAssets,
    configmap_name,
    load_monitoring_assets,
)
from infra.network import NetworkArgs
from infra.outputs import ResolvedStack, render_app_config
from infra.spark_cluster import SparkClusterArgs, security_configuration
from infra.tags import is_taggable_type, merge_tags
from infra.warehouse import WarehouseArgs
from tests.infra.mocks import REPO_ROOT

MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/claims-dev-kafka/0a1b-uuid-1"
RULES = "groups:\n  - name: claims\n    rules:\n      - alert: Lag\n        expr: vector(1)\n"


def _spark_args(**changes: object) -> SparkClusterArgs:
    base: dict[str, object] = {
        "subnet_id": "subnet-1", "primary_security_group_id": "sg-p", "core_security_group_id": "sg-c",
        "service_access_security_group_id": "sg-s", "client_security_group_id": "sg-x", "kms_key_arn": "k",
        "lake_bucket_arns": ["arn:aws:s3:::raw"], "artifact_bucket": "art", "artifact_bucket_arn": "arn:aws:s3:::art",
        "msk_cluster_arn": MSK_ARN, "redshift_secret_arn": "s", "amp_workspace_arn": "w", "account_id": "1",
        "region": "us-east-1", "runtime_requirements": "orjson==3.13.0\n", "constraints": "orjson==3.13.0\n",
    }
    return SparkClusterArgs(**{**base, **changes})  # type: ignore[arg-type]


# --- early validation naming the field ------------------------------------------------------------------------------

def test_kafka_args_reject_brokers_not_spread_evenly_over_subnets() -> None:
    with pytest.raises(ValueError, match=r"KafkaClusterArgs\.broker_count: expected a multiple of the 3 client"):
        KafkaClusterArgs(subnet_ids=["a", "b", "c"], security_group_ids=["sg"], kms_key_arn="k", broker_count=4)


def test_kafka_args_reject_non_msk_instance_type() -> None:
    with pytest.raises(ValueError, match=r"KafkaClusterArgs\.instance_type"):
        KafkaClusterArgs(subnet_ids=["a", "b", "c"], security_group_ids=["sg"], kms_key_arn="k",
                         instance_type="m7g.large")


def test_network_args_need_two_zones_and_carve_distinct_subnets_inside_the_vpc() -> None:
    with pytest.raises(ValueError, match=r"NetworkArgs\.availability_zones"):
        NetworkArgs(availability_zones=["us-east-1a"], region="us-east-1", kms_key_arn="k")
    args = NetworkArgs(availability_zones=["a", "b", "c"], region="us-east-1", kms_key_arn="k",
                       cidr_block="10.40.0.0/16")
    cidrs = [ipaddress.ip_network(cidr) for cidr in args.subnet_cidrs()]
    assert len(set(cidrs)) == 3
    vpc = ipaddress.IPv4Network("10.40.0.0/16")
    assert all(ipaddress.IPv4Network(cidr).subnet_of(vpc) for cidr in cidrs)


def test_warehouse_args_reject_bad_identifier_and_pick_cluster_type_from_node_count() -> None:
    common = {"subnet_ids": ["a"], "security_group_ids": ["sg"], "kms_key_arn": "k", "processed_bucket_arn": "p"}
    with pytest.raises(ValueError, match=r"WarehouseArgs\.cluster_identifier"):
        WarehouseArgs(cluster_identifier="Claims_Dev", **common)  # type: ignore[arg-type]
    assert WarehouseArgs(cluster_identifier="c", node_count=1, **common).cluster_type == "single-node"  # type: ignore[arg-type]
    assert WarehouseArgs(cluster_identifier="c", node_count=4, **common).cluster_type == "multi-node"  # type: ignore[arg-type]


def test_spark_args_reject_releases_outside_the_releases_file_and_inverted_bounds() -> None:
    # emr-7.x is a real release, but it ships Spark 3.5, not the Spark the jobs are tested on.
    with pytest.raises(ValueError, match=r"SparkClusterArgs\.release_label: expected an EMR release listed in "
                                         r"configs/spark/emr-releases\.json \(.+\), found 'emr-7\.9\.0'"):
        _spark_args(release_label="emr-7.9.0")
    with pytest.raises(ValueError, match=r"SparkClusterArgs\.core_max"):
        _spark_args(core_min=5, core_max=2)


def test_spark_certificates_resolve_against_the_artifact_bucket_unless_a_full_uri() -> None:
    assert _spark_args().certificates_uri("art") == "s3://art/security/emr-in-transit-certificates.zip"
    assert _spark_args(tls_certificates="s3://pki/emr.zip").certificates_uri("art") == "s3://pki/emr.zip"


def test_data_lake_args_reject_glacier_before_infrequent_access_minimum() -> None:
    with pytest.raises(ValueError, match=r"DataLakeArgs\.raw_glacier_days"):
        DataLakeArgs(account_id="1", partition="aws", region="us-east-1", raw_glacier_days=40)


def test_monitoring_args_reject_rules_without_groups() -> None:
    with pytest.raises(MonitoringAssetError, match=r"MonitoringArgs\.assets\.rule_groups_yaml: expected a top-level"):
        MonitoringArgs(region="us-east-1", kms_key_arn="k", assets=MonitoringAssets("alerts: []\n"))


# --- pure helpers ---------------------------------------------------------------------------------------------

def test_server_properties_render_one_sorted_line_per_key() -> None:
    text = render_server_properties(SERVER_PROPERTIES)
    assert text.splitlines() == sorted(f"{k}={v}" for k, v in SERVER_PROPERTIES.items())


def test_security_configuration_names_the_key_and_certificates() -> None:
    document = security_configuration(kms_key_arn="arn:key", certificates_s3_uri="s3://b/c.zip")
    encryption = document["EncryptionConfiguration"]
    assert encryption["AtRestEncryptionConfiguration"]["LocalDiskEncryptionConfiguration"]["AwsKmsKey"] == "arn:key"
    assert encryption["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]["S3Object"] == "s3://b/c.zip"
    assert document["InstanceMetadataServiceConfiguration"]["MinimumInstanceMetadataServiceVersion"] == 2


def test_emr_instance_policy_is_scoped_to_named_resources() -> None:
    document = emr_instance_policy(
        lake_bucket_arns=["arn:aws:s3:::raw", "arn:aws:s3:::processed"], artifact_bucket_arn="arn:aws:s3:::art",
        log_prefix="logs/emr/", kms_key_arn="arn:key", msk_cluster_arn=MSK_ARN, redshift_secret_arn="arn:secret",
        amp_workspace_arn="arn:ws", codeartifact_domain_arn="arn:domain", codeartifact_repository_arn="arn:repo")
    for statement in document["Statement"]:
        assert all(not action.endswith(":*") for action in statement["Action"]), statement["Sid"]
        if statement["Sid"] == "CodeArtifactBearerToken":
            assert statement["Condition"] == {"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}}
        elif statement["Sid"] != "RedshiftDataApi":  # the Data API has no resource-level permissions
            assert "*" not in statement["Resource"], statement["Sid"]
    writes = next(s for s in document["Statement"] if s["Sid"] == "ReadWriteLakeObjects")
    assert writes["Resource"] == ["arn:aws:s3:::raw/*", "arn:aws:s3:::processed/*"]
    logs = next(s for s in document["Statement"] if s["Sid"] == "WriteClusterLogs")
    assert logs["Resource"] == ["arn:aws:s3:::art/logs/emr/*"]


def test_msk_topic_and_group_arns_derive_from_the_cluster_arn() -> None:
    arns = msk_resource_arns(MSK_ARN)
    assert arns["topic"] == "arn:aws:kafka:us-east-1:123456789012:topic/claims-dev-kafka/0a1b-uuid-1/*"
    assert arns["group"] == "arn:aws:kafka:us-east-1:123456789012:group/claims-dev-kafka/0a1b-uuid-1/*"


def test_redshift_copy_policy_reads_only_the_processed_bucket() -> None:
    document = redshift_copy_policy(processed_bucket_arn="arn:aws:s3:::processed", kms_key_arn="arn:key")
    actions = {action for statement in document["Statement"] for action in statement["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "kms:Decrypt", "kms:DescribeKey"}


def test_kms_key_policy_limits_cloudwatch_logs_to_this_accounts_log_groups() -> None:
    document = kms_key_policy(account_id="123456789012", partition="aws", region="us-east-1")
    logs = next(s for s in document["Statement"] if s["Sid"] == "CloudWatchLogsEncryptsThisAccountsLogGroups")
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:*")


def test_tls_policy_covers_bucket_and_objects() -> None:
    statement = deny_insecure_transport_policy("arn:aws:s3:::b")["Statement"][0]
    assert statement["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_monitoring_assets_missing_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MonitoringAssetError, match=r"prometheus-rules\.yaml: expected the Prometheus rules file"):
        load_monitoring_assets(tmp_path / "prometheus-rules.yaml", tmp_path / "grafana")


def test_monitoring_assets_bad_dashboard_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "grafana").mkdir()
    (tmp_path / "grafana" / "lag.json").write_text('{\n  "title": "Lag",\n  oops\n}', encoding="utf-8")
    with pytest.raises(MonitoringAssetError, match=r"lag\.json:3: expected a Grafana dashboard JSON"):
        load_monitoring_assets(tmp_path / "rules.yaml", tmp_path / "grafana")


def test_monitoring_assets_load_rules_and_dashboards(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "grafana").mkdir()
    (tmp_path / "grafana" / "Claims Pipeline.json").write_text(json.dumps({"title": "x"}), encoding="utf-8")
    assets = load_monitoring_assets(tmp_path / "rules.yaml", tmp_path / "grafana")
    assert assets.rule_groups_yaml == RULES
    assert list(assets.dashboards) == ["Claims Pipeline.json"]
    assert configmap_name("Claims Pipeline.json") == "dashboard-claims-pipeline"


def test_taggability_comes_from_the_provider_schema() -> None:
    assert is_taggable_type("aws:s3/bucket:Bucket")
    assert is_taggable_type("aws:msk/cluster:Cluster")
    assert not is_taggable_type("aws:s3/bucketPolicy:BucketPolicy")
    assert not is_taggable_type("aws:emr/securityConfiguration:SecurityConfiguration")
    assert not is_taggable_type("kubernetes:core/v1:ConfigMap")
    assert not is_taggable_type("claims:datalake:DataLake")


def test_merge_tags_keeps_resource_tags_but_standard_tags_win() -> None:
    assert merge_tags({"role": "raw", "owner": "x"}, {"owner": "claims-platform"}) == {
        "role": "raw", "owner": "claims-platform"}
    assert merge_tags(None, {"owner": "o"}) == {"owner": "o"}


def test_app_config_omits_unset_back_pressure_cap() -> None:
    stack = ResolvedStack(environment="dev", region="us-east-1", msk_bootstrap_brokers="b:9098", raw_bucket="r",
                          processed_bucket="p", checkpoint_bucket="c", artifact_bucket="a",
                          redshift_cluster_identifier="w", redshift_database="claims", redshift_secret_arn="s",
                          redshift_copy_role_arn="role", remote_write_url="https://x/api/v1/remote_write",
                          kms_key_arn="k", emr_cluster_id="j-1")
    config = render_app_config(stack, EmrConfig())
    assert "max_offsets_per_trigger" not in config["spark"]
    assert config["lake"] == {"root": "s3a://p/lake", "checkpoint_root": "s3a://c/checkpoints", "raw_bucket": "r",
                              "processed_bucket": "p"}


PYPROJECT = """
[project]
name = "x"
dependencies = ["pydantic>=2.7", "fhir.resources>=8.0", "pyspark==4.2.0", "Delta_Spark==4.4.0", "pulumi-aws>=6.50"]
"""


def test_emr_runtime_requirements_pin_direct_dependencies_and_leave_out_spark_and_pulumi() -> None:
    lock = "pydantic==2.14.3\nfhir.resources==8.3.0\npyspark==4.2.0\ndelta_spark==4.4.0\npulumi_aws==7.51.1\n"
    assert runtime_requirements(PYPROJECT, lock) == "fhir-resources==8.3.0\npydantic==2.14.3\n"


def test_emr_runtime_requirements_refuse_an_unpinned_dependency() -> None:
    with pytest.raises(ValueError, match=r"dependency 'fhir-resources' expected a pin in requirements\.lock"):
        runtime_requirements(PYPROJECT, "pydantic==2.14.3\n")
    with pytest.raises(ValueError, match=r"requirements\.lock:2: expected name==version, found 'pydantic>=2'"):
        runtime_requirements(PYPROJECT, "orjson==3.13.0\npydantic>=2\n")


def test_real_project_runtime_requirements_resolve_from_the_lock() -> None:
    text = runtime_requirements((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"),
                                (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8"))
    names = {line.split("==")[0] for line in text.splitlines()}
    assert {"pydantic", "orjson", "confluent-kafka", "boto3"} <= names
    assert not names & {"pyspark", "delta-spark", "pulumi"}
