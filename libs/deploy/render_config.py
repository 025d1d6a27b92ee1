"""Render the apps' configuration file (CLAIMS_CONFIG) from the stack outputs.

Why rendered at deploy time: the Spark jobs on EMR read one JSON file validated by libs.settings.Settings; infra
exports it as the `app_config` output. Rendering it here validates it before anything is shipped (a typo in infra
fails the deploy, not a job at 3 a.m.), fills the resource names infra also exports at top level, and rejects
contradictions between the two.

Only the fields set explicitly are written: the defaults of Settings are local paths of *this* checkout
(`/home/.../.local/lake`), which would be wrong on a cluster, so they are left for the job to compute there.
Config files the jobs need (topic list, PHI policy) are shipped next to the config (YARN `--files`) and referenced by
bare file name, which resolves in the container's working directory.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from libs.deploy.outputs import StackOutputs
from libs.settings import REPO_ROOT, Settings

CONFIG_FILE_NAME = "app-config.json"


class ConfigRenderError(ValueError):
    """The app config in the stack outputs is invalid or contradicts the other outputs."""


# Top-level stack output -> where the same value lives in Settings. The environment appears twice in Settings: the
# security copy decides PHI masking, so it must never disagree with the stack it runs in.
OUTPUT_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("environment", ("environment",)),
    ("environment", ("security", "environment")),
    ("region", ("aws", "region")),
    ("artifact_bucket", ("aws", "artifact_bucket")),
    ("emr_cluster_id", ("aws", "emr_cluster_id")),
    ("msk_bootstrap_brokers", ("kafka", "bootstrap_servers")),
    ("redshift_cluster_identifier", ("warehouse", "redshift_cluster_id")),
    ("redshift_database", ("warehouse", "redshift_database")),
    ("redshift_secret_arn", ("warehouse", "redshift_secret_arn")),
    ("kms_key_arn", ("security", "kms_key_id")),
)


@dataclass(frozen=True)
class ShippedFile:
    """A local config file shipped with the jobs, and the Settings field that must name it on the cluster."""

    local_path: Path
    settings_path: tuple[str, ...]

    @property
    def name(self) -> str:
        """The file name on the cluster (YARN links it into the container's working directory)."""
        return self.local_path.name


DEFAULT_SHIPPED_FILES: tuple[ShippedFile, ...] = (
    ShippedFile(REPO_ROOT / "configs" / "kafka" / "topics.json", ("kafka", "topics_file")),
    ShippedFile(REPO_ROOT / "configs" / "security" / "phi-policy.json", ("security", "phi_policy_file")),
)


@dataclass(frozen=True)
class RenderedConfig:
    """The validated settings and their canonical JSON bytes (the digest names the uploaded object)."""

    settings: Settings
    body: bytes

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON."""
        return hashlib.sha256(self.body).hexdigest()


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            msg = f"app_config.{'.'.join(path[:-1])}: expected an object, found {type(child).__name__}"
            raise ConfigRenderError(msg)
        node = child
    node[path[-1]] = value


def _jsonable(value: Any) -> Any:
    """JSON-ready form of a model dump; secrets are written in clear (the file is KMS-encrypted in S3)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(exclude_unset=True))
    return value


def render_app_config(outputs: StackOutputs,
                      shipped_files: tuple[ShippedFile, ...] = DEFAULT_SHIPPED_FILES) -> RenderedConfig:
    """Validate `app_config`, fill it from the top-level outputs and shipped files, and serialise it canonically."""
    data = copy.deepcopy(outputs.app_config)
    for output_name, path in OUTPUT_FIELDS:
        expected = getattr(outputs, output_name)
        expected = expected.value if hasattr(expected, "value") else expected
        found = _get(data, path)
        if found is None:
            _set(data, path, expected)
        elif found != expected:
            msg = (f"app_config.{'.'.join(path)} is {found!r} but stack output {output_name} is {expected!r}; "
                   "infra must export one value for both")
            raise ConfigRenderError(msg)
    for shipped in shipped_files:
        if shipped.local_path.is_file() and _get(data, shipped.settings_path) is None:
            _set(data, shipped.settings_path, shipped.name)
    try:
        # model_validate (not the constructor) so the deployer's own CLAIMS__* variables cannot leak into the file.
        settings = Settings.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"app_config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_input=False)
        )
        msg = f"stack output app_config does not validate against libs.settings.Settings: {problems}"
        raise ConfigRenderError(msg) from None
    document = _jsonable(settings.model_dump(exclude_unset=True))
    body = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return RenderedConfig(settings=settings, body=body)
