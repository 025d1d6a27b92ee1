"""ClaimProducer: send canonical claims to the raw topic without losing any acknowledged claim.

Why these settings: the raw topic is the pipeline's system of record for "received", so the producer is idempotent
(`enable.idempotence=true`, which implies `acks=all` and ordered retries: librdkafka retries transient broker errors
itself until `delivery.timeout.ms`), keyed by claim id (a claim and its replacements stay ordered in one partition),
compressed with zstd and batched (linger.ms, batch.size) for throughput. Every claim handed to `send` ends in exactly
one of: delivered (broker acknowledged), failed (permanent error, with the claim id and the broker's error name) or, if
the process is stopped and the final flush times out, unconfirmed (also listed by claim id). Nothing is silent.

Accounting is kept per *ledger* (`DeliveryLedger`): one for a produce run (the CLI, `make run`), or one per request
when a long-lived producer serves many callers (the API). A ledger can track every record (index, claim id, Kafka
partition and offset once acknowledged) or only counts and failures (a 100,000-claim run needs no per-record list).
Every record carries a `correlation_id` header `<ledger id>:<record index>` when the ledger has an id, so one claim can
be followed from the caller's request through the logs of every stage; the header never holds PHI.

Metrics (Prometheus, names fixed by the monitoring dashboards):
    claims_producer_messages_total{result="delivered"|"failed"}
    claims_producer_bytes_total                     bytes of delivered message keys + values
    claims_producer_delivery_latency_seconds        produce() call to broker acknowledgement
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
import weakref
from collections import Counter as Multiset
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import FrameType
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from libs.kafka.client_config import client_config
from libs.kafka.serialize import CORRELATION_HEADER, Protect, claim_key, claim_to_message, correlation_value
from libs.model import Claim, Rejection
from libs.settings import KafkaSettings

# Throughput-oriented, loss-free producer settings. Overrides may change batching, never the delivery guarantees.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "zstd",
    "linger.ms": 20,  # wait up to 20 ms to fill a batch: few, large, well-compressed requests
    "batch.size": 512 * 1024,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 256 * 1024,
    "delivery.timeout.ms": 120_000,  # how long librdkafka retries a message before reporting it failed
    "max.in.flight.requests.per.connection": 5,  # the maximum that keeps ordering with idempotence
}
GUARANTEES = ("enable.idempotence", "acks")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
BUFFER_FULL_POLL_SECONDS = 0.05
PROGRESS_EVERY = 256
# Delivery reports are served every POLL_EVERY sends rather than after each one: a poll per message costs more than
# the produce call itself, and librdkafka queues the reports meanwhile.
POLL_EVERY = 64
BACKGROUND_POLL_SECONDS = 0.1

Headers = list[tuple[str, str | bytes | None]]


class DeliveryResult(StrEnum):
    """Label values of claims_producer_messages_total."""

    DELIVERED = "delivered"
    FAILED = "failed"


class FailureReason(StrEnum):
    """Why a claim was not delivered, when the broker did not give an error name of its own."""

    SERIALIZATION_ERROR = "SERIALIZATION_ERROR"  # the PHI protector or JSON encoding raised
    UNCONFIRMED_AT_EXIT = "UNCONFIRMED_AT_EXIT"  # still queued when the final flush timed out
    NO_DEAD_LETTER_TOPIC = "NO_DEAD_LETTER_TOPIC"  # a rejection arrived but no dead-letter topic was configured


@dataclass(frozen=True)
class ProducerMetrics:
    """The producer's Prometheus collectors, registered once per registry."""

    messages: Counter
    bytes: Counter
    latency: Histogram


# Keyed weakly by registry: a registry's id can be reused after it is garbage-collected (one registry per test).
_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, ProducerMetrics] = weakref.WeakKeyDictionary()
_METRICS_LOCK = threading.Lock()


def producer_metrics(registry: CollectorRegistry = REGISTRY) -> ProducerMetrics:
    """The producer metrics in `registry` (created on first use; tests pass their own registry)."""
    with _METRICS_LOCK:
        metrics = _METRICS.get(registry)
        if metrics is None:
            metrics = ProducerMetrics(
                messages=Counter("claims_producer_messages_total", "Claims by delivery outcome.", ["result"],
                                 registry=registry),
                bytes=Counter("claims_producer_bytes_total", "Bytes (key + value) of delivered claims.",
                              registry=registry),
                latency=Histogram("claims_producer_delivery_latency_seconds",
                                  "Time from produce() to the broker's acknowledgement.", buckets=LATENCY_BUCKETS,
                                  registry=registry),
            )
            _METRICS[registry] = metrics
        return metrics


