"""The API in a background thread on a free loopback port, and the dashboard screenshot of a sample warehouse.

`running_server` serves an ApiContext with uvicorn in a thread until the block ends (the browser test's server);
`screenshot_sample_dashboard` builds the sample warehouse (libs.api.sample_warehouse) in a temporary directory,
serves it, and captures the page (libs.api.dashboard_capture) - what `claims api screenshot` runs to regenerate
docs/images/dashboard.png, with the same code the browser test uses.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry

from libs.api.auth import LocalTokenIssuer, Role
from libs.api.context import ApiContext, build_context
from libs.api.dashboard_capture import DashboardCapture, capture_dashboard
from libs.api.sample_warehouse import SampleWarehouse, build_sample_warehouse
from libs.api.stream_lag import LagSource
from libs.kafka.broker import free_port
from libs.settings import ApiSettings, KafkaSettings, LakeSettings, SecuritySettings, Settings, WarehouseSettings

START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RunningServer:
    """A served API: its base URL and context."""

    url: str
    context: ApiContext


@contextmanager
def running_server(context: ApiContext) -> Iterator[RunningServer]:
    """Serve `context` on 127.0.0.1:<free port> in a daemon thread; stops (and closes the context) on exit."""
    from apps.api.main import create_app  # noqa: PLC0415  (libs do not import apps at module load; the app wires libs)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=context), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"expected uvicorn to serve on 127.0.0.1:{port} within {START_TIMEOUT_SECONDS:.0f} s, found it not"
            raise RuntimeError(msg)
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", context)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def sample_settings(root: Path, *, kafka_bootstrap: str = "127.0.0.1:9") -> Settings:
    """Local settings with keys, audit log, stores and warehouse under `root` (Kafka is not needed to read)."""
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        security=SecuritySettings(local_key_file=root / "keys" / "keyring.json", audit_log=root / "audit.jsonl"),
        lake=LakeSettings(root=str(root / "lake"), checkpoint_root=str(root / "checkpoints")),
        warehouse=WarehouseSettings(duckdb_path=root / "warehouse" / "claims.duckdb"),
        api=ApiSettings(idempotency_db=root / "idempotency.sqlite3"),
    )


def screenshot_sample_dashboard(output: Path, *, count: int = 4000, seed: int = 7,
                                lag_sources: Sequence[LagSource] | None = None) -> tuple[DashboardCapture,
                                                                                         SampleWarehouse]:
    """Build a sample warehouse of `count` generated claims, serve it, and screenshot /dashboard into `output`."""
    with tempfile.TemporaryDirectory(prefix="dashboard-") as directory:
        settings = sample_settings(Path(directory))
        sample = build_sample_warehouse(settings.warehouse.duckdb_path, count=count, seed=seed)
        context = build_context(settings, registry=CollectorRegistry(), lag_sources=lag_sources)
        token = LocalTokenIssuer(settings).issue("dashboard-screenshot", [Role.ANALYST])
        with running_server(context) as server:
            capture = capture_dashboard(server.url, token, output)
    return capture, sample
