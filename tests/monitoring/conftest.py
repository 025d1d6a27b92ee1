"""Fixtures of the monitoring tests: the Prometheus tools (fetched once if missing) and free loopback ports."""

from __future__ import annotations

import socket

import pytest

from libs.monitoring.tools import ToolNotFoundError, ensure_tools


@pytest.fixture(scope="session")
def prometheus_tools() -> None:
    """promtool, amtool, prometheus and alertmanager present (scripts/fetch_prometheus.sh runs when they are not)."""
    try:
        ensure_tools()
    except ToolNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
