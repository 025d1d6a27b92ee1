"""The micro-batch function of the streaming query: check once, then bronze, quarantine, events, silver and topics.

Why one `(batch_df, batch_id)` function: every output of a micro-batch must see the same input rows. The batch is read
from Kafka and checked by the Python rules once (the checked frame is cached), then each output is a projection of it
(libs.streaming.frames); this module only orders the writes, counts what went where and times each step.

Every table write is an append made once per batch (libs.lake.writes): bronze (what was received), quarantine
(what was rejected and why), the event ledger (what was accepted, and what each replacement or void removes) and silver
(every accepted claim version, enriched). Nothing is read back or rewritten: a MERGE or DELETE into silver per batch
scans the whole table and measured 3-10 s per batch on two cores, growing with the table, while an append costs the
same at any size. The current claims are derived from silver and the ledger (libs.lake.readers.current_claims), and
the daily batch applies them to the warehouse.

A crash anywhere makes Structured Streaming replay the batch on restart: each table that already has the batch's rows
is skipped, the rest are written, and the Kafka outputs are at-least-once (consumers key on claim_id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from libs.lake import LakeTables, OnceAppender, ensure_table
from libs.monitoring.correlation import (
    RunInBatch,
    log_batch_correlations,
    run_aggregates,
    run_id_column,
    runs_from_rows,
)
from libs.streaming import frames
from libs.streaming.parse import check_messages

log = logging.getLogger(__name__)

RAW_KAFKA_SCHEMA = StructType(
    [
        StructField("key", BinaryType()),
        StructField("value", BinaryType()),
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
        StructField("timestampType", IntegerType()),
    ]
)
SINK_PRODUCER_OPTIONS = {
    # A poison message of up to 10 MB (the raw and dead-letter topic limit) must fit in the dead-letter topic unchanged.
    "kafka.max.request.size": str(11 * 1024 * 1024),
    # Claims JSON compresses ~4x; batching and lz4 cut broker I/O on the shared cores.
    "kafka.compression.type": "lz4",
    "kafka.linger.ms": "20",
    "kafka.batch.size": str(512 * 1024),
}
# Delta statistics only for the columns lookups filter on (see libs.lake.tables.ensure_table).
BRONZE_STATS = ("kafka_partition", "kafka_offset", "kafka_timestamp", "pipeline_id", "batch_id")
LEDGER_STATS = ("claim_id", "kafka_partition", "kafka_offset", "kafka_timestamp", "pipeline_id", "batch_id")
SILVER_STATS = ("claim_id", "claim_type", "frequency_code", "service_date_from", "service_date_to", "billing_npi",
                "payer_id", "member_token", "first_service_date", "service_month", "kafka_timestamp", "pipeline_id",
                "batch_id")


@dataclass(frozen=True)
class OutputTopics:
    """Topic names the query writes (from configs/kafka/topics.json)."""

    validated: str
    processed: str
    quality: str
    alerts: str
    dead_letter: str


@dataclass
class BatchOutcome:
    """What one micro-batch did; published on the quality topic and as Prometheus metrics."""

    batch_id: int
    input_rows: int = 0
    valid: int = 0
    quarantined: int = 0
    alerts: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    runs: list[RunInBatch] = field(default_factory=list)  # per producer run / API request (correlation ids)
    step_seconds: dict[str, float] = field(default_factory=dict)
    duration_seconds: float = 0.0
    started_at: str = ""
    silver_committed_at: datetime | None = None
    topics_sent_at: datetime | None = None
    clock_started: float = field(default_factory=time.perf_counter, repr=False)

    def elapsed(self) -> float:
        """Seconds since the batch started."""
        return time.perf_counter() - self.clock_started

    def as_message(self) -> dict[str, Any]:
        """The JSON document sent to `medical-claims-quality`."""
        ratio = self.valid / self.input_rows if self.input_rows else 1.0
        return {
            "batch_id": self.batch_id,
            "started_at": self.started_at,
            "input_rows": self.input_rows,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "alerts": self.alerts,
            "valid_ratio": round(ratio, 6),
            "reason_counts": self.reason_counts,
            # Sent with the batch's other outputs, so: from the batch's start until its outputs were being written.
            "batch_latency_ms": round(self.duration_seconds * 1000, 1),
        }

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step of the batch into `step_seconds` (the per-step breakdown of `make bench`).

        Steps that run concurrently each get their own wall time, so the steps can add up to more than the batch.
        """
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds[name] = self.step_seconds.get(name, 0.0) + time.perf_counter() - started


