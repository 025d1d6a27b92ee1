"""The stream side of the correlation id, on a real broker and real Spark: the producer's `correlation_id` header
becomes a column, and the batch's log lines name the run, its record range and each quarantined record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog
from prometheus_client import CollectorRegistry

from libs.generator import GeneratorConfig, generate_claims
from libs.kafka.client_config import spark_kafka_options
from libs.kafka.producer import ClaimProducer
from libs.monitoring.correlation import correlation_id_column, log_batch_correlations, runs_in_batch
from libs.phi import logging as phi_logging
from libs.phi.logging import configure_logging
from libs.streaming.parse import check_messages
from libs.streaming.processor import BatchOutcome, ClaimBatchProcessor
from tests.streaming.pipeline_helpers import AS_OF, make_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.spark]

RUN = "feedc0de" * 4
COUNT = 40


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, phi_logging._configured, phi_logging._process)
    stream = io.StringIO()
    configure_logging(logging.DEBUG, stream=stream)
    yield stream
    root.handlers, root.level = saved[0], saved[1]
    phi_logging._configured, phi_logging._process = saved[2], saved[3]
    structlog.reset_defaults()


def test_a_claim_can_be_followed_from_the_header_into_the_batch_logs(spark, kafka_broker, tmp_path, log_stream):
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, partitions=2)
    claims = [claim for claim, _ in generate_claims(GeneratorConfig(count=COUNT, seed=5, defect_rate=0.3))]
    producer = ClaimProducer(pipeline.settings.kafka, pipeline.topics.raw, protect=pipeline.protector().protect,
                             registry=CollectorRegistry(), correlation_id=RUN)
    assert producer.produce_all(claims, flush_timeout=60).delivered == COUNT
    reader = spark.read.format("kafka").option("subscribe", pipeline.topics.raw).option("includeHeaders", "true")
    raw = reader.options(**spark_kafka_options(pipeline.settings.kafka)).option("startingOffsets", "earliest").load()
    # The stream's checked frame carries the header as a column (libs.streaming.parse.with_kafka_columns).
    checked = check_messages(raw, AS_OF).cache()
    invalid = {row["kafka_key"] for row in checked.where("NOT is_valid").select("kafka_key").collect()}

    counted = BatchOutcome(batch_id=7)
    ClaimBatchProcessor._count(checked, counted)  # the stream's one count per batch also gives the per-run summary
    runs = log_batch_correlations(checked, batch_id=7, runs=counted.runs)

    events = [orjson.loads(line) for line in log_stream.getvalue().splitlines()]
    received = [e for e in events if e["event"] == "records received"]
    quarantined = [e for e in events if e["event"] == "record quarantined"]
    per_record = [e for e in events if e["event"] == "record received"]
    assert invalid, "the run must include rejected claims"
    assert [(r.run_id, r.records, r.first_index, r.last_index, r.quarantined) for r in runs] == [
        (RUN, COUNT, 1, COUNT, len(invalid))]
    assert runs_in_batch(checked) == runs  # the standalone summary (no processor) folds the same way
    assert received == [{**received[0], "batch_id": 7, "correlation_id": RUN, "records": COUNT, "first_record": 1,
                         "last_record": COUNT, "quarantined": len(invalid)}]
    assert {e["claim_id"] for e in quarantined} == invalid
    assert all(e["correlation_id"].startswith(f"{RUN}:") and e["reasons"] for e in quarantined)
    assert sorted(int(e["correlation_id"].split(":")[1]) for e in per_record) == list(range(1, COUNT + 1))
    by_claim = {e["claim_id"]: e["correlation_id"] for e in per_record}
    assert len(set(by_claim.values())) == COUNT, "each claim has its own correlation id"


def test_a_record_without_the_header_has_no_correlation_id(spark):
    frame = spark.createDataFrame([([("other", b"x")],), (None,)],
                                  "headers array<struct<key:string,value:binary>>")

    assert [row[0] for row in frame.select(correlation_id_column()).collect()] == [None, None]
