"""Where the streaming job's driver runs, asked of YARN, as a Prometheus file_sd target list.

Why: the deploy submits the stream with `spark-submit --deploy-mode cluster` (libs/deploy/emr_steps.py), which gives
the driver YARN's retries (`spark.yarn.maxAppAttempts`), but puts it inside the YARN application master on whichever
core node YARN picked, and on another one after a retry. The driver serves the stream's /metrics there, so the
Prometheus agent on the primary node cannot scrape `localhost`. This program asks the ResourceManager on the primary
node which application of the stream's name is RUNNING and where its application master is (`amHostHttpAddress`,
the NodeManager address of the AM container: the driver's host in cluster mode), and writes the agent's file_sd file
`[{"targets": ["<host>:<metrics port>"], "labels": {...}}]`; `[]` when the stream is not running.

Runs on the primary node as `claims-stream-discovery.service` (a loop; installed by the agent's bootstrap action,
infra/emr_bootstrap.py), before the app wheel exists, hence standard library only: the tests import this file and
run it against a local HTTP server answering like the ResourceManager's REST API (`/ws/v1/cluster/apps`).

Failure policy: the loop never stops. When the ResourceManager does not answer (it starts after the bootstrap
actions, restarts with the node) or answers something unexpected, the previous file is left as it is and one log
line says what was expected and what was found; the agent keeps scraping the last known driver, whose `up` series
then tells the truth about it. The file is replaced atomically (temporary file in the same directory, then rename),
so the agent never reads half a list, and only when the targets changed.

The ResourceManager's address comes from the node's yarn-site.xml on every pass (`yarn.http.policy`,
`yarn.resourcemanager.webapp[.https].address`, `yarn.resourcemanager.hostname`): the file does not exist yet when the
bootstrap action starts this service, and it says whether the web API is served over HTTPS (in-transit encryption).
`--resource-manager URL` overrides it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

log = logging.getLogger("claims-stream-discovery")

YARN_SITE = Path("/etc/hadoop/conf/yarn-site.xml")
RM_HTTP_PORT = 8088  # Hadoop's default yarn.resourcemanager.webapp.address port
RM_HTTPS_PORT = 8090  # ... and yarn.resourcemanager.webapp.https.address's
RUNNING_APPS_PATH = "/ws/v1/cluster/apps?states=RUNNING"
APPLICATION_LABEL = "yarn_application_id"
DEFAULT_INTERVAL_SECONDS = 15.0
DEFAULT_TIMEOUT_SECONDS = 5.0


class DiscoveryError(ValueError):
    """The ResourceManager answered, but not with the application list its REST API documents."""


def _yarn_properties(yarn_site: Path) -> dict[str, str]:
    """name -> value of a Hadoop configuration file; {} when it is missing or unreadable (YARN not installed yet)."""
    try:
        root = ElementTree.parse(yarn_site).getroot()  # noqa: S314  (the node's own root-owned Hadoop config)
    except (OSError, ElementTree.ParseError):
        return {}
    properties = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name and value is not None:
            properties[name.strip()] = value.strip()
    return properties


def resource_manager_url(yarn_site: Path = YARN_SITE, hostname: str | None = None) -> str:
    """The ResourceManager web API's base URL as this node's yarn-site.xml configures it.

    HTTPS when `yarn.http.policy` is HTTPS_ONLY; the webapp address with `${yarn.resourcemanager.hostname}`
    resolved and a wildcard bind address replaced by the host; Hadoop's defaults for whatever the file leaves out.
    """
    properties = _yarn_properties(yarn_site)
    host = properties.get("yarn.resourcemanager.hostname") or hostname or socket.getfqdn()
    https = properties.get("yarn.http.policy", "HTTP_ONLY").upper() == "HTTPS_ONLY"
    key = "yarn.resourcemanager.webapp.https.address" if https else "yarn.resourcemanager.webapp.address"
    address = properties.get(key) or f"{host}:{RM_HTTPS_PORT if https else RM_HTTP_PORT}"
    address = address.replace("${yarn.resourcemanager.hostname}", host)
    if address.startswith("0.0.0.0:"):
        address = f"{host}:{address.split(':', 1)[1]}"
    return f"{'https' if https else 'http'}://{address}"


def fetch_running_apps(rm_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                       context: ssl.SSLContext | None = None) -> list[dict[str, Any]]:
    """The RUNNING applications the ResourceManager lists (`{"apps": {"app": [...]}}`, `{"apps": null}` if none).

    Raises urllib.error.URLError / OSError when it does not answer, DiscoveryError when it answers something else.
    """
    url = rm_url.rstrip("/") + RUNNING_APPS_PATH
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310  (http(s) only)
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        body = response.read()
    try:
        document = json.loads(body)
    except ValueError:
        msg = f"{url}: expected the ResourceManager's JSON application list, found {len(body)} bytes of non-JSON"
        raise DiscoveryError(msg) from None
    if not isinstance(document, dict) or "apps" not in document:
        msg = f"{url}: expected a JSON object with an 'apps' member, found {type(document).__name__}"
        raise DiscoveryError(msg)
    apps = document["apps"]
    if apps is None:
        return []
    listed = apps.get("app") if isinstance(apps, dict) else None
    if not isinstance(listed, list) or not all(isinstance(app, dict) for app in listed):
        msg = f"{url}: expected 'apps' to hold an 'app' list of objects, found {json.dumps(apps)[:200]}"
        raise DiscoveryError(msg)
    return listed


def host_of(address: str) -> str:
    """The host of an `amHostHttpAddress` (`host:port`, `[v6]:port`, possibly with a scheme)."""
    address = address.split("://", 1)[-1].split("/", 1)[0]
    if address.startswith("["):
        return address[: address.index("]") + 1]
    return address.rsplit(":", 1)[0] if ":" in address else address


def stream_targets(apps: list[dict[str, Any]], app_name: str, port: int) -> list[dict[str, Any]]:
    """One file_sd target group per RUNNING application called `app_name` (newest first): its AM host at `port`.

    Normally one; two while a deploy replaces the step (the old query stops at a batch boundary). An application
    whose AM has no address yet is left out until it has one.
    """
    running = [app for app in apps if app.get("name") == app_name and app.get("state", "RUNNING") == "RUNNING"
               and app.get("amHostHttpAddress")]
    running.sort(key=lambda app: (int(app.get("startedTime") or 0), str(app.get("id", ""))), reverse=True)
    return [{"targets": [f"{host_of(str(app['amHostHttpAddress']))}:{port}"],
             "labels": {APPLICATION_LABEL: str(app.get("id", ""))}} for app in running]


def write_targets(path: Path, groups: list[dict[str, Any]]) -> bool:
    """Replace `path` with the target groups atomically (temporary file, fsync, rename); False if already equal."""
    text = json.dumps(groups, indent=2, sort_keys=True) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # missing or unreadable: write it
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # the agent and operators read it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def refresh(output: Path, *, app_name: str, port: int, rm_url: str | None = None, yarn_site: Path = YARN_SITE,
            timeout: float = DEFAULT_TIMEOUT_SECONDS,
            context: ssl.SSLContext | None = None) -> list[dict[str, Any]] | None:
    """One pass: ask YARN, rewrite the file if the targets changed. Returns the groups, or None (file untouched)
    when the ResourceManager did not answer as expected; never raises for that."""
    url = rm_url or resource_manager_url(yarn_site)
    try:
        apps = fetch_running_apps(url, timeout=timeout, context=context)
    except (urllib.error.URLError, OSError, DiscoveryError) as error:
        reason = getattr(error, "reason", None) or error
        log.warning("expected the running applications from the ResourceManager at %s, found an error (%s); "
                    "%s left as it was", url, reason, output)
        return None
    groups = stream_targets(apps, app_name, port)
    if write_targets(output, groups):
        found = ", ".join(target for group in groups for target in group["targets"]) or "none (not running)"
        log.info("%s targets of YARN application %r: %s", output, app_name, found)
    return groups


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--app-name", required=True, help="YARN application name (the stream's step name).")
    parser.add_argument("--port", required=True, type=int, help="The driver's metrics port.")
    parser.add_argument("--output", required=True, type=Path, help="The file_sd JSON file the agent reads.")
    parser.add_argument("--resource-manager", default=None,
                        help="ResourceManager web URL (default: from yarn-site.xml on every pass).")
    parser.add_argument("--yarn-site", type=Path, default=YARN_SITE, help="Hadoop yarn-site.xml.")
    parser.add_argument("--ca-file", default=None, help="CA bundle for an HTTPS ResourceManager.")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_SECONDS, help="Seconds between passes.")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="Request timeout, seconds.")
    parser.add_argument("--once", action="store_true", help="One pass; exit 1 if the ResourceManager did not answer.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Refresh the file every `--interval` seconds until stopped (or once); no error stops the loop."""
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
    while True:
        try:
            groups = refresh(args.output, app_name=args.app_name, port=args.port, rm_url=args.resource_manager,
                             yarn_site=args.yarn_site, timeout=args.timeout, context=context)
        except Exception as error:  # noqa: BLE001  (a full disk, a vanished directory: log it, try again)
            log.error("could not refresh %s: %s: %s", args.output, type(error).__name__, error)
            groups = None
        if args.once:
            return 0 if groups is not None else 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
