"""A metrics endpoint that Prometheus can scrape; a taken port is logged, not fatal."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from libs.monitoring.serve import metrics_address, serve_metrics
from libs.settings import Environment
from tests.monitoring.conftest import free_port


def test_the_registry_is_served_on_loopback():
    registry = CollectorRegistry()
    Counter("demo_served_total", "d", registry=registry).inc(3)
    port = free_port()

    served = serve_metrics(port, registry)

    assert served is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert "demo_served_total 3.0" in response.read().decode()
    finally:
        served[0].shutdown()


def test_a_taken_port_is_reported_and_the_process_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert serve_metrics(port, CollectorRegistry()) is None
    assert f"metrics not served: port {port} unavailable" in caplog.text
    assert serve_metrics(0) is None


def test_deployed_processes_listen_on_every_interface():
    assert metrics_address(Environment.LOCAL) == "127.0.0.1"
    assert metrics_address(Environment.PROD) == "0.0.0.0"
