"""The worker side of generated runs (libs.ingest.generated): chunks of claim JSON in, protected claims produced.

A module of its own, run as `python -m libs.ingest.workers <control fd> <data fd>`, importing only what a worker needs
(the claim model, PHI protection, the producer). Not multiprocessing's spawn: that re-imports the caller's main module
in every worker (for `claims run`, the whole CLI with the generator's ICD-10-CM tables: 2.5 s before the first claim
is produced). The protocol runs over two inherited pipes wrapped as multiprocessing Connections: the parent writes the
WorkerSpec (pickled) and then the chunks on the data pipe, the worker answers on the control pipe.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType

import orjson
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from libs.kafka.producer import ClaimProducer
from libs.kafka.topics import Topics
from libs.model import Claim
from libs.phi.protector import PhiProtector
from libs.settings import Settings

INVALID_CLAIM = "INVALID_CLAIM"
INDEX_BYTES = 8


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to build its producer (pickled to the process)."""

    settings: Settings
    topics: Topics
    correlation_id: str
    track: bool


def worker_main(conn: Connection, data: Connection, spec: WorkerSpec) -> None:
    """A producer process: chunks of generated claim JSON in, validated + protected + produced claims out."""
    stop = threading.Event()
    # Ctrl-C reaches every process of the terminal's group: the parent decides when to stop, the worker then flushes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    producer: ClaimProducer | None = None
    try:
        protector = PhiProtector.from_settings(spec.settings)
        producer = ClaimProducer(spec.settings.kafka, spec.topics.raw, protect=protector.protect,
                                 dead_letter_topic=spec.topics.dead_letter, registry=CollectorRegistry(),
                                 correlation_id=spec.correlation_id, track_deliveries=spec.track)
        gc.freeze()  # the imported modules and the producer's state never need collecting
        conn.send(("ready",))
        while not stop.is_set():
            payload = data.recv_bytes()
            if not payload:
                break
            _produce_chunk(producer, payload)
            report = producer.report
            conn.send(("progress", report.sent, report.delivered, report.failed, report.bytes_delivered))
        conn.send(("done", producer.close()))
    except Exception as exc:  # noqa: BLE001  (report any failure to the parent instead of dying silently)
        partial = producer.close(timeout=30) if producer is not None else None
        with contextlib.suppress(OSError):
            conn.send(("failed", type(exc).__name__, partial))
    finally:
        conn.close()
        data.close()


def _produce_chunk(producer: ClaimProducer, payload: bytes) -> None:
    first = int.from_bytes(payload[:INDEX_BYTES], "big")
    validate = Claim.model_validate_json
    for offset, line in enumerate(payload[INDEX_BYTES:].split(b"\n")):
        index = first + offset
        try:
            claim = validate(line)
        except ValidationError as exc:
            # Never expected from the generator; counted against the claim, like a protector failure.
            claim_id = _claim_id_of(line)
            producer.ledger.claim_serialization_failed(claim_id, index, f"{INVALID_CLAIM}:{exc.error_count()}")
            continue
        producer.send(claim, index=index)
    producer.poll(0)


def _claim_id_of(line: bytes) -> str:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return ""
    claim_id = value.get("claim_id") if isinstance(value, dict) else None
    return claim_id if isinstance(claim_id, str) else ""


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m libs.ingest.workers CONTROL_FD DATA_FD` (started by libs.ingest.generated, never by hand)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not all(arg.isdigit() for arg in args):
        sys.stderr.write("usage: python -m libs.ingest.workers CONTROL_FD DATA_FD (started by libs.ingest.generated)\n")
        return 2
    conn = Connection(int(args[0]), readable=False)
    data = Connection(int(args[1]), writable=False)
    # Run as `-m`, this file is __main__; the spec was pickled against the importable module: use that one.
    workers = importlib.import_module("libs.ingest.workers")

    spec = data.recv()
    if not isinstance(spec, workers.WorkerSpec):
        sys.stderr.write(f"expected a WorkerSpec first on the data pipe, found {type(spec).__name__}\n")
        return 2
    workers.worker_main(conn, data, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
