"""Append-only, hash-chained audit log of re-identification (45 CFR 164.312(b) audit controls).

Why a hash chain: each record carries the SHA-256 of the previous record, and its own hash covers that link, so
editing, deleting or reordering any earlier line breaks verification from that line on. This detects tampering by
anyone who cannot rewrite the whole tail of the file consistently; to also defeat that, ship the log to write-once
storage (S3 Object Lock / CloudWatch Logs) and keep the latest head hash elsewhere - see docs/security.md.

Records hold who, when, which claim, which fields, why and the decision; never the revealed values.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from libs.phi.errors import AuditError

GENESIS_HASH = "0" * 64


class Decision(StrEnum):
    """Outcome of a reveal request."""

    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"  # allowed, but decryption did not verify (tampering or key problem)


def _canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the record without its own `hash` (it includes `prev_hash`)."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class AuditLog:
    """Appends hash-chained JSON lines under an exclusive lock (concurrent CLI sessions stay chained)."""

    def __init__(self, path: Path, clock: Callable[[], str] = _utc_now) -> None:
        self.path = path
        self._clock = clock

    @staticmethod
    def _last_line(handle: Any) -> bytes | None:
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
        chunk, position = b"", end
        while position > 0:
            step = min(4096, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + chunk
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or position == 0:
                return lines[-1]
        return None

    def append(self, *, actor: str, role: str, claim_id: str | None, fields: Sequence[str], reason: str,
               decision: Decision, detail: str | None = None) -> dict[str, Any]:
        """Write one reveal record and return it; AuditError if it cannot be written (callers must then fail closed)."""
        return self.append_event({"event": "phi.reveal", "actor": actor, "role": role, "claim_id": claim_id,
                                  "fields": list(fields), "reason": reason, "decision": decision.value,
                                  "detail": detail}, refusal="; the reveal is refused")

    def append_event(self, fields: dict[str, Any], *, refusal: str = "") -> dict[str, Any]:
        """Chain one record of any event: lock, sequence number, previous hash, fsync (the API's requests too).

        `refusal` ends the AuditError's message (what the caller will not do because the record was not written).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                last = self._last_line(handle)
                previous = orjson.loads(last) if last else None
                record: dict[str, Any] = {"seq": (previous["seq"] + 1) if previous else 1, "ts": self._clock(),
                                          **fields, "prev_hash": previous["hash"] if previous else GENESIS_HASH}
                record["hash"] = record_hash(record)
                handle.write(orjson.dumps(record) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            msg = f"audit log {self.path}: cannot append ({type(exc).__name__}){refusal}"
            raise AuditError(msg) from None
        return record


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify`: how many records were checked and the first problem with its line number."""

    ok: bool
    records: int
    line: int | None = None
    problem: str | None = None
    head_hash: str | None = None


def _line_problem(raw: bytes, previous_hash: str, previous_seq: int) -> tuple[dict[str, Any] | None, str | None]:
    """The parsed record, or why this line breaks the chain."""
    if not raw.strip():
        return None, "blank line inside the log"
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "not valid JSON"
    problem = None
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        problem = "expected a JSON object with a 'hash'"
    elif record.get("prev_hash") != previous_hash:
        problem = "prev_hash does not match the previous record (a line was removed or reordered)"
    elif record_hash(record) != record["hash"]:
        problem = "content does not match its hash (the line was edited)"
    elif record.get("seq") != previous_seq + 1:
        problem = f"expected seq {previous_seq + 1}, found {record.get('seq')}"
    return (None, problem) if problem else (record, None)


def verify(path: Path) -> VerifyResult:
    """Recompute the chain line by line; report the first line whose content or link does not verify."""
    previous_hash, previous_seq, count = GENESIS_HASH, 0, 0
    if path.exists():
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                record, problem = _line_problem(raw, previous_hash, previous_seq)
                if record is None:
                    return VerifyResult(False, count, number, problem)
                previous_hash, previous_seq, count = record["hash"], record["seq"], count + 1
    return VerifyResult(ok=True, records=count, head_hash=previous_hash)
