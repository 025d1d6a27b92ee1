"""Batch run targets for the API tests (importable top-level functions: the runner starts them in a child process).

`gated_batch` reports "running" and then waits for a gate file before it reports success, so a test controls exactly
when a run is still going (for the 409) and when it ends.
"""

from __future__ import annotations

import time
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path

from libs.settings import Settings

GATE_FILE = "batch-gate"
GATE_TIMEOUT_SECONDS = 120.0


def gated_batch(settings: Settings, day: date | None, conn: Connection) -> None:
    """Report running, wait for <lake root>/batch-gate, then report a succeeded run for `day`."""
    conn.send(("running",))
    gate = Path(settings.lake.root) / GATE_FILE
    deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    conn.send(("succeeded", f"batch-{day}-test", {"silver_claims": 3, "inserted": 3}))
