"""What EMR nodes install at boot: Python 3.11 and the apps' runtime dependencies on every node, and a Prometheus
agent on the primary node; all without internet access.

Why: the EMR nodes have no route to the internet (PHI network), yet the apps need pydantic, orjson, confluent-kafka...
Packages come from a CodeArtifact repository (an upstream mirror of PyPI) reached through VPC endpoints, pinned by
requirements.lock. The app itself is not installed here: `make deploy-apps` ships its wheel to each step
(`--py-files`), so a new release needs no cluster restart. Spark, Delta and the infra tooling are excluded - EMR
provides Spark, the deploy adds the connector packages per step.

The Prometheus agent (`prometheus --enable-feature=agent`, a second bootstrap action, primary node only) scrapes the
apps' /metrics with the configuration the monitoring component writes to SSM (infra/monitoring.py) and remote-writes
to Amazon Managed Prometheus with SigV4 as the instance role. Amazon Linux 2023, the OS of EMR 7 and 8, has no
Prometheus package, and EPEL is not supported there, so the node installs the upstream release tarball: pinned here
(version and sha256 per architecture), fetched once on the deployer's machine by `python -m infra.prometheus_release`
(which checks the digest), uploaded by `pulumi up` beside this script, and checked again by the node before it
unpacks it. Why infra ships it and not `make deploy-apps`: bootstrap actions run when the cluster is created (during
`pulumi up`, before a new stack's first `deploy-apps`) and their arguments are fixed then, while deploy-apps' keys
are content-addressed per release; the tarball belongs to the cluster's lifecycle, like this script.

The stream's driver does not run on the primary node: the deploy submits it in YARN cluster mode (driver retries), so
it runs in the application master on a core node, wherever YARN put the current attempt. The same bootstrap action
installs infra/yarn_discovery.py (standard library only: it runs before any app wheel exists) as
`claims-stream-discovery.service`, which asks the ResourceManager where the RUNNING application named like the
streaming step runs and keeps the agent's file_sd file for the `claims-stream` job current (infra/monitoring.py
points the job at it). The lag exporter, the other job the agent scrapes, is started on this node by the deploy (an
EMR step, libs/deploy/emr_steps.py): it is part of the app wheel, which does not exist when the bootstrap runs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from infra import yarn_discovery
from libs.deploy.emr_steps import JobKind, step_name
from libs.settings import MonitoringSettings

PYTHON = "/usr/bin/python3.11"
SCRIPT_KEY = "bootstrap/install-claims-runtime.sh"
REQUIREMENTS_KEY = "bootstrap/requirements.txt"
CONSTRAINTS_KEY = "bootstrap/constraints.txt"

AGENT_SCRIPT_KEY = "bootstrap/prometheus-agent.sh"
AGENT_TARBALL_PREFIX = "bootstrap/prometheus"
# The 2.53 line is Prometheus' long-term-support line of 2.x: agent mode is still `--enable-feature=agent` (3.x
# renamed it `--agent`), SigV4 remote write is built in. Digests: the release's sha256sums.txt.
PROMETHEUS_VERSION = "2.53.4"
PROMETHEUS_SHA256 = {
    "amd64": "b8b497c4610d1b93208252b60c8f20f6b2e78596ae8df43397a2e805aa53d475",
    "arm64": "ec7236ecea7154d0bfe142921708b1ae7b5e921e100e0ee85ab92b7c444357e0",
}
# `uname -m` on the node -> the release's architecture name.
MACHINE_ARCHITECTURES = {"aarch64": "arm64", "x86_64": "amd64"}
AGENT_SERVICE = "claims-prometheus-agent"
AGENT_USER = "claims-prometheus"
AGENT_CONFIG_PATH = "/etc/claims-prometheus/agent.yml"
AGENT_STORAGE_PATH = "/mnt/claims-prometheus-agent"
AGENT_INSTALL_DIR = "/opt/claims-prometheus"
# The agent's own HTTP endpoint (readiness, its metrics), on loopback: settings.monitoring.prometheus_port's default.
AGENT_PORT: int = MonitoringSettings.model_fields["prometheus_port"].default

# The stream driver's discovery (infra/yarn_discovery.py) beside the agent: the program, shipped by `pulumi up` beside
# this script, its service, and the file_sd file it writes for the agent's claims-stream job.
DISCOVERY_SOURCE = Path(yarn_discovery.__file__)
DISCOVERY_SCRIPT_KEY = "bootstrap/claims-stream-discovery.py"
DISCOVERY_SERVICE = "claims-stream-discovery"
DISCOVERY_PROGRAM_PATH = f"{AGENT_INSTALL_DIR}/claims-stream-discovery.py"
TARGETS_DIR = "/var/lib/claims-prometheus-targets"
STREAM_TARGETS_FILE = f"{TARGETS_DIR}/claims-stream.json"
# The YARN application name of the stream: spark-submit `--name`, which is the step name (cluster mode keeps it).
STREAM_APP_NAME = step_name(JobKind.STREAMING)
STREAM_METRICS_PORT: int = MonitoringSettings.model_fields["streaming_metrics_port"].default

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


def prometheus_release_name(architecture: str) -> str:
    """`prometheus-<version>.linux-<arch>`: the tarball's stem and its top-level directory."""
    if architecture not in PROMETHEUS_SHA256:
        msg = f"Prometheus architecture: expected one of {sorted(PROMETHEUS_SHA256)}, found {architecture!r}"
        raise ValueError(msg)
    return f"prometheus-{PROMETHEUS_VERSION}.linux-{architecture}"


