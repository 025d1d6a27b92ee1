"""The EMR releases the stacks may run, read from configs/spark/emr-releases.json.

Why: the jobs are built and tested locally on one Spark and Delta line (pyproject.toml, requirements.lock,
tools/maven/spark/pom.xml). A cluster on another line (EMR 7.x ships Spark 3.5) would run code nobody tested, so a
stack may only name a release listed in that file, and tests/infra/test_emr_runtime.py keeps the file and the local
pins in step. The file is read here rather than through libs/ because infra does not depend on the apps' libraries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

RELEASES_FILE = Path(__file__).resolve().parent.parent / "configs" / "spark" / "emr-releases.json"

# The release the stacks and component defaults name; the tests assert it is listed in RELEASES_FILE.
DEFAULT_RELEASE_LABEL = "emr-spark-8.0.0"


class EmrRelease(BaseModel):
    """The runtime lines of one EMR release (upstream versions, without EMR's `-amzn-N` suffix)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spark_version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Apache Spark version (= the pyspark pin).")
    delta_version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Delta Lake version (= the delta-spark pin).")
    scala_binary_version: str = Field(pattern=r"^2\.1[23]$",
                                      description="Scala binary version of the release's Spark (connector jar suffix).")
    python_versions: tuple[Annotated[str, StringConstraints(pattern=r"^3\.\d+$")], ...] = Field(
        min_length=1, description="Python major.minor versions the release runs PySpark on.")


class _ReleasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(alias="_comment", description="Why the file exists.")
    releases: dict[str, EmrRelease] = Field(min_length=1, description="EMR release label -> its runtime lines.")


@cache
def supported_releases(path: Path = RELEASES_FILE) -> Mapping[str, EmrRelease]:
    """Every supported release label with its runtime lines; raise ValueError naming the file when it is malformed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        msg = f"{path}: expected a readable JSON file, found: {error}"
        raise ValueError(msg) from None
    try:
        parsed = _ReleasesFile.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                             for problem in error.errors(include_url=False, include_input=False))
        msg = f"{path}: expected '_comment' and 'releases' (label -> runtime lines), found {problems}"
        raise ValueError(msg) from None
    return MappingProxyType(dict(parsed.releases))  # read-only: the cached value is shared by every caller


def unsupported_release_message(label: str) -> str:
    """`expected ..., found ...` for a label missing from the releases file (callers prefix the key)."""
    labels = ", ".join(sorted(supported_releases()))
    return f"expected an EMR release listed in configs/spark/emr-releases.json ({labels}), found {label!r}"


def is_supported_release(label: str) -> bool:
    """True when `label` is one of the releases the jobs are tested against."""
    return label in supported_releases()