def create_lake_tables(spark: SparkSession, tables: LakeTables) -> None:
    """Create the stream's Delta tables (empty) where they do not exist yet, with the schemas the stream writes."""
    checked = check_messages(spark.createDataFrame([], RAW_KAFKA_SCHEMA), datetime.now(UTC).date())
    for location, frame, stats, deletion_vectors in (
        (tables.bronze, frames.bronze_frame(checked), BRONZE_STATS, False),
        (tables.quarantine, frames.quarantine_frame(checked), LEDGER_STATS, False),
        (tables.claim_events, frames.events_frame(checked), LEDGER_STATS, False),
        (tables.silver, frames.silver_frame(checked), SILVER_STATS, True),
    ):
        ensure_table(spark, location, frame.schema, ["ingest_date"], stats_columns=stats,
                     deletion_vectors=deletion_vectors)


class ClaimBatchProcessor:
    """The `foreachBatch` function of the claims query; also creates the tables it needs."""

    def __init__(
        self,
        *,
        spark: SparkSession,
        tables: LakeTables,
        topics: OutputTopics,
        kafka_options: dict[str, str],
        pipeline_id: str,
        as_of: Callable[[], date] = lambda: datetime.now(UTC).date(),
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.tables = tables
        self.topics = topics
        self.kafka_options = kafka_options
        self.pipeline_id = pipeline_id
        self.as_of = as_of
        self.on_batch = on_batch
        self.appender = OnceAppender(pipeline_id)
        create_lake_tables(spark, tables)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        outcome = BatchOutcome(batch_id=batch_id, started_at=datetime.now(UTC).isoformat())
        checked = check_messages(batch_df, self.as_of(), pipeline_id=self.pipeline_id,
                                 batch_id=batch_id).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            with outcome.step("check"):
                self._count(checked, outcome)
            if outcome.input_rows:
                self._write(checked, batch_id, outcome)
        finally:
            checked.unpersist()
        outcome.duration_seconds = outcome.elapsed()
        if self.on_batch is not None:
            self.on_batch(outcome)

    @staticmethod
    def _count(checked: DataFrame, outcome: BatchOutcome) -> None:
        """One pass over the batch (which also fills the cache): rows by outcome and the reasons of the rejected."""
        rows = checked.groupBy("is_valid", "error_codes", run_id_column().alias("run_id")).agg(
            F.count(F.lit(1)).alias("rows"), F.sum(F.size("alerts")).alias("alerts"), *run_aggregates()).collect()
        outcome.runs = runs_from_rows(rows)
        reasons: dict[str, int] = {}
        for row in rows:
            count = int(row["rows"])
            outcome.input_rows += count
            if row["is_valid"]:
                outcome.valid += count
                outcome.alerts += int(row["alerts"] or 0)
            else:
                outcome.quarantined += count
                for code in row["error_codes"] or ():
                    reasons[code] = reasons.get(code, 0) + count
        outcome.reason_counts = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))

    def _write(self, checked: DataFrame, batch_id: int, outcome: BatchOutcome) -> None:
        """The batch's outputs, written concurrently: each is an independent projection of the cached batch.

        Concurrency hides each write's serial part (planning, the Delta commit on the driver) behind the others'
        task work. Order does not matter for crash safety: a replay finds each table with or without the batch's rows
        and writes only the missing ones (libs.lake.writes).
        """
        append, tables = self.appender.append, self.tables
        writes: dict[str, Callable[[], object]] = {
            "bronze": lambda: append(frames.bronze_frame(checked), tables.bronze, batch_id),
            "topics": lambda: self._write_topics(checked, batch_id, outcome),
            # Reads only: the batch's correlation ids into the stream's log, alongside the writes.
            "correlation": lambda: log_batch_correlations(checked, batch_id, runs=outcome.runs),
        }
        if outcome.quarantined:
            writes["quarantine"] = lambda: append(frames.quarantine_frame(checked).coalesce(1),
                                                  tables.quarantine, batch_id)
        if outcome.valid:
            writes["events"] = lambda: append(frames.events_frame(checked).coalesce(1),
                                              tables.claim_events, batch_id)
            writes["silver"] = lambda: append(frames.silver_frame(checked), tables.silver, batch_id)

        def run(name: str) -> None:
            with outcome.step(name):
                writes[name]()
            if name == "silver":
                outcome.silver_committed_at = datetime.now(UTC)
            elif name == "topics":
                outcome.topics_sent_at = datetime.now(UTC)

        with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="claims-batch-write") as pool:
            for future in [pool.submit(run, name) for name in writes]:
                future.result()  # re-raises the first failure: the batch fails and is replayed on restart

    def _write_topics(self, checked: DataFrame, batch_id: int, outcome: BatchOutcome) -> None:
        """One Kafka write for every output topic of the batch (the sink routes rows by their `topic` column)."""
        topics = self.topics
        outcome.duration_seconds = outcome.elapsed()
        messages = frames.topic_messages(checked, topics).unionByName(
            frames.quality_message(checked.sparkSession, topics.quality, str(batch_id), outcome.as_message()))
        writer = messages.write.format("kafka")
        for key, value in {**SINK_PRODUCER_OPTIONS, **self.kafka_options}.items():
            writer = writer.option(key, value)
        writer.save()
