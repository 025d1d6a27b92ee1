"""ClaimProducer against the real broker: exact delivery, claim-id keys, failure accounting, metrics, dead letters."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from libs.kafka.admin import ensure_topics
from libs.kafka.producer import ClaimProducer
from libs.kafka.topics import load_topics
from libs.model import Rejection, Source, SourceFormat
from tests.factories import make_institutional_claim, make_professional_claim
from tests.kafka.helpers import message_count, read_all, write_topics_file

pytestmark = pytest.mark.kafka

N = 500


@pytest.fixture
def topics(kafka_settings, tmp_path):
    path = write_topics_file(tmp_path, partitions=3)
    ensure_topics(kafka_settings, path)
    return load_topics(path)


def _claims(n):
    for i in range(n):
        factory = make_institutional_claim if i % 5 == 0 else make_professional_claim
        yield factory(claim_id=f"CLM{i:06d}")


def _sample(registry, name, **labels):
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def test_every_claim_is_delivered_exactly_once_keyed_by_claim_id(kafka_settings, topics):
    registry = CollectorRegistry()
    producer = ClaimProducer(kafka_settings, topics.raw, registry=registry)
    report = producer.produce_all(_claims(N))

    assert (report.sent, report.delivered, report.failed, report.failures) == (N, N, 0, [])
    assert report.complete
    assert report.ok
    assert message_count(kafka_settings, topics.raw) == N
    messages = read_all(kafka_settings, topics.raw, N)
    assert len(messages) == N
    assert sorted(key.decode() for key, _ in messages) == [f"CLM{i:06d}" for i in range(N)]
    for key, value in messages:
        assert orjson.loads(value)["claim_id"] == key.decode()

    # Metrics count exactly what the delivery reports said.
    assert _sample(registry, "claims_producer_messages_total", result="delivered") == N
    assert _sample(registry, "claims_producer_messages_total", result="failed") == 0
    assert _sample(registry, "claims_producer_bytes_total") == report.bytes_delivered
    assert report.bytes_delivered == sum(len(k) + len(v) for k, v in messages)
    assert _sample(registry, "claims_producer_delivery_latency_seconds_count") == N


def test_full_local_queue_is_waited_out_not_dropped(kafka_settings, topics):
    # A 20-message librdkafka queue: produce() raises BufferError constantly; the producer polls and retries.
    producer = ClaimProducer(kafka_settings, topics.raw, registry=CollectorRegistry(),
                             config_overrides={"queue.buffering.max.messages": 20, "linger.ms": 1})
    report = producer.produce_all(_claims(300))
    assert (report.sent, report.delivered, report.failed) == (300, 300, 0)
    assert message_count(kafka_settings, topics.raw) == 300


def test_permanent_failures_are_counted_with_claim_ids(kafka_settings):
    registry = CollectorRegistry()
    # The broker does not auto-create topics: every message to an unknown topic fails once the timeout expires.
    producer = ClaimProducer(kafka_settings, "no-such-topic-for-claims", registry=registry,
                             config_overrides={"delivery.timeout.ms": 1500, "linger.ms": 5,
                                               "topic.metadata.propagation.max.ms": 500})
    report = producer.produce_all(_claims(3))

    assert (report.sent, report.delivered, report.failed) == (3, 0, 3)
    assert report.complete
    assert not report.ok
    assert sorted(str(failure.claim_id) for failure in report.failures) == ["CLM000000", "CLM000001", "CLM000002"]
    assert all(failure.reason for failure in report.failures)
    assert _sample(registry, "claims_producer_messages_total", result="failed") == 3
    assert _sample(registry, "claims_producer_messages_total", result="delivered") == 0


def test_protector_failure_is_a_failed_claim_not_a_crash(kafka_settings, topics):
    registry = CollectorRegistry()

    def protect(claim):
        if claim.claim_id == "CLM000001":
            raise ValueError("synthetic protector failure")
        return claim.model_dump(mode="json")

    report = ClaimProducer(kafka_settings, topics.raw, protect=protect, registry=registry).produce_all(_claims(3))
    assert (report.delivered, report.failed) == (2, 1)
    assert report.failures[0].claim_id == "CLM000001"
    assert report.failures[0].reason == "SERIALIZATION_ERROR:ValueError"


def test_rejections_go_to_the_dead_letter_topic(kafka_settings, topics):
    rejection = Rejection(source=Source(format=SourceFormat.X12_837P, file="batch.x12"), location="segment 37 (CLM)",
                          reason="X12_TRUNCATED", message="expected SE after CLM, found end of file")
    producer = ClaimProducer(kafka_settings, topics.raw, dead_letter_topic=topics.dead_letter,
                             registry=CollectorRegistry())
    report = producer.produce_all([*list(_claims(2)), rejection])

    assert (report.delivered, report.rejections_sent, report.rejections_delivered) == (2, 1, 1)
    assert report.ok
    [(key, value)] = read_all(kafka_settings, topics.dead_letter, 1)
    assert key == b"batch.x12:segment 37 (CLM)"
    assert orjson.loads(value)["reason"] == "X12_TRUNCATED"
