"""The EMR runtime every stack names is the runtime the jobs are tested on locally.

Why: the streaming and batch jobs are tested on the pinned PySpark and Delta (pyproject.toml, requirements.lock, the
connector jars of tools/maven/spark/pom.xml). A stack whose EMR release runs another Spark or Delta line would deploy
code that was never run on it, and the mismatch would only show on the cluster. configs/spark/emr-releases.json says
which lines each supported release runs; these tests fail, naming the file and key, as soon as a stack, a pin, the
installed pyspark or the Python in use drifts away from it. No Spark session, no network: plain file reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyspark
import pytest
import yaml
from packaging.requirements import Requirement

from infra import emr_bootstrap
from infra.config import EmrConfig, StackConfigError, parse_stack_config
from infra.emr_releases import DEFAULT_RELEASE_LABEL, EmrRelease, supported_releases
from infra.spark_cluster import SparkClusterArgs
from tests.infra.mocks import REPO_ROOT

RELEASES = "configs/spark/emr-releases.json"
POM = "tools/maven/spark/pom.xml"
POM_NAMESPACE = {"pom": "http://maven.apache.org/POM/4.0.0"}
STACK_FILES = sorted(REPO_ROOT.glob("Pulumi.*.yaml"))  # Pulumi.yaml (the project file) does not match


@dataclass(frozen=True)
class Pin:
    """A version as written somewhere in the repository, with where it was read (for the failure message)."""

    version: str
    where: str


@dataclass(frozen=True)
class StackRelease:
    """The EMR release label a stack deploys and where it comes from."""

    stack: str
    label: str
    where: str


def _normalise(name: str) -> str:
    """PEP 503 name normalisation: requirements.lock writes `delta_spark`, pyproject `delta-spark`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_pins() -> dict[str, Pin]:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = {}
    for dependency in dependencies:
        requirement = Requirement(dependency)
        exact = [spec for spec in requirement.specifier if spec.operator == "=="]
        if len(exact) == 1:
            pins[_normalise(requirement.name)] = Pin(exact[0].version,
                                                     f"pyproject.toml [project] dependencies {dependency!r}")
    return pins


def _lock_pins() -> dict[str, Pin]:
    pins = {}
    lines = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    for line_number, line in enumerate(lines, start=1):
        name, separator, version = line.split("#", 1)[0].strip().partition("==")
        if separator:
            pins[_normalise(name)] = Pin(version.strip(), f"requirements.lock:{line_number} {line.strip()!r}")
    return pins


def _pom() -> ElementTree.Element:
    return ElementTree.parse(REPO_ROOT / POM).getroot()


def _pom_property(name: str) -> Pin | None:
    element = _pom().find(f"pom:properties/pom:{name}", POM_NAMESPACE)
    if element is None or not (element.text or "").strip():
        return None
    return Pin((element.text or "").strip(), f"{POM} <properties><{name}>")


def _stack_release(stack_file: Path) -> StackRelease:
    config = yaml.safe_load(stack_file.read_text(encoding="utf-8"))["config"]
    emr: dict[str, Any] = config.get("medical-claims:emr") or {}
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if "releaseLabel" in emr:
        return StackRelease(stack, emr["releaseLabel"], f"{stack_file.name} medical-claims:emr.releaseLabel")
    return StackRelease(stack, DEFAULT_RELEASE_LABEL,
                        f"{stack_file.name} medical-claims:emr.releaseLabel (not set: infra default)")


def _release_of(stack: StackRelease) -> EmrRelease:
    releases = supported_releases()
    if stack.label not in releases:
        pytest.fail(f"{stack.where}: expected an EMR release listed in {RELEASES} ({', '.join(sorted(releases))}), "
                    f"found {stack.label!r}")
    return releases[stack.label]


def _pin_mismatches(expected: str, what: str, pins: list[tuple[str, Pin | None]]) -> list[str]:
    """One line per pin that is missing or differs from `expected` (`what` says where `expected` comes from)."""
    problems = []
    for missing_where, pin in pins:
        if pin is None:
            problems.append(f"{missing_where}: expected {expected} ({what}), found no pin")
        elif pin.version != expected:
            problems.append(f"{pin.where}: expected {expected} ({what}), found {pin.version}")
    return problems


@pytest.fixture(params=STACK_FILES, ids=lambda path: path.name)
def stack_release(request: pytest.FixtureRequest) -> StackRelease:
    """Each Pulumi.<stack>.yaml's EMR release in turn."""
    return _stack_release(request.param)


# --- the stacks name a release from the file --------------------------------------------------------------------------

def test_every_stack_file_is_checked() -> None:
    # Guards the parametrised tests below against passing vacuously when the glob finds nothing.
    assert {path.name for path in STACK_FILES} >= {"Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"}


def test_stack_names_a_supported_emr_release(stack_release: StackRelease) -> None:
    _release_of(stack_release)


def test_infra_defaults_name_a_supported_emr_release() -> None:
    spark_default = next(f.default for f in dataclasses.fields(SparkClusterArgs) if f.name == "release_label")
    defaults = {"infra.emr_releases.DEFAULT_RELEASE_LABEL": DEFAULT_RELEASE_LABEL,
                "infra.config.EmrConfig.release_label": EmrConfig().release_label,
                "infra.spark_cluster.SparkClusterArgs.release_label": spark_default}
    for where, label in defaults.items():
        assert label in supported_releases(), f"{where}: expected a release listed in {RELEASES}, found {label!r}"


