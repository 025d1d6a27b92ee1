"""The ingestion core: records -> PHI protection -> the idempotent producer, with delivery accounting.

Every way claims enter Kafka goes through here: `claims produce FILE...` (files), the API (`libs.ingest.service`,
request bodies) and `make run` (`libs.ingest.generated`, synthetic claims). The rules they share:

- a PHI protector is required, in every environment: `load_protector` builds it from settings or raises
  ProtectorUnavailableError; there is no code path that produces an unprotected claim;
- the raw and dead-letter topics must exist before anything is sent (the local broker does not auto-create topics,
  and a missing topic would otherwise surface as a delivery timeout minutes later);
- claims go to the raw topic keyed by claim id, adapter rejections to the dead-letter topic, every record with a
  `correlation_id` header `<run or request id>:<record index>`;
- the outcome is a `ProduceReport`: counts, failures by claim id (or input location), and, when asked, every
  record's Kafka partition and offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY, CollectorRegistry

from libs.adapters.registry import InputFormat
from libs.ingest.errors import KafkaUnavailableError, ProtectorUnavailableError
from libs.ingest.sources import MediaType, Record, records_from_bytes, records_from_files
from libs.kafka.client_config import client_config
from libs.kafka.producer import ClaimProducer, ProduceReport
from libs.kafka.topics import Topics, load_topics
from libs.phi import PhiError, PhiProtector
from libs.phi.logging import correlation_scope, get_logger
from libs.settings import KafkaSettings, Settings

log = get_logger("claims.ingest")

TOPIC_CHECK_TIMEOUT_SECONDS = 15.0

ProgressCallback = Callable[[ProduceReport], None]


def new_correlation_id() -> str:
    """A fresh id for one run or request: 32 hex digits, random (never derived from the claims)."""
    return uuid.uuid4().hex


def load_protector(settings: Settings) -> PhiProtector:
    """The PHI protector configured in `settings.security`; ProtectorUnavailableError when it cannot be built.

    This is an error in every environment, the local one included: a claim is never produced unprotected.
    """
    try:
        return PhiProtector.from_settings(settings)
    except (PhiError, OSError) as exc:
        msg = (f"environment {settings.environment.value}: expected a working PHI protector (policy "
               f"{settings.security.phi_policy_file}, key provider {settings.security.key_provider.value}), "
               f"found: {exc}; refusing to produce unprotected claims")
        raise ProtectorUnavailableError(msg) from None


def check_topics_exist(settings: KafkaSettings, topics: Iterable[str],
                       timeout: float = TOPIC_CHECK_TIMEOUT_SECONDS) -> None:
    """Fail fast when the broker does not answer or a topic is missing, instead of timing out per claim."""
    admin = AdminClient(client_config(settings))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"expected a Kafka broker at {settings.bootstrap_servers}, found none answering ({exc.args[0]})"
        raise KafkaUnavailableError(msg) from None
    missing = [topic for topic in topics if topic not in metadata.topics]
    if missing:
        msg = (f"expected topics {', '.join(missing)} on {settings.bootstrap_servers}, found them missing; "
               "run `claims topics` (or `claims kafka up`, which creates them)")
        raise KafkaUnavailableError(msg)


def ingest_topics(settings: Settings, *, check: bool = True, timeout: float = TOPIC_CHECK_TIMEOUT_SECONDS) -> Topics:
    """The topic names (configs/kafka/topics.json), checked to exist on the broker unless `check` is False."""
    topics = load_topics(settings.kafka.topics_file)
    if check:
        check_topics_exist(settings.kafka, [topics.raw, topics.dead_letter], timeout=timeout)
    return topics


def produce_records(
    settings: Settings,
    records: Iterable[Record],
    *,
    protector: PhiProtector | None = None,
    rate: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
    track_deliveries: bool = True,
    registry: CollectorRegistry = REGISTRY,
) -> ProduceReport:
    """Protect and produce `records` in this thread: claims to the raw topic, rejections to the dead-letter topic.

    Stops between records when `should_stop()` turns true (the report is then `interrupted`) and always flushes what
    was sent. With `track_deliveries` the report lists every claim's partition and offset (`deliveries`).
    """
    protector = protector or load_protector(settings)
    topics = ingest_topics(settings)
    correlation_id = correlation_id or new_correlation_id()
    producer = ClaimProducer(settings.kafka, topics.raw, protect=protector.protect,
                             dead_letter_topic=topics.dead_letter, rate=rate, registry=registry,
                             correlation_id=correlation_id, track_deliveries=track_deliveries)
    with correlation_scope(correlation_id):
        log.info("produce run started", topic=topics.raw)
        report = producer.produce_all(records, should_stop=should_stop or (lambda: False), on_progress=on_progress)
        log.info("produce run finished", delivered=report.delivered, failed=report.failed,
                 rejections=report.rejections_delivered)
    return report


def produce_files(
    settings: Settings,
    paths: Sequence[Path | str],
    *,
    input_format: InputFormat = InputFormat.AUTO,
    beneficiary_file: Path | None = None,
    protector: PhiProtector | None = None,
    rate: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
    track_deliveries: bool = True,
    registry: CollectorRegistry = REGISTRY,
) -> ProduceReport:
    """Claim files in any supported format (X12 837, FHIR, DE-SynPUF, canonical JSON/NDJSON) into Kafka.

    Every file is checked before anything is sent: a missing or unrecognisable file raises UnreadableInputError.
    """
    protector = protector or load_protector(settings)
    records = records_from_files(paths, input_format, beneficiary_file)
    return produce_records(settings, records, protector=protector, rate=rate, should_stop=should_stop,
                           on_progress=on_progress, correlation_id=correlation_id, track_deliveries=track_deliveries,
                           registry=registry)


def produce_bytes(
    settings: Settings,
    body: bytes,
    kind: MediaType,
    *,
    name: str | None = None,
    protector: PhiProtector | None = None,
    correlation_id: str | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> ProduceReport:
    """One document (a request body, a message) of media type `kind` into Kafka, every record tracked.

    A body that is not in its declared format raises UnreadableInputError before anything is sent. (The API uses the
    long-lived `IngestService` instead, which adds idempotency keys and per-record answers.)
    """
    correlation_id = correlation_id or new_correlation_id()
    protector = protector or load_protector(settings)
    records = records_from_bytes(body, kind, name or f"request:{correlation_id}")
    return produce_records(settings, records, protector=protector, correlation_id=correlation_id,
                           track_deliveries=True, registry=registry)
