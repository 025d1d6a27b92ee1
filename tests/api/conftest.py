"""A real uvicorn server on a free loopback port, over the session's real Kafka broker, for the API tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry, start_http_server

from apps.api.main import create_app
from libs.api.auth import LocalTokenIssuer, Role
from libs.api.batches import BatchRunner
from libs.api.context import ApiContext, build_context
from libs.api.ratelimit import RateLimiter
from libs.api.stream_lag import LagSource
from libs.api.warehouse import AnalyticsWarehouse
from libs.kafka.broker import free_port
from libs.settings import Settings
from tests.api.batch_targets import gated_batch
from tests.ingest.helpers import ingest_settings


@dataclass
class Server:
    """A running API: its base URL, its context (settings, service, audit log) and a token factory."""

    url: str
    context: ApiContext
    issuer: LocalTokenIssuer

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def token(self, *roles: Role, subject: str = "tester") -> str:
        return self.issuer.issue(subject, roles)

    def headers(self, *roles: Role, subject: str = "tester", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, subject=subject)}", **extra}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def start_server(context: ApiContext) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve create_app(context) with uvicorn in a thread; returns once it accepts connections."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=context), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn exited while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def serve(tmp_path: Path, kafka_broker) -> Iterator[Callable[..., Server]]:
    """A factory of servers over the session broker (topics, keys, audit log and stores under tmp_path)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def factory(settings: Settings | None = None, *, limiter: RateLimiter | None = None,
                max_body_bytes: int = 64 * 1024) -> Server:
        settings = settings or ingest_settings(kafka_broker, tmp_path)
        api = settings.api.model_copy(update={"max_body_bytes": max_body_bytes})
        settings = settings.model_copy(update={"api": api})
        context = build_context(settings, registry=CollectorRegistry(), limiter=limiter,
                                batches=BatchRunner(settings, target=gated_batch, check=lambda _settings, _day: None))
        server, thread, url = start_server(context)
        running.append((server, thread))
        return Server(url, context, LocalTokenIssuer(settings))

    yield factory
    for server, thread in running:
        stop_server(server, thread)


@pytest.fixture
def api(serve: Callable[..., Server]) -> Server:
    """One API server for the test."""
    return serve()


# ------------------------------------------------------------------------------------- analytics (no Kafka needed)

@dataclass
class AnalyticsServer:
    """An API over a warehouse the test wrote (reads need no broker: the producer is created on first ingest)."""

    url: str
    context: ApiContext
    issuer: LocalTokenIssuer

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def headers(self, *roles: Role, subject: str = "analyst-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(subject, roles)}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture
def serve_analytics(tmp_path: Path) -> Iterator[Callable[..., AnalyticsServer]]:
    """A factory of API servers on settings under tmp_path (warehouse at settings.warehouse.duckdb_path)."""
    from libs.api.showcase import running_server, sample_settings  # noqa: PLC0415

    stack = contextlib.ExitStack()

    def factory(*, lag_sources: Sequence[LagSource] = (), web_assets: Path | None = None,
                settings: Settings | None = None, warehouse: AnalyticsWarehouse | None = None) -> AnalyticsServer:
        settings = settings or sample_settings(tmp_path / "api")
        extra: dict[str, Any] = {"web_assets": web_assets} if web_assets is not None else {}
        if warehouse is not None:
            extra["warehouse"] = warehouse
        context = build_context(settings, registry=CollectorRegistry(), lag_sources=lag_sources, **extra)
        server = stack.enter_context(running_server(context))
        return AnalyticsServer(server.url, context, LocalTokenIssuer(settings))

    with stack:
        yield factory


@pytest.fixture
def stream_endpoint() -> Iterator[str]:
    """The stream's real metrics (libs.streaming.metrics) on a Prometheus HTTP endpoint, lag 7 + 5 over two
    partitions."""
    from libs.streaming.metrics import StreamMetrics  # noqa: PLC0415  (imports PySpark's listener API)

    metrics = StreamMetrics(CollectorRegistry())
    metrics.consumer_lag.labels(topic="medical-claims-raw", partition="0").set(7)
    metrics.consumer_lag.labels(topic="medical-claims-raw", partition="1").set(5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join(timeout=10)
