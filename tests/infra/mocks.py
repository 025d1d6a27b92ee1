"""Pulumi mocks for the infra tests: record every registered resource and fill in the outputs AWS would compute.

Why: the program runs exactly as under `pulumi up`, but the resource monitor is this class, so no AWS credentials,
no Pulumi CLI and no network are needed, and each test can inspect every resource's inputs.
"""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.monitoring import MonitoringAssets, load_monitoring_assets
from infra.program import REPO_ROOT, build_stack

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# Used only when configs/monitoring/prometheus-rules.yaml does not exist yet (it is written by the monitoring work).
TEST_FALLBACK_RULES = """\
groups:
  - name: test-fallback-minimal-rules
    rules:
      - alert: ClaimsPipelineTestFallback
        expr: vector(0) > 1
"""
TEST_FALLBACK_DASHBOARD = json.dumps({"title": "Test fallback dashboard", "panels": []})


@dataclass(frozen=True)
class MockResource:
    """One registered resource: type token, logical name and the inputs the program gave it (camelCase)."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]


@dataclass
class StackRun:
    """Everything one program run registered, plus its resolved outputs."""

    stack: str
    resources: list[MockResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[MockResource]:
        """Resources of one type (e.g. `aws:msk/cluster:Cluster`)."""
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> MockResource:
        """The single resource of a type; fails if there is not exactly one."""
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
        return found[0]


def _computed_state(type_token: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The resource id and output properties AWS would return for these inputs."""
    short = type_token.rsplit(":", 1)[-1].lower()
    state: dict[str, Any] = {"arn": f"arn:aws:{short}:{REGION}:{ACCOUNT_ID}:{name}", **inputs}
    resource_id = f"{name}-id"
    if type_token == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket", f"{name}-a1b2c3d")
        resource_id = bucket
        state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
    elif type_token == "aws:kms/key:Key":
        state.update(keyId=f"{name}-key-id", arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{name}")
    elif type_token == "aws:msk/cluster:Cluster":
        cluster = inputs.get("clusterName", name)
        state["arn"] = f"arn:aws:kafka:{REGION}:{ACCOUNT_ID}:cluster/{cluster}/0a1b2c3d-uuid-1"
        state["bootstrapBrokersSaslIam"] = ",".join(
            f"b-{index}.{cluster}.kafka.{REGION}.amazonaws.com:9098" for index in (1, 2, 3))
    elif type_token == "aws:msk/configuration:Configuration":
        state["latestRevision"] = 1
    elif type_token == "aws:redshift/cluster:Cluster":
        identifier = inputs["clusterIdentifier"]
        resource_id = identifier
        state["masterPasswordSecretArn"] = (
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:redshift!{identifier}-admin-AbCdEf")
        state["endpoint"] = f"{identifier}.abc123.{REGION}.redshift.amazonaws.com:5439"
    elif type_token == "aws:amp/workspace:Workspace":
        resource_id = f"ws-{name}"
        state["prometheusEndpoint"] = f"https://aps-workspaces.{REGION}.amazonaws.com/workspaces/{resource_id}/"
    elif type_token == "aws:emr/cluster:Cluster":
        resource_id = "j-2AXXXXXXGAPLF"
    elif type_token == "aws:emr/securityConfiguration:SecurityConfiguration":
        state["name"] = inputs.get("namePrefix", "") + "20250101"
    elif type_token == "aws:ec2/vpcEndpoint:VpcEndpoint":
        state["prefixListId"] = "pl-63a5400a"
    elif type_token == "aws:ssm/parameter:Parameter":
        # The real form: a name starting with '/' follows 'parameter' directly.
        state["arn"] = f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter{inputs['name']}"
    elif type_token == "aws:iam/role:Role":
        state.update(arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", name=name)
    elif "name" not in state:
        state["name"] = name
    return resource_id, state


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource into a StackRun and answers the invokes the program makes."""

    def __init__(self, run: StackRun) -> None:
        self._run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = _computed_state(args.typ, args.name, dict(args.inputs))
        self._run.resources.append(MockResource(args.typ, args.name, dict(args.inputs), state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        # A bare dict means "no check failures" to the mock monitor.
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci", "userId": "AIDA",
                    "id": ACCOUNT_ID}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        msg = f"unexpected invoke {args.token} (the program must not need AWS at preview)"
        raise AssertionError(msg)


def stack_config(stack: str) -> dict[str, str]:
    """The `config:` map of Pulumi.<stack>.yaml in the runtime's form (objects as JSON strings)."""
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in document["config"].items()}


def monitoring_assets() -> MonitoringAssets:
    """The real rules and dashboards when they exist, otherwise the clearly-named test fallback."""
    rules = REPO_ROOT / "configs" / "monitoring" / "prometheus-rules.yaml"
    dashboards = REPO_ROOT / "configs" / "monitoring" / "grafana"
    if rules.is_file():
        assets = load_monitoring_assets(rules, dashboards)
        if assets.dashboards:
            return assets
        return MonitoringAssets(assets.rule_groups_yaml, {"test-fallback.json": TEST_FALLBACK_DASHBOARD})
    return MonitoringAssets(TEST_FALLBACK_RULES, {"test-fallback.json": TEST_FALLBACK_DASHBOARD})


def run_program(stack: str, config: dict[str, str] | None = None, assets: MonitoringAssets | None = None, *,
                via_entry_point: bool = False) -> StackRun:
    """Run infra.program.build_stack (or infra/__main__.py) for one stack under mocks; return resources and outputs.

    `via_entry_point` needs the real configs/monitoring rules file, as `pulumi up` does.
    """
    run = StackRun(stack)
    pulumi.runtime.settings.reset_options(project="medical-claims", stack=stack)
    pulumi.runtime.set_all_config(stack_config(stack) if config is None else config)
    pulumi.runtime.set_mocks(RecordingMocks(run), project="medical-claims", stack=stack, preview=False)
    outputs: dict[str, Any] = {}

    def program() -> None:
        outputs.update(build_stack(assets or monitoring_assets()))

    def entry_point() -> None:
        # Exactly what the Pulumi CLI does with `main: infra/`: run the directory's __main__.py as a script.
        runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__")
        root = pulumi.runtime.settings.get_root_resource()
        outputs.update(getattr(root, "outputs", {}))

    _sync_await(run_pulumi_func(entry_point if via_entry_point else program))
    for name, value in outputs.items():
        run.outputs[name] = _sync_await(pulumi.Output.from_input(value).future())
    return run


def repo_path(*parts: str) -> Path:
    """A path inside the repository."""
    return REPO_ROOT.joinpath(*parts)
