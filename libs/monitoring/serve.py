"""Serve a metrics registry over HTTP for Prometheus, the same way in every process.

Why a helper: each process (producer, stream, `make run`, the exporter) must bind loopback locally and every interface
in AWS (where the agent on the node scrapes it), and a port already taken must not stop the pipeline: the process
runs on without an endpoint and says so in its log (the scrape target then shows down, which the alerts see).
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from libs.settings import Environment

log = logging.getLogger(__name__)


def metrics_address(environment: Environment) -> str:
    """Loopback on a developer machine; every interface where a node-local agent or a pod scrapes it."""
    return "127.0.0.1" if environment is Environment.LOCAL else "0.0.0.0"  # noqa: S104


def serve_metrics(port: int, registry: CollectorRegistry = REGISTRY, *,
                  environment: Environment = Environment.LOCAL) -> tuple[WSGIServer, threading.Thread] | None:
    """Start a /metrics endpoint on `port` (0 or taken: none, logged); returns the server to shut down, if any."""
    if not port:
        return None
    try:
        served = start_http_server(port, addr=metrics_address(environment), registry=registry)
    except OSError as exc:
        log.warning("metrics not served: port %s unavailable (%s)", port, exc.strerror)
        return None
    log.info("metrics on port %s", port)
    return served
