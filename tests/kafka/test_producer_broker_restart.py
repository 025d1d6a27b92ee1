"""A broker restart while claims are being produced loses no acknowledged claim and duplicates none.

A private broker (not the session one) is stopped in the middle of a produce run and started again on the same ports
and data directory a few seconds later, as an operator's rolling restart would. The idempotent producer keeps
retrying what the broker had not acknowledged (delivery.timeout.ms spans the outage); at the end every claim the
producer reported delivered is in the topic exactly once, and nothing is reported lost.
"""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from libs.kafka.admin import ensure_topics
from libs.kafka.broker import FAST_START_JVM_OPTIONS, LocalKafka
from libs.kafka.producer import ClaimProducer, ProduceReport
from libs.kafka.topics import load_topics
from libs.settings import KafkaSettings
from tests.factories import make_professional_claim
from tests.kafka.helpers import read_all, write_topics_file

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLAIMS = 20_000
RESTART_AFTER = 4_000  # acknowledged claims before the broker goes down
OUTAGE_SECONDS = 3.0


def test_a_broker_restart_during_produce_loses_and_duplicates_no_acknowledged_claim(tmp_path):
    broker = LocalKafka(home=tmp_path / "broker", port=0, controller_port=0, jvm_options=FAST_START_JVM_OPTIONS)
    broker.start(timeout=120)
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
        topics_file = write_topics_file(tmp_path, partitions=3)
        ensure_topics(kafka, topics_file)
        topic = load_topics(topics_file).raw
        producer = ClaimProducer(kafka, topic, registry=CollectorRegistry())
        restarted = threading.Event()
        outage: list[float] = []

        def restart_once(report: ProduceReport) -> None:
            if report.delivered >= RESTART_AFTER and not restarted.is_set():
                restarted.set()
                threading.Thread(target=_restart, args=(broker, outage), daemon=True).start()

        claims = (make_professional_claim(claim_id=f"R{i:06d}") for i in range(CLAIMS))
        # Throttled just enough that the restart lands while claims are still being sent.
        report = producer.produce_all(_paced(claims), on_progress=restart_once, flush_timeout=180)

        assert restarted.is_set(), "the broker restart never happened"
        assert outage, "the broker did not come back"
        assert (report.sent, report.failed, report.failures) == (CLAIMS, 0, [])
        assert report.delivered == CLAIMS
        keys = [key.decode() for key, _value in read_all(kafka, topic, CLAIMS, timeout=120)]
        assert len(keys) == len(set(keys)) == CLAIMS  # idempotence: the retries added no duplicate
        assert set(keys) == {f"R{i:06d}" for i in range(CLAIMS)}
    finally:
        broker.stop()


def _restart(broker: LocalKafka, outage: list[float]) -> None:
    started = time.monotonic()
    broker.stop()  # SIGTERM: a controlled shutdown, as in a rolling restart
    time.sleep(OUTAGE_SECONDS)
    broker.start(timeout=120)
    outage.append(time.monotonic() - started)


def _paced(claims, per_second: int = 4_000):
    started = time.monotonic()
    for index, claim in enumerate(claims, 1):
        if index % 500 == 0:
            ahead = index / per_second - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        yield claim
