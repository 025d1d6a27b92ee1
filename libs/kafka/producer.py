"""ClaimProducer: send canonical claims to the raw topic without losing any acknowledged claim.

Why these settings: the raw topic is the pipeline's system of record for "received", so the producer is idempotent
(`enable.idempotence=true`, which implies `acks=all` and ordered retries: librdkafka retries transient broker errors
itself until `delivery.timeout.ms`), keyed by claim id (a claim and its replacements stay ordered in one partition),
compressed with zstd and batched (linger.ms, batch.size) for throughput. Every claim handed to `send` ends in exactly
one of: delivered (broker acknowledged), failed (permanent error, with the claim id and the broker's error name) or, if
the process is stopped and the final flush times out, unconfirmed (also listed by claim id). Nothing is silent.

Metrics (Prometheus, names fixed by the monitoring dashboards):
    claims_producer_messages_total{result="delivered"|"failed"}
    claims_producer_bytes_total                     bytes of delivered message keys + values
    claims_producer_delivery_latency_seconds        produce() call to broker acknowledgement
"""

from __future__ import annotations

import contextlib
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
from libs.kafka.serialize import Protect, claim_key, claim_to_message
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

    Claims are named by claim id; adapter rejections (which have no claim id) by their input location.
    """

    claim_id: str | None
    reason: str
    location: str | None = None


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

    @property
    def complete(self) -> bool:
        """Every sent claim and rejection has a definitive outcome."""
        return (self.sent == self.delivered + self.failed
                and self.rejections_sent == self.rejections_delivered + len(self.rejection_failures))

    @property
    def ok(self) -> bool:
        """Complete, nothing failed and not interrupted."""
        return self.complete and not self.failed and not self.rejection_failures and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = self.complete
        return data


class ClaimProducer:
    """Produces claims to one topic; call `send` per claim then `close` (or use `produce_all`)."""

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
        self._pending: Multiset[str] = Multiset()
        self._pending_rejections: Multiset[str] = Multiset()
        self._fatal: KafkaError | None = None
        self._started = time.monotonic()
        self.report = ProduceReport(topic=topic)

    # -- delivery reports (called from poll()/flush() on this thread) --

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        key = msg.key()
        claim_id = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)
        if msg.topic() != self.topic:
            self._on_rejection_delivery(err, claim_id)
            return
        _take(self._pending, claim_id)
        if err is None:
            size = len(msg.value() or b"") + len(key or b"")
            self.report.delivered += 1
            self.report.bytes_delivered += size
            self._metrics.messages.labels(result=DeliveryResult.DELIVERED.value).inc()
            self._metrics.bytes.inc(size)
            latency = msg.latency()
            if latency is not None:
                self._metrics.latency.observe(latency)
        else:
            # librdkafka has already retried retriable errors until delivery.timeout.ms: this one is permanent.
            self._fail(claim_id, err.name())
            if err.fatal():
                self._fatal = err

    def _on_rejection_delivery(self, err: KafkaError | None, location: str) -> None:
        _take(self._pending_rejections, location)
        if err is None:
            self.report.rejections_delivered += 1
        else:
            self.report.rejection_failures.append(DeliveryFailure(claim_id=None, reason=err.name(), location=location))

    def _fail(self, claim_id: str, reason: str) -> None:
        self.report.failed += 1
        self.report.failures.append(DeliveryFailure(claim_id=claim_id, reason=reason))
        self._metrics.messages.labels(result=DeliveryResult.FAILED.value).inc()

    # -- sending --

    @property
    def fatal_error(self) -> KafkaError | None:
        """A fatal idempotent-producer error (the producer cannot continue), if one happened."""
        return self._fatal

    def send(self, claim: Claim) -> None:
        """Queue one claim; blocks for the rate limit and while librdkafka's queue is full."""
        if self._limiter is not None:
            self._limiter.acquire()
        self.report.sent += 1
        try:
            value = claim_to_message(claim, self._protect)
        except Exception as exc:  # noqa: BLE001  (any protector/encoding failure: record it against the claim, go on)
            self._fail(claim.claim_id, f"{FailureReason.SERIALIZATION_ERROR.value}:{type(exc).__name__}")
            return
        key = claim_key(claim)
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
            except BufferError:
                # Local queue full: serve delivery reports to make room, then retry the same claim.
                self._producer.poll(BUFFER_FULL_POLL_SECONDS)
                continue
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                self._fail(claim.claim_id, error.name() if error is not None else type(exc).__name__)
                if error is not None and error.fatal():
                    self._fatal = error
                return
            self._pending[claim.claim_id] += 1
            break
        self._producer.poll(0)

    def send_rejection(self, rejection: Rejection) -> None:
        """Publish an adapter rejection (no PHI by contract) to the dead-letter topic, keyed by its input location."""
        location = f"{rejection.source.file or '-'}:{rejection.location}"
        self.report.rejections_sent += 1
        if self.dead_letter_topic is None:
            reason = FailureReason.NO_DEAD_LETTER_TOPIC.value
            self.report.rejection_failures.append(DeliveryFailure(claim_id=None, reason=reason, location=location))
            return
        value = orjson.dumps(rejection.model_dump(mode="json"))
        while True:
            try:
                self._producer.produce(self.dead_letter_topic, value=value, key=location.encode("utf-8"),
                                       headers=[("record-type", b"rejection")], on_delivery=self._on_delivery)
            except BufferError:
                self._producer.poll(BUFFER_FULL_POLL_SECONDS)
                continue
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                reason = error.name() if error is not None else type(exc).__name__
                self.report.rejection_failures.append(DeliveryFailure(claim_id=None, reason=reason, location=location))
                return
            self._pending_rejections[location] += 1
            break
        self._producer.poll(0)

    def flush(self, timeout: float | None = None) -> int:
        """Wait for delivery reports of everything queued; returns how many are still unconfirmed."""
        if timeout is None:
            timeout = PRODUCER_DEFAULTS["delivery.timeout.ms"] / 1000 + 5
        return int(self._producer.flush(timeout))

    def close(self, timeout: float | None = None) -> ProduceReport:
        """Flush, then record anything still unconfirmed as failed (by claim id) and return the report."""
        self.flush(timeout)
        for claim_id, count in list(self._pending.items()):
            for _ in range(count):
                self._fail(claim_id, FailureReason.UNCONFIRMED_AT_EXIT.value)
        for location, count in list(self._pending_rejections.items()):
            for _ in range(count):
                self.report.rejection_failures.append(
                    DeliveryFailure(claim_id=None, reason=FailureReason.UNCONFIRMED_AT_EXIT.value, location=location))
        self._pending.clear()
        self._pending_rejections.clear()
        self.report.elapsed_seconds = time.monotonic() - self._started
        return self.report

    def produce_all(
        self,
        records: Iterable[Claim | Rejection],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[ProduceReport], None] | None = None,
        flush_timeout: float | None = None,
    ) -> ProduceReport:
        """Send every claim (and rejection) until the source ends or `should_stop()` says stop; always flushes."""
        try:
            for record in records:
                if should_stop() or self._fatal is not None:
                    self.report.interrupted = True
                    break
                if isinstance(record, Rejection):
                    self.send_rejection(record)
                    continue
                self.send(record)
                if on_progress is not None and self.report.sent % PROGRESS_EVERY == 0:
                    on_progress(self.report)
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
