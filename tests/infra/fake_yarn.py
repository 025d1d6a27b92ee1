"""A loopback HTTP server answering like the YARN ResourceManager's REST API (`GET /ws/v1/cluster/apps`), for the
stream driver discovery's tests (infra/yarn_discovery.py)."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, ClassVar


def application(app_id: str, name: str, host: str, *, started: int = 1_700_000_000_000,
                state: str = "RUNNING") -> dict[str, Any]:
    """One application as the ResourceManager lists it (the fields the discovery reads, and some it ignores)."""
    return {"id": app_id, "user": "hadoop", "name": name, "queue": "default", "state": state,
            "finalStatus": "UNDEFINED", "progress": 10.0, "applicationType": "SPARK", "startedTime": started,
            "amContainerLogs": f"http://{host}:8042/node/containerlogs/container_1_0001_01_000001/hadoop",
            "amHostHttpAddress": f"{host}:8042", "runningContainers": 3}


class ResourceManager(http.server.BaseHTTPRequestHandler):
    """Answers every GET with `document` as JSON (or `raw` bytes) and `status`; records the paths asked for."""

    document: ClassVar[dict[str, Any]] = {"apps": None}
    raw: ClassVar[bytes | None] = None
    status: ClassVar[int] = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = self.raw if self.raw is not None else json.dumps(self.document).encode("utf-8")
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def serve(port: int = 0) -> tuple[http.server.ThreadingHTTPServer, type[ResourceManager], threading.Thread]:
    """Start a ResourceManager on 127.0.0.1 (`port` 0: a free one); nothing RUNNING until the test says so."""
    handler = type("RM", (ResourceManager,), {"document": {"apps": None}, "raw": None, "status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, handler, thread
