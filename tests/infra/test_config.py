"""Stack configuration: the three stack files are valid, and invalid config fails early naming the config key."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import DeployEnvironment, StackConfig, StackConfigError, parse_stack_config
from infra.tags import standard_tags
from libs.settings import Environment
from tests.infra.mocks import REPO_ROOT, run_program, stack_config


def _raw(stack: str) -> dict[str, Any]:
    """The medical-claims:* keys of a stack file (plus aws:region) as parse_stack_config expects them."""
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("medical-claims:")}
    raw["region"] = config["aws:region"]
    return raw


def _with(stack: str, section: str, **changes: Any) -> dict[str, Any]:
    raw = _raw(stack)
    raw[section] = {**raw.get(section, {}), **changes}
    return raw


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_stack_file_is_a_valid_config_for_its_environment(stack: str) -> None:
    config = parse_stack_config(_raw(stack))
    assert config.environment is DeployEnvironment(stack)
    assert config.name_prefix == f"claims-{stack}"


def test_every_deploy_environment_is_an_environment_the_apps_know() -> None:
    assert {Environment(env.value) for env in DeployEnvironment} == {Environment.DEV, Environment.STAGING,
                                                                     Environment.PROD}


def test_every_config_field_has_a_description() -> None:
    def models(model: type[Any]) -> list[type[Any]]:
        nested = [f.annotation for f in model.model_fields.values()
                  if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields")]
        return [model, *(m for sub in nested for m in models(sub))]

    for model in models(StackConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_broker_count_not_a_multiple_of_the_zones_names_kafka_broker_count() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:kafka\.brokerCount: expected a multiple of the 3 "
                                               r"availability zones .* found 4"):
        parse_stack_config(_with("dev", "kafka", brokerCount=4))


def test_fewer_than_three_brokers_is_rejected() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:kafka\.brokerCount: .*greater than or equal to 3"):
        parse_stack_config(_with("dev", "kafka", brokerCount=2))


def test_a_typo_in_a_key_is_rejected_not_ignored() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:kafka\.brokerCont: Extra inputs are not permitted"):
        parse_stack_config(_with("dev", "kafka", brokerCont=6))


def test_multi_node_only_redshift_type_with_one_node_names_redshift_node_count() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:redshift\.nodeCount: ra3\.4xlarge is multi-node"):
        parse_stack_config(_with("dev", "redshift", nodeType="ra3.4xlarge", nodeCount=1))


def test_emr_core_max_below_core_min_names_emr_core_max() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:emr\.coreMax: expected >= emr\.coreMin \(4\), found 2"):
        parse_stack_config(_with("dev", "emr", coreMin=4, coreMax=2))


def test_emr_6_release_is_rejected() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:emr\.releaseLabel"):
        parse_stack_config(_with("dev", "emr", releaseLabel="emr-6.15.0"))


@pytest.mark.parametrize(("section", "key", "value"), [
    ("lake", "forceDestroy", True),
    ("redshift", "skipFinalSnapshot", True),
    ("emr", "terminationProtection", False),
])
def test_prod_refuses_settings_that_lose_data_on_destroy(section: str, key: str, value: object) -> None:
    with pytest.raises(StackConfigError, match=rf"{section}\.{key}: expected the safe setting in prod"):
        parse_stack_config(_with("prod", section, **{key: value}))


def test_kubernetes_monitoring_enabled_without_context_names_the_context_key() -> None:
    with pytest.raises(StackConfigError, match=r"monitoring\.kubernetes\.context: expected a kubeconfig context"):
        parse_stack_config(_with("dev", "monitoring", kubernetes={"enabled": True}))


def test_log_retention_must_be_a_cloudwatch_period() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:network\.flowLogRetentionDays: expected a CloudWatch"):
        parse_stack_config(_with("dev", "network", flowLogRetentionDays=42))


def test_public_or_tiny_vpc_cidr_is_rejected() -> None:
    for cidr in ("8.8.0.0/16", "10.0.0.0/24"):
        with pytest.raises(StackConfigError, match=r"medical-claims:network\.cidrBlock: .*private IPv4 CIDR"):
            parse_stack_config(_with("dev", "network", cidrBlock=cidr))


def test_single_availability_zone_is_rejected() -> None:
    with pytest.raises(StackConfigError, match=r"medical-claims:network\.availabilityZones"):
        parse_stack_config(_with("dev", "network", availabilityZones=["us-east-1a"]))


def test_missing_owner_is_named() -> None:
    raw = _raw("dev")
    del raw["owner"]
    with pytest.raises(StackConfigError, match=r"medical-claims:owner: Field required"):
        parse_stack_config(raw)


def test_lake_glacier_transition_too_soon_after_infrequent_access_is_rejected() -> None:
    expected = r"medical-claims:lake\.rawGlacierDays: expected >= lake\.rawInfrequentAccessDays"
    with pytest.raises(StackConfigError, match=expected):
        parse_stack_config(_with("dev", "lake", rawInfrequentAccessDays=60, rawGlacierDays=75))


def test_standard_tags_cannot_be_overridden_by_extra_tags() -> None:
    raw = _raw("dev")
    raw["extraTags"] = {"data-classification": "public", "team-channel": "#claims"}
    tags = standard_tags(parse_stack_config(raw))
    assert tags["data-classification"] == "phi"
    assert tags["team-channel"] == "#claims"
    assert tags["owner"] == "claims-platform"
    assert tags["environment"] == "dev"


def test_program_reads_pulumi_config_and_fails_before_creating_anything_on_bad_config() -> None:
    config = stack_config("dev")
    kafka = json.loads(config["medical-claims:kafka"])
    config["medical-claims:kafka"] = json.dumps({**kafka, "brokerCount": 5})
    with pytest.raises(StackConfigError, match=r"medical-claims:kafka\.brokerCount"):
        run_program("dev", config=config)
