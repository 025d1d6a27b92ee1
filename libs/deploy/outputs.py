"""Read a Pulumi stack's outputs: the contract between infra/ (which creates the resources) and the deploy.

Why a typed model: the deploy needs a dozen resource names (bucket, cluster ids, secret ARN...) and a missing or
misspelt output should stop the deploy with the output's name, not fail later with a KeyError deep in boto3.
Outputs are read with `--show-secrets` (the rendered app config may need secret outputs), so errors here never echo
output values, only their names.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.settings import REPO_ROOT, Environment


class StackOutputsError(RuntimeError):
    """The stack outputs could not be read or do not match the contract."""


class StackOutputs(BaseModel):
    """The top-level outputs exported by infra/__main__.py that the deploy uses (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_config: dict[str, Any] = Field(description="Matches libs.settings.Settings; rendered to the app config file.")
    artifact_bucket: str = Field(min_length=3)
    emr_cluster_id: str = Field(min_length=1)
    msk_bootstrap_brokers: str = Field(min_length=1)
    redshift_cluster_identifier: str = Field(min_length=1)
    redshift_database: str = Field(min_length=1)
    redshift_secret_arn: str = Field(min_length=1)
    kms_key_arn: str = Field(min_length=1)
    region: str = Field(min_length=1)
    environment: Environment


def parse_stack_outputs(data: object, *, source: str) -> StackOutputs:
    """Validate decoded outputs; the error lists each missing or invalid output by name (never by value)."""
    if not isinstance(data, dict):
        msg = f"{source}: expected a JSON object of stack outputs, found {type(data).__name__}"
        raise StackOutputsError(msg)
    try:
        return StackOutputs.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors(include_input=False)
        )
        msg = f"{source}: stack outputs do not match the deploy contract: {problems}"
        raise StackOutputsError(msg) from None


def read_outputs_file(path: Path) -> StackOutputs:
    """Outputs saved earlier with `pulumi stack output --json --show-secrets > FILE`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        msg = f"{path}: cannot read the stack outputs file: {error.strerror}"
        raise StackOutputsError(msg) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"{path} line {error.lineno} column {error.colno}: expected JSON stack outputs, {error.msg}"
        raise StackOutputsError(msg) from None
    return parse_stack_outputs(data, source=str(path))


def pulumi_output_command(stack: str, pulumi: str = "pulumi") -> list[str]:
    """The CLI call that prints a stack's outputs as JSON, secrets included."""
    return [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]


def read_stack_outputs(stack: str, *, cwd: Path = REPO_ROOT, pulumi: str = "pulumi",
                       timeout_seconds: float = 120.0) -> StackOutputs:
    """Outputs of `stack`, read through the Pulumi CLI in the project directory."""
    command = pulumi_output_command(stack, pulumi)
    source = f"`pulumi stack output --stack {stack}`"
    try:
        completed = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout_seconds, check=False,
        )
    except FileNotFoundError:
        msg = f"{source}: the pulumi CLI ({pulumi}) is not on PATH; install it or pass --outputs FILE"
        raise StackOutputsError(msg) from None
    except subprocess.TimeoutExpired:
        msg = f"{source}: no answer within {timeout_seconds:.0f} s (is the Pulumi backend reachable?)"
        raise StackOutputsError(msg) from None
    if completed.returncode != 0:
        # Pulumi's stderr names the stack/backend problem; it does not contain output values.
        reason = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no error message"
        msg = f"{source}: exited with status {completed.returncode}: {reason}"
        raise StackOutputsError(msg)
    try:
        data = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        msg = f"{source}: expected JSON on stdout, {error.msg} at line {error.lineno}"
        raise StackOutputsError(msg) from None
    return parse_stack_outputs(data, source=source)


def check_stack_environment(stack: str, outputs: StackOutputs) -> None:
    """Refuse to deploy e.g. `--stack prod` with outputs that say `dev` (a mixed-up --outputs file).

    Stacks may be fully qualified ('org/project/dev'); the last part is compared when it names an environment.
    """
    short_name = stack.rsplit("/", 1)[-1]
    known = {environment.value for environment in Environment}
    if short_name in known and short_name != outputs.environment.value:
        msg = (f"stack {stack}: expected outputs of environment {short_name!r}, "
               f"found outputs of environment {outputs.environment.value!r}")
        raise StackOutputsError(msg)