def prometheus_tarball_key(architecture: str) -> str:
    """Key of the pinned release tarball in the artifact bucket (beside the bootstrap scripts)."""
    return f"{AGENT_TARBALL_PREFIX}/{prometheus_release_name(architecture)}.tar.gz"


def instance_architecture(instance_type: str) -> str:
    """`arm64` for Graviton instance types (a `g` among the family's attribute letters: m6g, r7gd, c7gn, is4gen),
    else `amd64`. The primary node's type decides which tarball is shipped."""
    match = re.fullmatch(r"[a-z]+\d+([a-z-]*)\.[a-z0-9]+", instance_type)
    if match is None:
        msg = f"instance type: expected a name like m6g.xlarge, found {instance_type!r}"
        raise ValueError(msg)
    return "arm64" if "g" in match.group(1) else "amd64"


def agent_command(*, install_dir: str = AGENT_INSTALL_DIR, config_path: str = AGENT_CONFIG_PATH,
                  storage_path: str = AGENT_STORAGE_PATH, port: int = AGENT_PORT) -> list[str]:
    """The agent's command line (the systemd unit's ExecStart; the tests run it on a real Prometheus).

    Agent mode keeps only a write-ahead log until samples are remote-written: no local querying, no rule evaluation
    (AMP evaluates the rules), a few hundred MB of disk at most.
    """
    return [f"{install_dir}/prometheus", "--enable-feature=agent", f"--config.file={config_path}",
            f"--storage.agent.path={storage_path}", f"--web.listen-address=127.0.0.1:{port}"]


def discovery_command(*, python: str = PYTHON, program: str = DISCOVERY_PROGRAM_PATH,
                      output: str = STREAM_TARGETS_FILE, app_name: str = STREAM_APP_NAME,
                      port: int = STREAM_METRICS_PORT) -> list[str]:
    """The discovery service's command line (its unit's ExecStart): a loop, every 15 s, that never exits on errors.

    The ResourceManager's address is read from the node's yarn-site.xml on every pass (YARN is installed after the
    bootstrap actions; the service simply logs until it answers).
    """
    return [python, program, "--app-name", app_name, "--port", str(port), "--output", output]


def _unit_file(service: str, description: str, command: list[str]) -> str:
    """The bash lines that write a simple always-restarting systemd unit running `command` as the agent's user."""
    return f"""sudo tee /etc/systemd/system/{service}.service >/dev/null <<'UNIT'
[Unit]
Description={description}
Wants=network-online.target
After=network-online.target

[Service]
User={AGENT_USER}
ExecStart={" ".join(command)}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT"""


