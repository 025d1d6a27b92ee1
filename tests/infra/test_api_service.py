"""The API component under Pulumi mocks, for every stack: deployed where the stack has a Kubernetes cluster, private,
TLS to the pods, least privilege, sized by config and configured from app_config; its arguments fail early."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.api_service import HTTPS_PORT, ApiServiceArgs, service_annotations
from infra.config import StackConfigError, parse_stack_config
from libs.settings import Settings
from tests.infra.mocks import StackRun, run_program
from tests.infra.test_stacks import _yaml_section

PODS = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"


def _api_resources(run: StackRun, type_token: str) -> list[Any]:
    roles = ("-pods", "-service", "-autoscaler", "-network-policy", "-namespace")
    return [r for r in run.of_type(type_token) if r.name.endswith(roles) and "-api-" in r.name]


def test_the_api_is_deployed_exactly_where_the_stack_enables_it(stack_run: StackRun) -> None:
    enabled = _yaml_section(stack_run.stack, "api")["enabled"]
    assert len(_api_resources(stack_run, PODS)) == (1 if enabled else 0)
    assert len(_api_resources(stack_run, SERVICE)) == (1 if enabled else 0)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_pods_serve_tls_as_non_root_with_the_stack_app_config(stack_runs: dict[str, StackRun], stack: str) -> None:
    run = stack_runs[stack]
    config = _yaml_section(stack, "api")
    [pods] = _api_resources(run, PODS)
    spec = pods.inputs["spec"]
    [container] = spec["template"]["spec"]["containers"]
    assert container["image"] == config["image"]
    assert container["args"][-4:] == ["--ssl-certfile", "/etc/claims/tls/tls.crt", "--ssl-keyfile",
                                      "/etc/claims/tls/tls.key"]
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    volumes = {volume["name"]: volume for volume in spec["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "claims-api-tls"
    # The audit log and idempotency store live on each pod's own retained volume, never an emptyDir.
    assert "state" not in volumes
    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["storageClassName"] == config.get("stateStorageClass", "gp3")
    assert claim["spec"]["resources"]["requests"]["storage"] == config.get("stateStorageSize", "10Gi")
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["state"] == "/var/lib/claims"
    env = {item["name"]: item for item in container["env"]}
    assert env["CLAIMS_CONFIG"]["value"] == "/etc/claims/config.json"
    assert "valueFrom" in env["CLAIMS__SECURITY__TOKENIZATION_SECRET"]  # from a secret, never a literal
    [config_map] = [r for r in run.of_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("-api-config")]
    mounted = json.loads(config_map.inputs["data"]["config.json"])
    assert mounted == json.loads(json.dumps(run.outputs["app_config"]))
    settings = Settings(**mounted)  # what the pods load through CLAIMS_CONFIG
    assert settings.api.jwks_url == config["jwksUrl"]
    assert settings.api.issuer == config["issuer"]
    [account] = [r for r in run.of_type("kubernetes:core/v1:ServiceAccount") if r.name.endswith("-api-account")]
    assert account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == config["roleArn"]
    [namespace] = _api_resources(run, NAMESPACE)
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_api_is_reachable_only_privately(stack_runs: dict[str, StackRun], stack: str) -> None:
    run = stack_runs[stack]
    config = _yaml_section(stack, "api")
    [service] = _api_resources(run, SERVICE)
    assert service.inputs["metadata"]["annotations"] == service_annotations()
    annotations = service.inputs["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    # A client's retries reach the pod whose idempotency store holds its keys.
    assert "stickiness.type=source_ip" in annotations[
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
    assert service.inputs["spec"]["loadBalancerSourceRanges"] == config["allowedCidrs"]
    assert service.inputs["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": HTTPS_PORT,
                                                "protocol": "TCP"}]
    [policy] = _api_resources(run, POLICY)
    [ingress] = policy.inputs["spec"]["ingress"]
    cidrs = [source["ipBlock"]["cidr"] for source in ingress["from"] if "ipBlock" in source]
    assert cidrs == config["allowedCidrs"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": HTTPS_PORT}]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_autoscaler_bounds_come_from_stack_config(stack_runs: dict[str, StackRun], stack: str) -> None:
    config = _yaml_section(stack, "api")
    [hpa] = _api_resources(stack_runs[stack], HPA)
    spec = hpa.inputs["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (config["replicasMin"], config["replicasMax"])
    target = spec["metrics"][0]["resource"]["target"]["averageUtilization"]
    assert target == config.get("cpuTargetPercent", 70)
    [pods] = _api_resources(stack_runs[stack], PODS)
    assert pods.inputs["spec"]["replicas"] == config["replicasMin"]
    assert (spec["scaleTargetRef"]["kind"], spec["scaleTargetRef"]["name"]) == ("StatefulSet", "claims-api")


def test_scaling_the_api_is_a_config_edit() -> None:
    from tests.infra.mocks import stack_config  # noqa: PLC0415

    config = stack_config("prod")
    api = json.loads(config["medical-claims:api"])
    config["medical-claims:api"] = json.dumps({**api, "replicasMin": 5, "replicasMax": 20})
    [hpa] = _api_resources(run_program("prod", config), HPA)
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (5, 20)


def _args(**changes: Any) -> ApiServiceArgs:
    base: dict[str, Any] = {"provider": None, "image": "registry.example/claims-api:1.0.0", "app_config": {},
                            "role_arn": "arn:aws:iam::123456789012:role/api", "allowed_cidrs": ["10.0.0.0/8"]}
    return ApiServiceArgs(**{**base, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"image": "claims-api"}, "image: expected registry/repository:tag"),
    ({"allowed_cidrs": ["0.0.0.0/0"]}, "allowed_cidrs: expected private ranges only"),
    ({"allowed_cidrs": []}, "allowed_cidrs: expected at least one private CIDR"),
    ({"replicas_min": 4, "replicas_max": 2}, "replicas_max: expected >= replicas_min"),
    ({"cpu_limit": "two"}, "cpu_limit: expected a Kubernetes quantity"),
    ({"namespace": "Claims_API"}, "namespace: expected a Kubernetes name"),
])
def test_component_arguments_fail_early_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _args(**changes)


def _stack(**api: Any) -> dict[str, Any]:
    return {"environment": "staging", "region": "us-east-1", "owner": "team",
            "network": {"availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}, "api": api}


def test_config_refuses_an_enabled_api_without_a_cluster_or_its_settings() -> None:
    complete = {"enabled": True, "image": "r/claims-api:1", "roleArn": "arn:aws:iam::123456789012:role/api",
                "jwksUrl": "https://login.example.org/jwks.json", "issuer": "https://login.example.org/"}
    with pytest.raises(StackConfigError, match=r"api\.enabled: expected monitoring\.kubernetes\.enabled"):
        parse_stack_config(_stack(**complete))
    with pytest.raises(StackConfigError, match=r"api\.jwksUrl: expected a value when api\.enabled is true"):
        parse_stack_config(_stack(**{**complete, "jwksUrl": None}))
    with pytest.raises(StackConfigError, match=r"api\.allowedCidrs: expected private ranges only"):
        parse_stack_config(_stack(allowedCidrs=["8.8.8.0/24"]))