class TokenBucket:
    """Rate limiter for `--rate` (claims per second) that allows short bursts of up to `burst` claims."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            msg = f"rate: expected claims per second > 0, found {rate}"
            raise ValueError(msg)
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens`, sleeping until they are available; returns the seconds slept."""
        slept = 0.0
        while True:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= tokens - 1e-9:  # tolerance: float sums of refills may fall short by an ulp
                self._tokens = max(0.0, self._tokens - tokens)
                return slept
            wait = (tokens - self._tokens) / self.rate
            self._sleep(wait)
            slept += wait


@dataclass(frozen=True)
class DeliveryFailure:
    """A record that did not reach its topic: which one, and a reason code (Kafka error name or FailureReason).

    Claims are named by claim id; adapter rejections (which have no claim id) by their input location. `index` is the
    record's position in its run or request (the correlation id's suffix) when the ledger tracks records.
    """

    claim_id: str | None
    reason: str
    location: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class Delivery:
    """A claim the broker acknowledged: where it is (partition and offset of the topic)."""

    index: int
    claim_id: str
    partition: int
    offset: int


@dataclass
class ProduceReport:
    """The outcome of a produce run; `sent == delivered + failed` once the run is complete."""

    topic: str
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bytes_delivered: int = 0
    failures: list[DeliveryFailure] = field(default_factory=list)
    rejections_sent: int = 0
    rejections_delivered: int = 0
    rejection_failures: list[DeliveryFailure] = field(default_factory=list)
    interrupted: bool = False
    elapsed_seconds: float = 0.0
    correlation_id: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)  # only when the ledger tracks records

    @property
    def complete(self) -> bool:
        """Every sent claim and rejection has a definitive outcome."""
        return (self.sent == self.delivered + self.failed
                and self.rejections_sent == self.rejections_delivered + len(self.rejection_failures))

    @property
    def ok(self) -> bool:
        """Complete, nothing failed and not interrupted."""
        return self.complete and not self.failed and not self.rejection_failures and not self.interrupted

    @property
    def claims_per_second(self) -> float:
        """Delivered claims per second of the run (0 before it has a duration)."""
        return self.delivered / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def merge(self, other: ProduceReport) -> None:
        """Add another report of the same run (e.g. one producer process's share) to this one; keeps the longer
        elapsed time, since the shares ran side by side."""
        for name in ("sent", "delivered", "failed", "bytes_delivered", "rejections_sent", "rejections_delivered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)
        self.rejection_failures.extend(other.rejection_failures)
        self.deliveries.extend(other.deliveries)
        self.interrupted = self.interrupted or other.interrupted
        self.elapsed_seconds = max(self.elapsed_seconds, other.elapsed_seconds)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = self.complete
        return data


class DeliveryLedger:
    """The accounting of one run or one request: what was sent, what the broker acknowledged, what failed.

    Delivery reports arrive on whichever thread serves the producer's callbacks (the sending thread in a run, the
    background poller in a service), so every update holds the ledger's lock; `wait` blocks until nothing is pending.
    """

    def __init__(self, topic: str, metrics: ProducerMetrics, *, correlation_id: str | None = None,
                 track: bool = False) -> None:
        self.report = ProduceReport(topic=topic, correlation_id=correlation_id)
        self.correlation_id = correlation_id
        self.track = track
        self._metrics = metrics
        self._delivered = metrics.messages.labels(result=DeliveryResult.DELIVERED.value)
        self._failed = metrics.messages.labels(result=DeliveryResult.FAILED.value)
        self._pending: Multiset[str] = Multiset()  # claim ids in flight (untracked ledgers)
        self._pending_tracked: dict[int, str] = {}  # index -> claim id in flight (tracked ledgers)
        self._pending_rejections: Multiset[str] = Multiset()
        self._done = threading.Condition(threading.Lock())
        self._next_index = 1
        self._started = time.monotonic()
        self.fatal: KafkaError | None = None

    def next_index(self) -> int:
        """The index of the next record (1-based, in sending order) unless the caller names its own."""
        index = self._next_index
        self._next_index += 1
        return index

    def use_index(self, index: int) -> None:
        """Record that the caller numbered a record itself, so automatic numbering continues after it."""
        self._next_index = max(self._next_index, index + 1)

    def headers(self, index: int) -> Headers | None:
        """The Kafka headers of record `index`: its correlation id, when the ledger has one."""
        if self.correlation_id is None:
            return None
        return [(CORRELATION_HEADER, correlation_value(self.correlation_id, index))]

    @property
    def pending(self) -> int:
        """Records sent and not yet settled."""
        return len(self._pending_tracked) + sum(self._pending.values()) + sum(self._pending_rejections.values())

    # -- sending side --

    def claim_sent(self, claim_id: str, index: int) -> Callable[[KafkaError | None, Message], None]:
        """Count a claim as sent and return the delivery callback to give librdkafka for it."""
        with self._done:
            self.report.sent += 1
            if self.track:
                self._pending_tracked[index] = claim_id
                return functools.partial(self._on_tracked_claim, index)
            self._pending[claim_id] += 1
        return self._on_claim

    def claim_not_sent(self, claim_id: str, index: int, reason: str) -> None:
        """A claim counted as sent whose produce() failed at once (or that could not be serialised)."""
        with self._done:
            if self.track:
                self._pending_tracked.pop(index, None)
            else:
                _take(self._pending, claim_id)
            self._fail(claim_id, reason, index)

    def claim_serialization_failed(self, claim_id: str, index: int, reason: str) -> None:
        """A claim that never reached produce(): counted as sent and failed."""
        with self._done:
            self.report.sent += 1
            self._fail(claim_id, reason, index)

    def rejection_sent(self, location: str, index: int) -> Callable[[KafkaError | None, Message], None]:
        """Count an adapter rejection as sent to the dead-letter topic; returns its delivery callback."""
        with self._done:
            self.report.rejections_sent += 1
            self._pending_rejections[location] += 1
        return functools.partial(self._on_rejection, location, index)

    def rejection_failed(self, location: str, index: int, reason: str, *, sent: bool) -> None:
        """A rejection that could not be published (no dead-letter topic, or produce() failed at once)."""
        with self._done:
            if sent:
                _take(self._pending_rejections, location)
            else:
                self.report.rejections_sent += 1
            self.report.rejection_failures.append(
                DeliveryFailure(claim_id=None, reason=reason, location=location, index=index))
            self._done.notify_all()

    # -- delivery reports --

    def _on_claim(self, err: KafkaError | None, msg: Message) -> None:
        key = msg.key()
        claim_id = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)
        with self._done:
            _take(self._pending, claim_id)
            self._settle(err, msg, claim_id, None)

    def _on_tracked_claim(self, index: int, err: KafkaError | None, msg: Message) -> None:
        with self._done:
            claim_id = self._pending_tracked.pop(index, "")
            self._settle(err, msg, claim_id, index)

    def _settle(self, err: KafkaError | None, msg: Message, claim_id: str, index: int | None) -> None:
        if err is None:
            value, key = msg.value(), msg.key()
            size = (len(value) if value else 0) + (len(key) if key else 0)
            self.report.delivered += 1
            self.report.bytes_delivered += size
            self._delivered.inc()
            self._metrics.bytes.inc(size)
            latency = msg.latency()
            if latency is not None:
                self._metrics.latency.observe(latency)
            if index is not None:
                self.report.deliveries.append(Delivery(index, claim_id, int(msg.partition() or 0),
                                                       int(msg.offset() or 0)))
        else:
            # librdkafka has already retried retriable errors until delivery.timeout.ms: this one is permanent.
            self._fail(claim_id, err.name(), index)
            if err.fatal():
                self.fatal = err
        if not self._pending_tracked and not self._pending:
            self._done.notify_all()

    def _on_rejection(self, location: str, index: int, err: KafkaError | None, _msg: Message) -> None:
        with self._done:
            _take(self._pending_rejections, location)
            if err is None:
                self.report.rejections_delivered += 1
            else:
                self.report.rejection_failures.append(
                    DeliveryFailure(claim_id=None, reason=err.name(), location=location, index=index))
            self._done.notify_all()

    def _fail(self, claim_id: str, reason: str, index: int | None) -> None:
        self.report.failed += 1
        self.report.failures.append(DeliveryFailure(claim_id=claim_id, reason=reason, index=index))
        self._failed.inc()
        self._done.notify_all()

    # -- completion --

    def wait(self, timeout: float) -> bool:
        """Block until every record sent through this ledger is settled (True) or `timeout` seconds pass (False).

        Someone must serve the producer's callbacks meanwhile (ClaimProducer's background poller)."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._done.wait(remaining)
        return True

    def settle_unconfirmed(self) -> ProduceReport:
        """Record everything still pending as failed (UNCONFIRMED_AT_EXIT) and stamp the elapsed time."""
        reason = FailureReason.UNCONFIRMED_AT_EXIT.value
        with self._done:
            for claim_id, count in list(self._pending.items()):
                for _ in range(count):
                    self._fail(claim_id, reason, None)
            for index, claim_id in list(self._pending_tracked.items()):
                self._fail(claim_id, reason, index)
            for location, count in list(self._pending_rejections.items()):
                for _ in range(count):
                    self.report.rejection_failures.append(
                        DeliveryFailure(claim_id=None, reason=reason, location=location))
            self._pending.clear()
            self._pending_tracked.clear()
            self._pending_rejections.clear()
            self.report.elapsed_seconds = time.monotonic() - self._started
            self.report.deliveries.sort(key=lambda delivery: delivery.index)
        return self.report


class ClaimProducer:
    """Produces claims to one topic; call `send` per claim then `close` (or use `produce_all`).

    `background_poll=True` starts a thread that serves delivery reports continuously: for a long-lived producer shared
    by concurrent callers (the API), each with its own ledger (`new_ledger`) and `ledger.wait`.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        protect: Protect | None = None,
        dead_letter_topic: str | None = None,
        rate: float | None = None,
        registry: CollectorRegistry = REGISTRY,
        config_overrides: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        track_deliveries: bool = False,
        background_poll: bool = False,
    ) -> None:
        overrides = dict(config_overrides or {})
        for key in GUARANTEES:
            if key in overrides and overrides[key] != PRODUCER_DEFAULTS[key]:
                msg = f"producer config: {key} must stay {PRODUCER_DEFAULTS[key]!r}, found {overrides[key]!r}"
                raise ValueError(msg)
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self._protect = protect
        self._limiter = TokenBucket(rate) if rate else None
        self._metrics = producer_metrics(registry)
        self._producer = Producer({**client_config(settings), **PRODUCER_DEFAULTS, **overrides})
        self.ledger = self.new_ledger(correlation_id=correlation_id, track=track_deliveries)
        self._sends = 0
        self._inline_poll = not background_poll
        self._closing = threading.Event()
        self._poller: threading.Thread | None = None
        if background_poll:
            self._poller = threading.Thread(target=self._poll_forever, name=f"claims-producer-{topic}", daemon=True)
            self._poller.start()

    @property
    def report(self) -> ProduceReport:
        """The report of the producer's own ledger (the run's)."""
        return self.ledger.report

    def new_ledger(self, *, correlation_id: str | None = None, track: bool = False) -> DeliveryLedger:
        """A fresh ledger for one request on this (long-lived) producer."""
        return DeliveryLedger(self.topic, self._metrics, correlation_id=correlation_id, track=track)

    @property
    def fatal_error(self) -> KafkaError | None:
        """A fatal idempotent-producer error (the producer cannot continue), if one happened."""
        return self.ledger.fatal

    # -- sending --

    def send(self, claim: Claim, *, index: int | None = None, ledger: DeliveryLedger | None = None) -> None:
        """Queue one claim; blocks for the rate limit and while librdkafka's queue is full."""
        if self._limiter is not None:
            self._limiter.acquire()
        ledger = ledger or self.ledger
        index = self._index(ledger, index)
        try:
            value = claim_to_message(claim, self._protect)
        except Exception as exc:  # noqa: BLE001  (any protector/encoding failure: record it against the claim, go on)
            ledger.claim_serialization_failed(claim.claim_id,
                                              index, f"{FailureReason.SERIALIZATION_ERROR.value}:{type(exc).__name__}")
            return
        self.send_value(claim.claim_id, claim_key(claim), value, index=index, ledger=ledger)

    def send_value(self, claim_id: str, key: bytes, value: bytes, *, index: int, ledger: DeliveryLedger) -> None:
        """Queue one already-serialised (already protected) claim message."""
        callback = ledger.claim_sent(claim_id, index)
        error = self._produce(self.topic, key, value, ledger.headers(index), callback)
        if error is not None:
            ledger.claim_not_sent(claim_id, index, error.name() if isinstance(error, KafkaError) else error)
            if isinstance(error, KafkaError) and error.fatal():
                ledger.fatal = error

    def send_rejection(self, rejection: Rejection, *, index: int | None = None,
                       ledger: DeliveryLedger | None = None) -> None:
        """Publish an adapter rejection (no PHI by contract) to the dead-letter topic, keyed by its input location."""
        ledger = ledger or self.ledger
        index = self._index(ledger, index)
        location = f"{rejection.source.file or '-'}:{rejection.location}"
        if self.dead_letter_topic is None:
            ledger.rejection_failed(location, index, FailureReason.NO_DEAD_LETTER_TOPIC.value, sent=False)
            return
        value = orjson.dumps(rejection.model_dump(mode="json"))
        headers: Headers = [("record-type", b"rejection"), *(ledger.headers(index) or [])]
        callback = ledger.rejection_sent(location, index)
        error = self._produce(self.dead_letter_topic, location.encode("utf-8"), value, headers, callback)
        if error is not None:
            ledger.rejection_failed(location, index, error.name() if isinstance(error, KafkaError) else error,
                                    sent=True)

    def _index(self, ledger: DeliveryLedger, index: int | None) -> int:
        if index is None:
            return ledger.next_index()
        ledger.use_index(index)
        return index

    def _produce(self, topic: str, key: bytes, value: bytes, headers: Headers | None,
                 callback: Callable[[KafkaError | None, Message], None]) -> KafkaError | str | None:
        """produce() until librdkafka takes the message; the immediate error (Kafka error or its type) otherwise."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=callback)
            except BufferError:
                # Local queue full: serve delivery reports to make room, then retry the same message.
                self._producer.poll(BUFFER_FULL_POLL_SECONDS)
                continue
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                return error if error is not None else type(exc).__name__
            break
        self._sends += 1
        if self._inline_poll and self._sends % POLL_EVERY == 0:
            self._producer.poll(0)
        return None

    def poll(self, timeout: float = 0.0) -> int:
        """Serve pending delivery reports (the callbacks update the ledgers)."""
        return int(self._producer.poll(timeout))

    def _poll_forever(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(BACKGROUND_POLL_SECONDS)

    def flush(self, timeout: float | None = None) -> int:
        """Wait for delivery reports of everything queued; returns how many are still unconfirmed."""
        if timeout is None:
            timeout = PRODUCER_DEFAULTS["delivery.timeout.ms"] / 1000 + 5
        return int(self._producer.flush(timeout))

    def close(self, timeout: float | None = None) -> ProduceReport:
        """Flush, then record anything still unconfirmed as failed (by claim id) and return the run's report."""
        self.flush(timeout)
        self._closing.set()
        if self._poller is not None:
            self._poller.join()
        return self.ledger.settle_unconfirmed()

    def produce_all(
        self,
        records: Iterable[Claim | Rejection],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[ProduceReport], None] | None = None,
        flush_timeout: float | None = None,
    ) -> ProduceReport:
        """Send every claim (and rejection) until the source ends or `should_stop()` says stop; always flushes."""
        ledger = self.ledger
        try:
            for record in records:
                if should_stop() or ledger.fatal is not None:
                    ledger.report.interrupted = True
                    break
                if isinstance(record, Rejection):
                    self.send_rejection(record)
                    continue
                self.send(record)
                if on_progress is not None and ledger.report.sent % PROGRESS_EVERY == 0:
                    on_progress(ledger.report)
        finally:
            report = self.close(flush_timeout)
            if on_progress is not None:
                on_progress(report)
        return report


def _take(pending: Multiset[str], key: str) -> None:
    pending[key] -= 1
    if pending[key] <= 0:
        del pending[key]


class StopRequested:
    """Set by SIGINT/SIGTERM inside `graceful_stop()`; the produce loop checks it between claims."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, signal_name: str) -> None:
        self.signal_name = signal_name
        self._event.set()


@contextlib.contextmanager
def graceful_stop(signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[StopRequested]:
    """Turn SIGINT/SIGTERM into a stop request so the caller stops reading input and flushes what is in flight.

    Without this, SIGTERM would kill the process with acknowledged-by-us-but-not-yet-by-Kafka claims in librdkafka's
    queue. Previous handlers are restored on exit. Only usable from the main thread (a Python signal rule).
    """
    stop = StopRequested()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
