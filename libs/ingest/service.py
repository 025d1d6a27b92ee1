"""IngestService: the ingestion core behind a long-lived producer, for callers that send many small documents.

Why a service object: an HTTP request of 500 claims must not pay for a new idempotent producer (a broker round trip
for its producer id, a fresh connection) nor wait for a 20 ms batching window per claim. The service keeps one
ClaimProducer with a background thread serving delivery reports; each request gets its own DeliveryLedger, sends its
records, and waits until the broker has settled every one of them (acknowledged or failed) - at most the producer's
delivery timeout, which is short here, so that a broker outage answers 503 within seconds, not minutes.

The answer (`IngestOutcome`) is per record, in input order: `accepted` (claim id, Kafka partition and offset),
`rejected` (adapter reason code and location; the rejection itself went to the dead-letter topic) and `failed`
(records Kafka did not acknowledge). With an idempotency key, records settled by an earlier attempt are not sent again
(libs.ingest.idempotency); their entries come from the store.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from libs.ingest.core import check_topics_exist, ingest_topics, load_protector
from libs.ingest.errors import KafkaUnavailableError
from libs.ingest.idempotency import IdempotencyStore, KeyState, fingerprint
from libs.ingest.sources import MediaType, Record, records_from_bytes
from libs.kafka.producer import ClaimProducer, ProduceReport
from libs.kafka.topics import Topics
from libs.model import Rejection
from libs.phi import PhiProtector
from libs.settings import Settings

DEFAULT_DELIVERY_TIMEOUT_SECONDS = 10.0
# librdkafka settles every message within delivery.timeout.ms; the margin covers the callback reaching the ledger.
WAIT_MARGIN_SECONDS = 5.0
SERVICE_LINGER_MS = 5  # requests wait for their acknowledgements: batch briefly, not for the run-mode 20 ms
KAFKA_UNAVAILABLE = "KAFKA_UNAVAILABLE"  # the broker did not answer or the topics are missing: nothing was sent


@dataclass(frozen=True)
class IngestOutcome:
    """The per-record answer to one ingestion request (never PHI: ids, codes, locations, offsets)."""

    correlation_id: str
    records: int
    accepted: list[dict[str, Any]] = field(default_factory=list)  # index, claim_id, partition, offset
    rejected: list[dict[str, Any]] = field(default_factory=list)  # index, reason, location, message
    failed: list[dict[str, Any]] = field(default_factory=list)  # index, claim_id or location, reason
    replayed: bool = False  # answered entirely from an earlier attempt with the same idempotency key
    problem: str | None = None  # why nothing could be sent (the broker did not answer), when that is the case

    @property
    def complete(self) -> bool:
        """Kafka acknowledged every record of the request."""
        return not self.failed

    @property
    def claim_ids(self) -> list[str]:
        """The claim ids the request touched (accepted or failed), for the audit log."""
        return [entry["claim_id"] for entry in (*self.accepted, *self.failed) if entry.get("claim_id")]

    def as_dict(self) -> dict[str, Any]:
        return {"correlation_id": self.correlation_id, "records": self.records, "accepted": self.accepted,
                "rejected": self.rejected, "failed": self.failed, "replayed": self.replayed}


class IngestService:
    """One long-lived, PHI-protecting producer shared by concurrent requests."""

    def __init__(self, settings: Settings, *, protector: PhiProtector | None = None,
                 idempotency: IdempotencyStore | None = None, registry: CollectorRegistry = REGISTRY,
                 delivery_timeout_seconds: float = DEFAULT_DELIVERY_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.protector = protector or load_protector(settings)  # no protector, no service: fail at start-up
        self.idempotency = idempotency
        self.delivery_timeout_seconds = delivery_timeout_seconds
        self._registry = registry
        self._producer: ClaimProducer | None = None
        self._topics: Topics | None = None
        self._lock = threading.Lock()

    def _ensure_producer(self) -> ClaimProducer:
        """The producer, created on first use: the service starts (and says it is not ready) without a broker."""
        with self._lock:
            if self._producer is None:
                self._topics = ingest_topics(self.settings, timeout=self.delivery_timeout_seconds)
                timeout_ms = int(self.delivery_timeout_seconds * 1000)
                self._producer = ClaimProducer(
                    self.settings.kafka, self._topics.raw, protect=self.protector.protect,
                    dead_letter_topic=self._topics.dead_letter, registry=self._registry, background_poll=True,
                    config_overrides={"delivery.timeout.ms": timeout_ms, "linger.ms": SERVICE_LINGER_MS,
                                      "request.timeout.ms": min(timeout_ms, 30_000)})
            return self._producer

    def close(self) -> None:
        """Flush and stop the producer (what is in flight is still settled)."""
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self.delivery_timeout_seconds + WAIT_MARGIN_SECONDS)
                self._producer = None

    # ----------------------------------------------------------------------------------------------------- ingest

    def ingest(self, body: bytes, kind: MediaType, *, correlation_id: str, idempotency_key: str | None = None,
               scope: str = "") -> IngestOutcome:
        """Read `body` (UnreadableInputError if it is not `kind`), protect and produce its records, answer per record.

        `idempotency_key` (scoped by `scope`, the caller's identity) makes a retry send only what no earlier attempt
        settled; IdempotencyKeyReusedError / IdempotencyKeyInUseError when the key cannot be used for this body.
        """
        records = records_from_bytes(body, kind, f"request:{correlation_id}")
        if self.idempotency is None or idempotency_key is None:
            return self._send(records, correlation_id, KeyState())
        state = self.idempotency.begin(scope, idempotency_key, fingerprint(kind.value, body))
        if state.complete:
            return _outcome(state, correlation_id=state.correlation_id or correlation_id, replayed=True)
        try:
            outcome = self._send(records, correlation_id, state)
        except BaseException:
            self.idempotency.release(scope, idempotency_key)
            raise
        self.idempotency.finish(scope, idempotency_key, state)
        return outcome

    def _send(self, records: Sequence[Record], correlation_id: str, state: KeyState) -> IngestOutcome:
        """Send what `state` has not settled yet; settle it into `state`; build the answer."""
        pending = [(index, record) for index, record in enumerate(records, start=1) if index not in state.settled]
        failed: list[dict[str, Any]] = []
        if pending:
            try:
                producer = self._ensure_producer()
            except KafkaUnavailableError as exc:
                # Nothing was sent: every pending record is answered as not sent, and nothing is settled, so a retry
                # with the same idempotency key sends them all.
                outcome = _outcome(state, correlation_id=correlation_id, records=len(records),
                                   failed=[_not_sent(index, record) for index, record in pending])
                return dataclasses.replace(outcome, problem=str(exc))
            ledger = producer.new_ledger(correlation_id=correlation_id, track=True)
            rejected_now: dict[int, Rejection] = {}
            for index, record in pending:
                if isinstance(record, Rejection):
                    rejected_now[index] = record
                    producer.send_rejection(record, index=index, ledger=ledger)
                else:
                    producer.send(record, index=index, ledger=ledger)
            ledger.wait(self.delivery_timeout_seconds + WAIT_MARGIN_SECONDS)
            failed = _record_outcomes(ledger.settle_unconfirmed(), rejected_now, state)
        state.records = len(records)
        state.complete = not failed
        state.correlation_id = state.correlation_id or correlation_id
        return _outcome(state, correlation_id=correlation_id, records=len(records), failed=failed)

    def check_kafka(self, timeout: float = 3.0) -> None:
        """KafkaUnavailableError unless the broker answers and the topics exist (for readiness probes)."""
        topics = self._topics or ingest_topics(self.settings, check=False)
        check_topics_exist(self.settings.kafka, [topics.raw, topics.dead_letter], timeout=timeout)


def _record_outcomes(report: ProduceReport, rejected_now: dict[int, Rejection],
                     state: KeyState) -> list[dict[str, Any]]:
    """Fold this attempt's deliveries and rejections into `state`; return the records that failed."""
    for delivery in report.deliveries:
        state.settled[delivery.index] = {"status": "accepted", "index": delivery.index, "claim_id": delivery.claim_id,
                                         "partition": delivery.partition, "offset": delivery.offset}
    failed_rejections = {failure.index for failure in report.rejection_failures}
    for index, rejection in rejected_now.items():
        if index not in failed_rejections:
            state.settled[index] = {"status": "rejected", "index": index, "reason": rejection.reason,
                                    "location": rejection.location, "message": rejection.message}
    failed = [{"index": failure.index, "claim_id": failure.claim_id, "reason": failure.reason}
              for failure in report.failures]
    failed += [{"index": failure.index, "location": failure.location, "reason": failure.reason,
                "record": "rejection"} for failure in report.rejection_failures]
    return sorted(failed, key=lambda entry: entry["index"] or 0)


def _not_sent(index: int, record: Record) -> dict[str, Any]:
    if isinstance(record, Rejection):
        return {"index": index, "location": record.location, "reason": KAFKA_UNAVAILABLE, "record": "rejection"}
    return {"index": index, "claim_id": record.claim_id, "reason": KAFKA_UNAVAILABLE}


def _outcome(state: KeyState, *, correlation_id: str, records: int | None = None,
             failed: list[dict[str, Any]] | None = None, replayed: bool = False) -> IngestOutcome:
    entries = [state.settled[index] for index in sorted(state.settled)]
    accepted = [{k: v for k, v in entry.items() if k != "status"} for entry in entries if entry["status"] == "accepted"]
    rejected = [{k: v for k, v in entry.items() if k != "status"} for entry in entries if entry["status"] == "rejected"]
    return IngestOutcome(correlation_id=correlation_id, records=state.records if records is None else records,
                         accepted=accepted, rejected=rejected,
                         failed=failed or [], replayed=replayed)
