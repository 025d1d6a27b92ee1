"""Generated claims into Kafka, PHI protected, fast enough that producing never holds `make run` back.

Why this shape: the generator is one seeded random stream (libs.generator.engine) - which claim becomes a replacement,
a void or a fraud burst depends on every draw before it - so generation itself stays sequential, and the same
(count, seed) gives the same claims whatever happens downstream. What parallelises is the rest, which costs more per
claim than generating it: validating into the canonical model, protecting the PHI (HMAC tokens, one AES-GCM seal per
record), serialising and producing. So the calling process generates and hands compact JSON lines, in chunks, to
worker processes; each worker validates, protects and produces through its own idempotent ClaimProducer and reports
its counts back. Which worker sends a claim changes nothing in the claim: the set of claims is fixed by (count, seed)
and tested to be the same for every worker count.

Flow control: each worker holds at most CREDITS_PER_WORKER chunks; the generator runs up to BUFFERED_CHUNKS ahead and
then waits for a credit, so memory stays bounded whatever the count. A sender thread per worker writes the chunks
into an enlarged pipe while the generator goes on generating. Workers ignore SIGINT (the terminal sends
it to the whole process group); the caller's `should_stop` ends generation, and the workers then flush what they have.
Every record carries the run's correlation id with its index in the run (`<id>:<n>`, n = 1..count).

`workers=0` runs everything in the calling thread (small counts, tests); `default_workers` picks the process count.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import REGISTRY, CollectorRegistry

from libs.generator import GeneratorConfig, generate_records
from libs.ingest.core import ProgressCallback, ingest_topics, load_protector, new_correlation_id
from libs.ingest.workers import INDEX_BYTES, WorkerSpec
from libs.kafka.producer import ClaimProducer, DeliveryFailure, ProduceReport, producer_metrics
from libs.model import Claim
from libs.phi import PhiProtector
from libs.phi.logging import correlation_scope, get_logger
from libs.settings import Settings

CHUNK_CLAIMS = 200  # ~450 KB of JSON: two chunks fit in one enlarged pipe buffer (PIPE_BYTES)
CREDITS_PER_WORKER = 2
BUFFERED_CHUNKS = 32  # chunks generated ahead of the workers
# A pipe holds 64 KB by default: a chunk would then be written in a dozen pieces, and between two pieces the sender
# thread waits for the GIL the generating thread holds (up to 5 ms each time), which starved the workers. With the
# buffer raised to what Linux allows an unprivileged process (1 MB by default), a chunk goes in one write.
PIPE_BYTES = 1 << 20
IN_PROCESS_BELOW = 2_000  # fewer claims than this: starting worker processes costs more than it saves
MAX_WORKERS = 4
WORKER_START_TIMEOUT_SECONDS = 120.0
WORKER_EXITED = "PRODUCER_WORKER_EXITED"

log = get_logger("claims.ingest")


def default_workers(count: int, cpus: int | None = None) -> int:
    """Worker processes for `count` claims: none for small runs, else one per core beside the generator (max 4)."""
    if count < IN_PROCESS_BELOW:
        return 0
    return max(1, min((cpus or os.cpu_count() or 1) - 1, MAX_WORKERS))


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact, as the canonical model writes amounts
    msg = f"generated claim: expected JSON-serialisable values, found {type(value).__name__}"
    raise TypeError(msg)


def encode_record(record: dict[str, Any]) -> bytes:
    """A generator record as one JSON line that `Claim.model_validate_json` reads back as the same claim.

    Nulls are kept (the model reads null as "absent" for every optional field): dropping them first would cost a
    recursive walk per claim for nothing.
    """
    return orjson.dumps(record, default=_json_default)


def generated_claims(count: int, seed: int) -> Iterator[Claim]:
    """The claims a run of (count, seed) produces, in generation order (the same as libs.generator's)."""
    for record, _labels in generate_records(GeneratorConfig(count=count, seed=seed)):
        yield Claim.model_validate_json(encode_record(record))


@contextlib.contextmanager
def _generation_gc() -> Iterator[None]:
    """Fewer full garbage collections while generating; restored afterwards.

    The generator keeps a large, long-lived state (population, recent claims, billed member-days) and allocates
    hundreds of short-lived containers per claim; with the default thresholds Python rescans that state every few
    hundred claims, which costs about a sixth of generation time. Freezing moves what exists now out of the
    collector's way; claims are freed by reference counting (they hold no cycles) either way.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def produce_generated(
    settings: Settings,
    count: int,
    seed: int,
    *,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    correlation_id: str | None = None,
    track_deliveries: bool = False,
    protector: PhiProtector | None = None,
    registry: CollectorRegistry = REGISTRY,
    log_file: Path | None = None,
) -> ProduceReport:
    """Generate `count` claims for `seed`, protect their PHI and produce them to the raw topic.

    Returns the run's ProduceReport (counts, failures by claim id, and with `track_deliveries` every claim's
    partition and offset). `on_progress` receives a running report (`sent`, `delivered`, `failed`) from the calling
    thread. Raises ProtectorUnavailableError or KafkaUnavailableError before generating anything. `log_file`
    receives the worker processes' stderr (librdkafka and client warnings) instead of the terminal.
    """
    if count < 0:
        msg = f"count: expected >= 0 claims, found {count}"
        raise ValueError(msg)
    protector = protector or load_protector(settings)  # fails fast, and creates a local keyring once, here
    topics = ingest_topics(settings)
    correlation_id = correlation_id or new_correlation_id()
    stop = should_stop or (lambda: False)
    workers = default_workers(count) if workers is None else workers
    if workers < 0:
        msg = f"workers: expected >= 0, found {workers}"
        raise ValueError(msg)
    with correlation_scope(correlation_id):
        log.info("produce run started", topic=topics.raw, claims=count, seed=seed, workers=workers)
        if workers == 0:
            producer = ClaimProducer(settings.kafka, topics.raw, protect=protector.protect,
                                     dead_letter_topic=topics.dead_letter, registry=registry,
                                     correlation_id=correlation_id, track_deliveries=track_deliveries)
            with _generation_gc():
                report = producer.produce_all(generated_claims(count, seed), should_stop=stop,
                                              on_progress=on_progress)
        else:
            spec = WorkerSpec(settings=settings, topics=topics, correlation_id=correlation_id,
                              track=track_deliveries)
            pool = _WorkerPool(spec, workers, registry=registry, on_progress=on_progress, log_file=log_file)
            report = pool.run(GeneratorConfig(count=count, seed=seed), stop)
        log.info("produce run finished", delivered=report.delivered, failed=report.failed,
                 rejections=report.rejections_delivered)
    return report


# --------------------------------------------------------------------------------------------------------------------
# The worker pool (parent side)
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    conn: Connection  # worker -> parent: ready, progress, done, failed
    data: Connection  # parent -> worker: chunks, written by `sender`
    outbox: queue.SimpleQueue[bytes | None] = field(default_factory=queue.SimpleQueue)
    sender: threading.Thread | None = None
    credits: int = 0
    ready: bool = False
    alive: bool = True
    in_flight: deque[tuple[int, int]] = field(default_factory=deque)  # (first index, claims) of unfinished chunks
    dealt: int = 0  # claims handed to this worker
    progress: tuple[int, int, int, int] = (0, 0, 0, 0)  # sent, delivered, failed, bytes delivered
    report: ProduceReport | None = None


class _WorkerPool:
    """Starts the workers, deals chunks out against credits, and merges the workers' reports."""

    def __init__(self, spec: WorkerSpec, workers: int, *, registry: CollectorRegistry,
                 on_progress: ProgressCallback | None, log_file: Path | None) -> None:
        self._spec = spec
        self._on_progress = on_progress
        self._metrics = producer_metrics(registry)
        self._report = ProduceReport(topic=spec.topics.raw, correlation_id=spec.correlation_id)
        self._pending: deque[tuple[int, list[bytes]]] = deque()  # generated chunks not yet dealt to a worker
        self._started = time.monotonic()
        self._workers: list[_Worker] = []
        for number in range(workers):
            self._workers.append(_start_worker(number, spec, log_file))

    def run(self, config: GeneratorConfig, should_stop: Callable[[], bool]) -> ProduceReport:
        """Generate and deal out every claim (or until `should_stop`), then collect the workers' reports."""
        try:
            with _generation_gc():
                self._generate(config, should_stop)
            self._finish()
        finally:
            for worker in self._workers:
                worker.outbox.put(None)
                if worker.sender is not None:
                    worker.sender.join(timeout=5)
                try:
                    worker.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    worker.process.terminate()
                    worker.process.wait(timeout=5)
                worker.conn.close()
                worker.data.close()
        self._report.elapsed_seconds = time.monotonic() - self._started
        self._report.deliveries.sort(key=lambda delivery: delivery.index)
        return self._report

    def _generate(self, config: GeneratorConfig, should_stop: Callable[[], bool]) -> None:
        lines: list[bytes] = []
        first = 1
        for record, _labels in generate_records(config):
            lines.append(encode_record(record))
            if len(lines) == CHUNK_CLAIMS:
                if should_stop():
                    self._report.interrupted = True
                    return
                self._pending.append((first, lines))
                first += len(lines)
                lines = []
                self._pump(until=BUFFERED_CHUNKS - 1)
        if lines:
            if should_stop():
                self._report.interrupted = True
                return
            self._pending.append((first, lines))
        self._pump(until=0)

    def _pump(self, until: int) -> None:
        """Deal buffered chunks to workers that have credit; wait for credit while more than `until` chunks wait.

        Generation runs ahead of the workers by up to BUFFERED_CHUNKS chunks, so it does not wait for their start-up
        or for a slow chunk; beyond that it waits, which bounds memory.
        """
        self._serve([worker for worker in self._workers if worker.alive], timeout=0)
        while True:
            live = [worker for worker in self._workers if worker.alive]
            if not live:  # every worker exited: nothing more can be produced
                self._report.interrupted = True
                while self._pending:
                    self._lost(*_span(self._pending.popleft()))
                return
            for worker in sorted(live, key=lambda worker: -worker.credits):
                while worker.credits > 0 and self._pending:
                    self._deal(worker, *self._pending.popleft())
            if len(self._pending) <= until:
                return
            self._serve(live, timeout=WORKER_START_TIMEOUT_SECONDS)

    def _deal(self, worker: _Worker, first: int, lines: list[bytes]) -> None:
        worker.credits -= 1
        worker.dealt += len(lines)
        worker.in_flight.append((first, len(lines)))
        worker.outbox.put(first.to_bytes(INDEX_BYTES, "big") + b"\n".join(lines))

    def _serve(self, workers: list[_Worker], timeout: float) -> None:
        """Handle every message the workers sent; waits up to `timeout` for the first one."""
        by_conn = {worker.conn: worker for worker in workers}
        for conn in wait(list(by_conn), timeout=timeout):
            worker = by_conn[conn]  # type: ignore[index]
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._exited(worker)
                continue
            self._handle(worker, message)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            worker.credits += CREDITS_PER_WORKER
        elif kind == "progress":
            worker.credits += 1
            if worker.in_flight:
                worker.in_flight.popleft()
            self._progress(worker, message[1:5])
        elif kind == "done":
            worker.report = message[1]
            worker.alive = False
        elif kind == "failed":
            self._exited(worker, detail=str(message[1]), report=message[2])

    def _progress(self, worker: _Worker, counts: tuple[int, int, int, int]) -> None:
        before = worker.progress
        worker.progress = counts
        # The parent's metrics show what the workers delivered (their own registries are not scraped).
        self._metrics.messages.labels(result="delivered").inc(counts[1] - before[1])
        self._metrics.messages.labels(result="failed").inc(counts[2] - before[2])
        self._metrics.bytes.inc(counts[3] - before[3])
        if self._on_progress is not None:
            snapshot = ProduceReport(topic=self._report.topic, correlation_id=self._report.correlation_id,
                                     sent=sum(w.progress[0] for w in self._workers),
                                     delivered=sum(w.progress[1] for w in self._workers),
                                     failed=sum(w.progress[2] for w in self._workers),
                                     elapsed_seconds=time.monotonic() - self._started)
            self._on_progress(snapshot)

    def _exited(self, worker: _Worker, detail: str | None = None, report: ProduceReport | None = None) -> None:
        """A worker is gone before its final report: whatever it was dealt and did not report delivered or failed is
        reported as not delivered, by index range (its fate is unknown: it may or may not be in the topic)."""
        if not worker.alive:
            return
        worker.alive = False
        if report is None:  # no final word from the worker: trust its last progress message
            _sent, delivered, failed, size = worker.progress
            report = ProduceReport(topic=self._report.topic, sent=delivered + failed, delivered=delivered,
                                   failed=failed, bytes_delivered=size)
        worker.report = report
        unknown = worker.dealt - report.sent
        if unknown > 0:
            ranges = ", ".join(f"{first}-{first + claims - 1}" for first, claims in worker.in_flight)
            reason = f"{WORKER_EXITED}:{detail}" if detail else WORKER_EXITED
            report.sent += unknown
            report.failed += unknown
            report.failures.append(DeliveryFailure(claim_id=None, reason=reason,
                                                   location=f"{unknown} of generated records {ranges or '?'}"))
        worker.in_flight.clear()

    def _lost(self, first: int, claims: int) -> None:
        self._report.sent += claims
        self._report.failed += claims
        self._report.failures.append(DeliveryFailure(claim_id=None, reason=WORKER_EXITED,
                                                     location=f"generated records {first}-{first + claims - 1}"))

    def _finish(self) -> None:
        """Tell every worker the input has ended, wait for their final reports, and merge them."""
        for worker in self._workers:
            worker.outbox.put(None)  # the sender writes the end-of-input marker after the last chunk
        while any(worker.alive for worker in self._workers):
            self._serve([worker for worker in self._workers if worker.alive], timeout=WORKER_START_TIMEOUT_SECONDS)
        for worker in self._workers:
            if worker.report is not None:
                self._report.merge(worker.report)
                self._progress(worker, (worker.report.sent, worker.report.delivered, worker.report.failed,
                                        worker.report.bytes_delivered))