# --- the release's lines equal the local pins ---------------------------------------------------------------------

def test_release_spark_equals_the_pyspark_pins_and_the_connector_pom(stack_release: StackRelease) -> None:
    release = _release_of(stack_release)
    what = f"{RELEASES} releases.{stack_release.label}.spark_version, named by {stack_release.where}"
    problems = _pin_mismatches(release.spark_version, what, [
        ("pyproject.toml [project] dependencies pyspark", _pyproject_pins().get("pyspark")),
        ("requirements.lock pyspark", _lock_pins().get("pyspark")),
        (f"{POM} <properties><spark.version>", _pom_property("spark.version")),
    ])
    assert not problems, "\n".join(problems)


def test_release_delta_equals_the_delta_spark_pins_and_the_connector_pom(stack_release: StackRelease) -> None:
    release = _release_of(stack_release)
    what = f"{RELEASES} releases.{stack_release.label}.delta_version, named by {stack_release.where}"
    problems = _pin_mismatches(release.delta_version, what, [
        ("pyproject.toml [project] dependencies delta-spark", _pyproject_pins().get("delta-spark")),
        ("requirements.lock delta-spark", _lock_pins().get("delta-spark")),
        (f"{POM} <properties><delta.version>", _pom_property("delta.version")),
    ])
    assert not problems, "\n".join(problems)


def test_release_scala_equals_the_connector_jars_scala_suffix(stack_release: StackRelease) -> None:
    release = _release_of(stack_release)
    suffixed = {}
    for dependency in _pom().iterfind("pom:dependencies/pom:dependency", POM_NAMESPACE):
        artifact = (dependency.findtext("pom:artifactId", default="", namespaces=POM_NAMESPACE)).strip()
        match = re.search(r"_(2\.\d+)$", artifact)
        if match:
            suffixed[artifact] = match.group(1)
    assert suffixed, f"{POM} <dependencies>: expected connector artifacts with a Scala suffix (_2.13), found none"
    for artifact, scala in suffixed.items():
        assert scala == release.scala_binary_version, (
            f"{POM} <dependency><artifactId>{artifact}: expected Scala {release.scala_binary_version} "
            f"({RELEASES} releases.{stack_release.label}.scala_binary_version), found {scala}")


def test_running_python_is_supported_by_the_release(stack_release: StackRelease) -> None:
    release = _release_of(stack_release)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in release.python_versions, (
        f"the Python running the tests ({sys.executable}): expected one of {', '.join(release.python_versions)} "
        f"({RELEASES} releases.{stack_release.label}.python_versions), found {running}")


def test_cluster_python_is_supported_by_the_release(stack_release: StackRelease) -> None:
    release = _release_of(stack_release)
    match = re.search(r"python(\d+\.\d+)$", emr_bootstrap.PYTHON)
    assert match, f"infra/emr_bootstrap.py PYTHON: expected a path ending in pythonX.Y, found {emr_bootstrap.PYTHON!r}"
    assert match.group(1) in release.python_versions, (
        f"infra/emr_bootstrap.py PYTHON (spark.pyspark.python on the cluster): expected one of "
        f"{', '.join(release.python_versions)} ({RELEASES} releases.{stack_release.label}.python_versions), "
        f"found {match.group(1)}")


# --- the virtualenv holds what is pinned ----------------------------------------------------------------------------

@pytest.mark.parametrize(("distribution", "installed"), [
    ("pyspark", lambda: pyspark.__version__),
    ("delta-spark", lambda: metadata.version("delta-spark")),
])
def test_installed_version_is_the_pinned_version(distribution: str, installed: Callable[[], str]) -> None:
    pin = _lock_pins().get(distribution)
    assert pin is not None, f"requirements.lock: expected a {distribution}==X.Y.Z pin, found none"
    assert installed() == pin.version, (
        f"{distribution} installed in {sys.prefix}: expected {pin.version} ({pin.where}), found {installed()} "
        "(a stale virtualenv: reinstall from requirements.lock)")


# --- infra refuses releases outside the file ------------------------------------------------------------------------

def test_stack_config_rejects_an_emr_7_release_naming_the_supported_ones() -> None:
    config = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("medical-claims:")}
    raw["region"] = config["aws:region"]
    raw["emr"] = {**raw["emr"], "releaseLabel": "emr-7.9.0"}
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(raw)
    message = str(raised.value)
    assert re.search(r"medical-claims:emr\.releaseLabel: expected an EMR release listed in "
                     r"configs/spark/emr-releases\.json \(.*\), found 'emr-7\.9\.0'", message), message
    for label in supported_releases():
        assert label in message


def test_a_malformed_releases_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "emr-releases.json"
    broken.write_text(json.dumps({"_comment": "x", "releases": {"emr-spark-8.0.0": {"spark_version": "4.0.2"}}}),
                      encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{re.escape(str(broken))}: expected .*delta_version"):
        supported_releases(broken)