def _agent_script() -> str:
    digests = "\n".join(f"  {machine}) arch={arch}; sha256={PROMETHEUS_SHA256[arch]} ;;"
                        for machine, arch in MACHINE_ARCHITECTURES.items())
    return f"""#!/bin/bash
# Runs a Prometheus agent on the EMR primary node: it scrapes the claims apps' /metrics (configuration from SSM,
# written by infra/monitoring.py) and remote-writes to Amazon Managed Prometheus with SigV4 (the instance role).
# It also installs the stream driver's discovery (YARN ResourceManager -> the agent's file_sd file for claims-stream).
# Core and task nodes exit at once. Arguments: S3 prefix of the pinned release tarballs, SSM parameter name, region,
# S3 URI of the discovery program.
set -euo pipefail
tarballs="$1"; parameter="$2"; region="$3"; discovery="$4"
instance_info="${{EMR_INSTANCE_INFO:-/mnt/var/lib/info/instance.json}}"  # EMR's own description of this node
if ! grep -Eq '"isMaster"[[:space:]]*:[[:space:]]*true' "$instance_info" 2>/dev/null; then
  exit 0
fi
case "$(uname -m)" in
{digests}
  *) echo "prometheus-agent: expected an aarch64 or x86_64 node, found $(uname -m)" >&2; exit 1 ;;
esac
release="prometheus-{PROMETHEUS_VERSION}.linux-$arch"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
aws s3 cp --only-show-errors "${{tarballs%/}}/$release.tar.gz" "$workdir/$release.tar.gz"
if ! echo "$sha256  $workdir/$release.tar.gz" | sha256sum --check --status; then
  found=$(sha256sum "$workdir/$release.tar.gz" | cut -d' ' -f1)
  echo "prometheus-agent: expected $release.tar.gz with sha256 $sha256, found $found" >&2
  exit 1
fi
aws ssm get-parameter --region "$region" --name "$parameter" --query Parameter.Value --output text \\
  > "$workdir/agent.yml"
aws s3 cp --only-show-errors "$discovery" "$workdir/claims-stream-discovery.py"
echo '[]' > "$workdir/claims-stream.json"  # no driver known yet: the discovery service fills it in
tar -xzf "$workdir/$release.tar.gz" -C "$workdir" "$release/prometheus"
id -u {AGENT_USER} >/dev/null 2>&1 || sudo useradd --system --no-create-home --shell /sbin/nologin {AGENT_USER}
sudo install -d -m 0755 {AGENT_INSTALL_DIR} {AGENT_CONFIG_PATH.rsplit("/", 1)[0]}
sudo install -d -m 0750 -o {AGENT_USER} {AGENT_STORAGE_PATH}
sudo install -m 0755 "$workdir/$release/prometheus" {AGENT_INSTALL_DIR}/prometheus
sudo install -m 0644 "$workdir/agent.yml" {AGENT_CONFIG_PATH}
sudo install -m 0644 "$workdir/claims-stream-discovery.py" {DISCOVERY_PROGRAM_PATH}
sudo install -d -m 0755 -o {AGENT_USER} {TARGETS_DIR}
sudo test -e {STREAM_TARGETS_FILE} || \\
  sudo install -m 0644 -o {AGENT_USER} "$workdir/claims-stream.json" {STREAM_TARGETS_FILE}
{_unit_file(DISCOVERY_SERVICE, "Claims stream driver discovery: YARN ResourceManager to the Prometheus agent's "
                                 "file_sd targets", discovery_command())}
{_unit_file(AGENT_SERVICE, "Prometheus agent: claims pipeline metrics to Amazon Managed Prometheus", agent_command())}
sudo systemctl daemon-reload
sudo systemctl enable --now {DISCOVERY_SERVICE}.service
sudo systemctl enable --now {AGENT_SERVICE}.service
"""


AGENT_SCRIPT = _agent_script()
