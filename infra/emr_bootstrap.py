"""What every EMR node installs at boot: Python 3.11 and the apps' runtime dependencies, without internet access.

Why: the EMR nodes have no route to the internet (PHI network), yet the apps need pydantic, orjson, confluent-kafka...
Packages come from a CodeArtifact repository (an upstream mirror of PyPI) reached through VPC endpoints, pinned by
requirements.lock. The app itself is not installed here: `make deploy-apps` ships its wheel to each step
(`--py-files`), so a new release needs no cluster restart. Spark, Delta and the infra tooling are excluded - EMR
provides Spark, the deploy adds the connector packages per step.
"""

from __future__ import annotations

import re
import tomllib

PYTHON = "/usr/bin/python3.11"
SCRIPT_KEY = "bootstrap/install-claims-runtime.sh"
REQUIREMENTS_KEY = "bootstrap/requirements.txt"
CONSTRAINTS_KEY = "bootstrap/constraints.txt"

# Direct dependencies of the project that must not be installed on the cluster.
NOT_ON_CLUSTER = frozenset({"pyspark", "delta-spark", "pulumi", "pulumi-aws", "pulumi-kubernetes", "pulumi-policy"})

SCRIPT = f"""#!/bin/bash
# Installs Python 3.11 and the claims pipeline's runtime dependencies on an EMR node (no internet: CodeArtifact).
# Arguments: requirements URI, constraints URI, CodeArtifact domain, domain owner, repository, region.
set -euo pipefail
requirements_uri="$1"; constraints_uri="$2"; domain="$3"; owner="$4"; repository="$5"; region="$6"
workdir=$(mktemp -d)
sudo dnf install -y -q python3.11 python3.11-pip
aws s3 cp --only-show-errors "$requirements_uri" "$workdir/requirements.txt"
aws s3 cp --only-show-errors "$constraints_uri" "$workdir/constraints.txt"
endpoint=$(aws codeartifact get-repository-endpoint --region "$region" --domain "$domain" \\
  --domain-owner "$owner" --repository "$repository" --format pypi --query repositoryEndpoint --output text)
token=$(aws codeartifact get-authorization-token --region "$region" --domain "$domain" \\
  --domain-owner "$owner" --query authorizationToken --output text)
sudo {PYTHON} -m pip install --quiet --no-input --index-url "https://aws:${{token}}@${{endpoint#https://}}simple/" \\
  -r "$workdir/requirements.txt" -c "$workdir/constraints.txt"
rm -rf "$workdir"
"""


def _normalise(name: str) -> str:
    """PEP 503 name normalisation (`Delta_Spark` == `delta-spark`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(pyproject_text: str, lock_text: str) -> str:
    """The project's direct dependencies minus the ones EMR must not get, each pinned to its requirements.lock version.

    Raises ValueError naming the dependency when the lock does not pin it (the cluster must be reproducible).
    """
    pins = {}
    for line_number, line in enumerate(lock_text.splitlines(), start=1):
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name, separator, version = requirement.partition("==")
        if not separator:
            msg = f"requirements.lock:{line_number}: expected name==version, found {requirement!r}"
            raise ValueError(msg)
        pins[_normalise(name)] = version.strip()
    dependencies = tomllib.loads(pyproject_text)["project"]["dependencies"]
    lines = []
    for dependency in dependencies:
        name = _normalise(re.split(r"[<>=!~\[;\s]", dependency, maxsplit=1)[0])
        if name in NOT_ON_CLUSTER:
            continue
        if name not in pins:
            msg = f"pyproject.toml: dependency {name!r} expected a pin in requirements.lock, found none"
            raise ValueError(msg)
        lines.append(f"{name}=={pins[name]}")
    return "".join(f"{line}\n" for line in sorted(lines))
