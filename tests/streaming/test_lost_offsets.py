"""Offsets that vanish before the stream read them stop the query with an error that names them; nothing is skipped
silently. Turning `spark.fail_on_data_loss` off is the operator's explicit choice to resume past the loss.

The loss is made for real: after a first run has checkpointed a partition's end, more claims are produced and the
head of that partition is deleted (Kafka's DeleteRecords, what retention does) before the second run.
"""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from pyspark.errors import StreamingQueryException

from libs.streaming.query import start_claims_query
from tests.factories import make_professional_claim
from tests.streaming.pipeline_helpers import AS_OF, make_pipeline, produce_claims, run_available_now, table

pytestmark = [pytest.mark.spark, pytest.mark.kafka]


def _delete_head(bootstrap: str, topic: str, partition: int, before: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, partition, before)], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=30)


def test_offsets_deleted_before_the_stream_read_them_stop_it_with_their_coordinates(spark, kafka_broker, tmp_path):
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, partitions=1)
    produce_claims(pipeline, [make_professional_claim(claim_id=f"A{i}") for i in range(5)])
    run_available_now(spark, pipeline)  # checkpoint: partition 0 read up to offset 5
    produce_claims(pipeline, [make_professional_claim(claim_id=f"B{i}") for i in range(5)])  # offsets 5..9
    _delete_head(kafka_broker.bootstrap, pipeline.topics.raw, 0, before=8)  # 5, 6, 7 vanish unread

    running = start_claims_query(spark, pipeline.settings, available_now=True, as_of=AS_OF)
    try:
        with pytest.raises(StreamingQueryException) as failure:
            running.query.awaitTermination(300)
    finally:
        running.stop()
    text = str(failure.value)
    assert "data may have been lost" in text
    assert "offset=5" in text  # the first offset that was lost ...
    assert f"out of range for partition {pipeline.topics.raw}-0" in text  # ... and its partition
    assert table(spark, pipeline.tables.bronze).count() == 5  # nothing of the second batch was written


def test_an_operator_can_resume_past_a_loss_knowingly(spark, kafka_broker, tmp_path):
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, partitions=1)
    produce_claims(pipeline, [make_professional_claim(claim_id=f"A{i}") for i in range(5)])
    run_available_now(spark, pipeline)
    produce_claims(pipeline, [make_professional_claim(claim_id=f"B{i}") for i in range(5)])
    _delete_head(kafka_broker.bootstrap, pipeline.topics.raw, 0, before=8)

    accepting = pipeline.settings.model_copy(
        update={"spark": pipeline.settings.spark.model_copy(update={"fail_on_data_loss": False})})
    run_available_now(spark, pipeline, settings=accepting)
    offsets = sorted(row["kafka_offset"] for row in table(spark, pipeline.tables.bronze).collect())
    assert offsets == [0, 1, 2, 3, 4, 8, 9]  # the lost offsets are gone, the rest was read