def _start_worker(number: int, spec: WorkerSpec, log_file: Path | None) -> _Worker:
    """A worker process (`python -m libs.ingest.workers`) on two fresh pipes, and the thread that feeds it."""
    control_read, control_write = os.pipe()
    data_read, data_write = os.pipe()
    with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere the default buffer is kept
        fcntl.fcntl(data_write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(log_file.open("ab")) if log_file is not None else None
        process = subprocess.Popen(  # noqa: S603  (fixed argv: this interpreter and a module of this package)
            [sys.executable, "-m", "libs.ingest.workers", str(control_write), str(data_read)],
            pass_fds=(control_write, data_read), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    os.close(control_write)
    os.close(data_read)
    worker = _Worker(number, process, Connection(control_read, writable=False), Connection(data_write, readable=False))
    worker.outbox.put(pickle.dumps(spec))
    worker.sender = threading.Thread(target=_send_chunks, args=(worker,), name=f"claims-chunks-{number}", daemon=True)
    worker.sender.start()
    return worker


def _span(chunk: tuple[int, list[bytes]]) -> tuple[int, int]:
    return chunk[0], len(chunk[1])


def _send_chunks(worker: _Worker) -> None:
    """Write the worker's spec and chunks in order; None ends the input (an empty message tells the worker so)."""
    while True:
        chunk = worker.outbox.get()
        try:
            worker.data.send_bytes(chunk if chunk is not None else b"")
        except (BrokenPipeError, OSError):
            return  # the worker is gone; the parent learns it from the control pipe
        if chunk is None:
            return


