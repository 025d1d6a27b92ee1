"""Idempotency keys for ingestion requests: a retried request sends nothing twice.

Why per record and not per request: a request can end half done (Kafka acknowledged 300 of 500 claims, then stopped
answering: HTTP 503). The client retries with the same `Idempotency-Key`; only the 200 records that were not
acknowledged are sent again, and the answer lists all 500 with the partition and offset each one got, whichever
attempt sent it. A key that completed is answered from the store without sending anything.

Rules (after the IETF httpapi "Idempotency-Key" draft): a key belongs to one request body (same media type, same
bytes: a SHA-256 fingerprint); reusing it for another body is refused (`IdempotencyKeyReusedError`, HTTP 422); a key
whose first request is still running is refused (`IdempotencyKeyInUseError`, HTTP 409). Keys are scoped per client
(the caller's identity) and forgotten after `ttl_seconds`.

The store is a SQLite file (0600), which serialises check-and-set across threads and processes on one host. Replicas
on several hosts need a shared store (docs/api.md says which); the interface here is what such a store implements.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from libs.ingest.errors import IngestError

DEFAULT_TTL_SECONDS = 24 * 3600
STALE_RUNNING_SECONDS = 600.0  # a "running" key older than this belongs to a process that died: it may be retried
MAX_KEY_LENGTH = 255


class IdempotencyKeyInUseError(IngestError):
    """Another request with the same key is still running."""

    retryable = True


class IdempotencyKeyReusedError(IngestError):
    """The key was used before for a different request body."""


@dataclass
class KeyState:
    """What earlier attempts with one key settled: record index -> its answer entry (accepted or rejected)."""

    settled: dict[int, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    records: int = 0
    correlation_id: str | None = None


def fingerprint(media_type: str, body: bytes) -> str:
    """The identity of a request body for idempotency: SHA-256 over its media type and bytes."""
    digest = hashlib.sha256(media_type.encode("ascii", errors="replace"))
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def valid_key(key: str) -> bool:
    """1-255 visible ASCII characters (the header's value as sent)."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


class IdempotencyStore:
    """SQLite-backed key states; `begin` claims a key for one request, `finish` records what it settled."""

    def __init__(self, path: Path, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        with contextlib.closing(self._connect()) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS idempotency_keys (scope_key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                "running INTEGER NOT NULL, updated_at REAL NOT NULL, created_at REAL NOT NULL, state BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def begin(self, scope: str, key: str, body_fingerprint: str) -> KeyState:
        """Claim `key` (within `scope`) for a request; returns what earlier attempts settled (empty for a new key)."""
        scope_key = f"{scope}\0{key}"
        now = self._clock()
        with self._lock, contextlib.closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - self.ttl_seconds,))
                row = connection.execute(
                    "SELECT fingerprint, running, updated_at, state FROM idempotency_keys WHERE scope_key = ?",
                    (scope_key,)).fetchone()
                if row is None:
                    state = KeyState()
                    connection.execute("INSERT INTO idempotency_keys VALUES (?, ?, 1, ?, ?, ?)",
                                       (scope_key, body_fingerprint, now, now, _dump(state)))
                else:
                    state = self._resume(connection, scope_key, row, body_fingerprint, now)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return state

    def _resume(self, connection: sqlite3.Connection, scope_key: str, row: tuple[Any, ...], body_fingerprint: str,
                now: float) -> KeyState:
        stored_fingerprint, running, updated_at, blob = row
        if stored_fingerprint != body_fingerprint:
            msg = ("Idempotency-Key: expected the same request body as the first request with this key, found a "
                   "different one; use a new key for a new request")
            raise IdempotencyKeyReusedError(msg)
        if running and now - updated_at < STALE_RUNNING_SECONDS:
            msg = "Idempotency-Key: a request with this key is still being processed; retry when it has answered"
            raise IdempotencyKeyInUseError(msg)
        state = _load(blob)
        if not state.complete:
            connection.execute("UPDATE idempotency_keys SET running = 1, updated_at = ? WHERE scope_key = ?",
                               (now, scope_key))
        return state

    def finish(self, scope: str, key: str, state: KeyState) -> None:
        """Record what this attempt settled and release the key."""
        with self._lock, contextlib.closing(self._connect()) as connection:
            connection.execute("UPDATE idempotency_keys SET running = 0, updated_at = ?, state = ? WHERE scope_key = ?",
                               (self._clock(), _dump(state), f"{scope}\0{key}"))

    def release(self, scope: str, key: str) -> None:
        """Release a key whose request failed before settling anything new (state unchanged)."""
        with self._lock, contextlib.closing(self._connect()) as connection:
            connection.execute("UPDATE idempotency_keys SET running = 0 WHERE scope_key = ?", (f"{scope}\0{key}",))


def _dump(state: KeyState) -> bytes:
    return orjson.dumps({"settled": {str(index): entry for index, entry in state.settled.items()},
                         "complete": state.complete, "records": state.records,
                         "correlation_id": state.correlation_id})


def _load(blob: bytes) -> KeyState:
    data = orjson.loads(blob)
    return KeyState(settled={int(index): entry for index, entry in data["settled"].items()},
                    complete=bool(data["complete"]), records=int(data["records"]),
                    correlation_id=data.get("correlation_id"))
