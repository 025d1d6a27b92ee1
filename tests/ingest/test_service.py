"""IngestService (what the API runs): per-record answers that match the topic, and idempotent retries that send
nothing twice, also after an attempt that could not reach Kafka at all."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from libs.ingest import MediaType
from libs.ingest.idempotency import IdempotencyStore
from libs.ingest.service import KAFKA_UNAVAILABLE, IngestService
from libs.kafka.broker import free_port
from libs.kafka.topics import load_topics
from libs.settings import REPO_ROOT, KafkaSettings, Settings
from tests.ingest.helpers import ingest_settings, read_topic

pytestmark = pytest.mark.kafka

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def _service(settings: Settings, store: IdempotencyStore | None = None, timeout: float = 10.0) -> IngestService:
    return IngestService(settings, idempotency=store, registry=CollectorRegistry(), delivery_timeout_seconds=timeout)


def test_every_record_is_answered_with_where_it_landed(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    service = _service(settings)
    try:
        outcome = service.ingest((FIXTURES / "x12" / "837p_multi.837").read_bytes(), MediaType.X12,
                                 correlation_id="req-1")
    finally:
        service.close()
    assert outcome.complete
    assert outcome.accepted
    assert not outcome.failed
    messages = read_topic(settings.kafka.bootstrap_servers, load_topics(settings.kafka.topics_file).raw,
                          len(outcome.accepted))
    landed = {(m.key.decode(), m.partition, m.offset): m.headers["correlation_id"].decode() for m in messages}
    answered = {(a["claim_id"], a["partition"], a["offset"]): f"req-1:{a['index']}" for a in outcome.accepted}
    assert landed == answered


def test_a_retry_with_the_same_key_sends_nothing_twice(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    store = IdempotencyStore(tmp_path / "idem.sqlite3")
    body = (FIXTURES / "json" / "claims_array.json").read_bytes()
    service = _service(settings, store)
    try:
        first = service.ingest(body, MediaType.JSON, correlation_id="a", idempotency_key="k-1", scope="alice")
        second = service.ingest(body, MediaType.JSON, correlation_id="b", idempotency_key="k-1", scope="alice")
    finally:
        service.close()
    assert first.accepted
    assert first.rejected
    assert not first.replayed
    assert second.replayed
    assert (second.accepted, second.rejected) == (first.accepted, first.rejected)
    topics = load_topics(settings.kafka.topics_file)
    raw = read_topic(settings.kafka.bootstrap_servers, topics.raw, len(first.accepted) + 1, timeout=5)
    dead = read_topic(settings.kafka.bootstrap_servers, topics.dead_letter, len(first.rejected) + 1, timeout=5)
    assert (len(raw), len(dead)) == (len(first.accepted), len(first.rejected))


def test_a_request_that_could_not_reach_kafka_is_sent_whole_by_its_retry(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    store = IdempotencyStore(tmp_path / "idem.sqlite3")
    body = (FIXTURES / "fhir" / "bundle.json").read_bytes()
    down = settings.model_copy(update={"kafka": KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}",
                                                              topics_file=settings.kafka.topics_file)})
    broken = _service(down, store, timeout=2.0)
    try:
        failed = broken.ingest(body, MediaType.FHIR, correlation_id="a", idempotency_key="k-2", scope="alice")
    finally:
        broken.close()
    assert not failed.accepted
    assert failed.failed
    assert {entry["reason"] for entry in failed.failed} == {KAFKA_UNAVAILABLE}
    assert failed.problem is not None
    assert "found none answering" in failed.problem

    service = _service(settings, store)
    try:
        retried = service.ingest(body, MediaType.FHIR, correlation_id="b", idempotency_key="k-2", scope="alice")
    finally:
        service.close()
    assert retried.complete
    assert len(retried.accepted) == len([e for e in failed.failed if e.get("claim_id")])
    raw = read_topic(settings.kafka.bootstrap_servers, load_topics(settings.kafka.topics_file).raw,
                     len(retried.accepted) + 1, timeout=5)
    assert sorted(m.key.decode() for m in raw) == sorted(a["claim_id"] for a in retried.accepted)
