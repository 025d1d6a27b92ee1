"""Start the claims streaming query: Kafka source, `foreachBatch` processor, trigger and checkpoint.

Why a builder separate from the app: `claims stream`, `claims run`, the bench and the integration tests all start the
same query with different triggers (every 5 s in production, availableNow for finite runs) and bootstrap servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from libs.kafka.client_config import spark_kafka_options
from libs.kafka.topics import Topics, load_topics
from libs.lake import LakeTables, pipeline_identity
from libs.settings import Settings
from libs.streaming.metrics import PrometheusQueryListener, StreamMetrics
from libs.streaming.processor import BatchOutcome, ClaimBatchProcessor, OutputTopics

QUERY_NAME = "claims-stream"
SOURCE_CONSUMER_OPTIONS = {
    # Each task reads a bounded offset range, and its last fetch finds no data beyond the range's end: with Kafka's
    # default fetch.max.wait.ms the broker then holds that fetch for 500 ms, once per task and micro-batch (measured:
    # 0.6 s per task whatever its size; 20 ms brings a 6-partition read of 20,000 claims from 2.0 s to 0.5 s).
    "kafka.fetch.max.wait.ms": "20",
    "kafka.max.partition.fetch.bytes": str(8 * 1024 * 1024),
}


def output_topics(topics: Topics) -> OutputTopics:
    """The sink topics, by role."""
    return OutputTopics(
        validated=topics.validated,
        processed=topics.processed,
        quality=topics.quality,
        alerts=topics.alerts,
        dead_letter=topics.dead_letter,
    )


@dataclass
class RunningQuery:
    """A started query with what is needed to observe it."""

    query: StreamingQuery
    processor: ClaimBatchProcessor
    metrics: StreamMetrics
    listener: PrometheusQueryListener
    tables: LakeTables
    spark: SparkSession

    def stop(self) -> None:
        """Stop the query (at a batch boundary) and detach its metrics listener from the session."""
        self.query.stop()
        self.spark.streams.removeListener(self.listener)


def _both(first: Callable[[BatchOutcome], None], second: Callable[[BatchOutcome], None] | None
          ) -> Callable[[BatchOutcome], None]:
    if second is None:
        return first

    def call(outcome: BatchOutcome) -> None:
        first(outcome)
        second(outcome)

    return call


def start_claims_query(
    spark: SparkSession,
    settings: Settings,
    *,
    available_now: bool = False,
    checkpoint: str | None = None,
    metrics: StreamMetrics | None = None,
    as_of: date | None = None,
    starting_offsets: str = "earliest",
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> RunningQuery:
    """Start the query reading `medical-claims-raw`; `available_now` drains what is there and stops.

    `on_batch` is called with each micro-batch's outcome after its writes (besides the Prometheus metrics).
    """
    topics = load_topics(settings.kafka.topics_file)
    tables = LakeTables.from_settings(settings.lake)
    # Each micro-batch is cached once and dropped after its writes: compressing the cached columns (compressibility
    # statistics per value, then encoding) was most of the cost of building that cache in a JFR profile of a
    # 100,000-claim batch, and would save memory only for the seconds a batch is held.
    spark.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    checkpoint_dir = checkpoint or f"{settings.lake.checkpoint_root.rstrip('/')}/{QUERY_NAME}"
    kafka_options = spark_kafka_options(settings.kafka)
    metrics = metrics or StreamMetrics()
    listener = PrometheusQueryListener(metrics)
    spark.streams.addListener(listener)
    processor = ClaimBatchProcessor(
        spark=spark,
        tables=tables,
        topics=output_topics(topics),
        kafka_options=kafka_options,
        pipeline_id=pipeline_identity(checkpoint_dir),
        on_batch=_both(metrics.record_batch, on_batch),
        **({"as_of": (lambda: as_of)} if as_of is not None else {}),
    )
    reader = spark.readStream.format("kafka").option("subscribe", topics.raw)
    # Offsets that vanish before the query read them (retention ran out, the topic was recreated) stop the query with
    # Spark's error naming the partition and offsets, instead of being skipped silently; an operator who accepts the
    # loss turns it off knowingly (settings.spark.fail_on_data_loss, docs/operations.md).
    reader = reader.option("startingOffsets", starting_offsets)
    reader = reader.option("failOnDataLoss", str(settings.spark.fail_on_data_loss).lower())
    reader = reader.option("includeHeaders", "true")  # the correlation_id header, carried into the logs
    for key, value in SOURCE_CONSUMER_OPTIONS.items():
        reader = reader.option(key, value)
    if settings.spark.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.spark.max_offsets_per_trigger))
    for key, value in kafka_options.items():
        reader = reader.option(key, value)
    writer = reader.load().writeStream.queryName(QUERY_NAME).foreachBatch(processor)
    writer = writer.option("checkpointLocation", checkpoint_dir)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.spark.trigger_seconds} seconds")
    return RunningQuery(query=writer.start(), processor=processor, metrics=metrics, listener=listener, tables=tables,
                        spark=spark)
