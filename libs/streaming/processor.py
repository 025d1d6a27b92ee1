"""The micro-batch function of the streaming query: bronze, validation, quarantine, silver, topics, quality.

Why one `(batch_df, batch_id)` function: every output of a micro-batch must see the same input rows, and Delta's
idempotent writes need the batch id. The transforms it calls (parse, validate, enrich, alerts) are pure DataFrame
functions tested on static frames; this module only orders the writes and counts what went where.

Write order matters for crash safety: bronze first (the record of what was received), then quarantine and the claim
events, then silver. A crash anywhere replays the batch; every Delta write is idempotent, Kafka outputs are
at-least-once (consumers key on claim_id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import (
    BinaryType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from libs.streaming.enrich import enrich_claims, processed_messages, stateless_alerts
from libs.streaming.lake import LakeTables, ensure_table, idempotent_append
from libs.streaming.parse import KAFKA_COLUMNS, parse_messages, with_kafka_columns
from libs.streaming.refdata import SparkRefData
from libs.streaming.validation import validate_messages

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
REMOVING_FREQUENCIES = ("7", "8")
SINK_PRODUCER_OPTIONS = {
    # A poison message of up to 10 MB (the raw and dead-letter topic limit) must fit in the dead-letter topic unchanged.
    "kafka.max.request.size": str(11 * 1024 * 1024),
    # Claims JSON compresses ~5x; batching and lz4 cut broker I/O on the shared cores.
    "kafka.compression.type": "lz4",
    "kafka.linger.ms": "20",
    "kafka.batch.size": str(512 * 1024),
}
VOID = "8"


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
    """What one micro-batch did; published as quality metrics and Prometheus counters."""

    batch_id: int
    input_rows: int = 0
    valid: int = 0
    quarantined: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    started_at: str = ""

    def as_message(self) -> dict[str, Any]:
        """The JSON document sent to `medical-claims-quality`."""
        ratio = self.valid / self.input_rows if self.input_rows else 1.0
        return {
            "batch_id": self.batch_id,
            "started_at": self.started_at,
            "input_rows": self.input_rows,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "valid_ratio": round(ratio, 6),
            "reason_counts": self.reason_counts,
            "batch_latency_ms": round(self.duration_seconds * 1000, 1),
        }


def bronze_frame(messages: DataFrame, batch_id: int) -> DataFrame:
    """Every message exactly as received, with its Kafka coordinates (from the parsed or the raw frame)."""
    frame = messages if "kafka_offset" in messages.columns else with_kafka_columns(messages)
    return frame.select(
        *KAFKA_COLUMNS, "value", "value_size",
        F.to_date("kafka_timestamp").alias("ingest_date"),
        F.lit(batch_id).cast("long").alias("batch_id"),
    )


def quarantine_frame(checked: DataFrame, batch_id: int) -> DataFrame:
    """Rejected messages: reason codes and Kafka coordinates; the payload stays in bronze (no copy of it here)."""
    return checked.filter(~F.col("is_valid")).select(
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        F.col("claim.claim_id").alias("claim_id"),
        "reason_codes",
        "warning_codes",
        "value_size",
        F.to_date("kafka_timestamp").alias("ingest_date"),
        F.lit(batch_id).cast("long").alias("batch_id"),
    )


def events_frame(valid: DataFrame, batch_id: int) -> DataFrame:
    """One row per valid claim message: the ledger silver is reconciled against."""
    return valid.select(
        F.col("claim.claim_id").alias("claim_id"),
        F.col("claim.frequency_code").alias("frequency_code"),
        F.col("claim.original_claim_id").alias("original_claim_id"),
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        F.to_date("kafka_timestamp").alias("ingest_date"),
        F.lit(batch_id).cast("long").alias("batch_id"),
    )


def supersession_frame(events: DataFrame) -> DataFrame:
    """Originals removed by a replacement (7) or void (8) that names another claim id."""
    # A replacement that reuses its original's claim id simply updates the row; a void always removes its original,
    # also when it names its own claim id.
    removing = events.filter(
        F.col("frequency_code").isin(*REMOVING_FREQUENCIES)
        & F.col("original_claim_id").isNotNull()
        & ((F.col("original_claim_id") != F.col("claim_id")) | (F.col("frequency_code") == VOID))
    )
    return removing.select(
        F.col("original_claim_id").alias("claim_id"),
        F.col("claim_id").alias("superseded_by"),
        "frequency_code",
        "kafka_partition",
        "kafka_offset",
        "batch_id",
    )


def latest_upserts(enriched: DataFrame) -> DataFrame:
    """One row per claim_id, the newest offset, unless that newest version is a void (then nothing is upserted)."""
    newest_first = Window.partitionBy("claim_id").orderBy(F.col("kafka_offset").desc(), F.col("kafka_partition").desc())
    newest = enriched.withColumn("_rank", F.row_number().over(newest_first)).filter(F.col("_rank") == 1).drop("_rank")
    return newest.filter(F.col("frequency_code") != VOID)


HEADERS_TYPE = "array<struct<key:string,value:binary>>"


def _header(name: str, value: Any) -> Any:
    return F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))


class ClaimBatchProcessor:
    """The `foreachBatch` function of the claims query; also creates the tables it needs."""

    def __init__(
        self,
        *,
        spark: SparkSession,
        tables: LakeTables,
        topics: OutputTopics,
        kafka_options: dict[str, str],
        ref: SparkRefData,
        pipeline_id: str,
        as_of: Callable[[], date] = lambda: datetime.now(UTC).date(),
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.tables = tables
        self.topics = topics
        self.kafka_options = kafka_options
        self.ref = ref
        self.pipeline_id = pipeline_id
        self.as_of = as_of
        self.on_batch = on_batch
        self._create_tables(spark)
        self._supersessions_seen = spark.read.format("delta").load(tables.supersessions).limit(1).count() > 0

    def _create_tables(self, spark: SparkSession) -> None:
        empty = spark.createDataFrame([], RAW_KAFKA_SCHEMA)
        checked = validate_messages(parse_messages(empty), self.ref, self.as_of())
        valid = checked.filter(F.col("is_valid"))
        events = events_frame(valid, 0)
        ensure_table(spark, self.tables.bronze, bronze_frame(empty, 0).schema, ["ingest_date"])
        ensure_table(spark, self.tables.quarantine, quarantine_frame(checked, 0).schema, ["ingest_date"])
        ensure_table(spark, self.tables.claim_events, events.schema, ["ingest_date"])
        ensure_table(spark, self.tables.supersessions, supersession_frame(events).schema, [])
        ensure_table(spark, self.tables.silver, enrich_claims(valid, self.ref).schema, ["service_month"],
                     deletion_vectors=True)
        ensure_table(spark, self.tables.batches, BATCHES_SCHEMA, [])

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        outcome = BatchOutcome(batch_id=batch_id, started_at=datetime.now(UTC).isoformat())
        # Parse once and validate once: both frames are cached, so Kafka is read and JSON parsed a single time per
        # batch however many outputs follow (the ICD-10 lookup reads `parsed` a second time).
        parsed = parse_messages(batch_df).persist(StorageLevel.MEMORY_AND_DISK)
        checked = validate_messages(parsed, self.ref, self.as_of()).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            idempotent_append(bronze_frame(checked, batch_id), self.tables.bronze, f"{self.pipeline_id}-bronze",
                              batch_id)
            parsed.unpersist()
            self._route(checked, batch_id, outcome)
        finally:
            parsed.unpersist()
            checked.unpersist()
        outcome.duration_seconds = time.perf_counter() - started
        self._publish_quality(batch_df.sparkSession, outcome)
        if self.on_batch is not None:
            self.on_batch(outcome)

    def _route(self, checked: DataFrame, batch_id: int, outcome: BatchOutcome) -> None:
        app = self.pipeline_id
        frequency, original = F.col("claim.frequency_code"), F.col("claim.original_claim_id")
        removing = frequency.isin(*REMOVING_FREQUENCIES) & original.isNotNull()
        upserting = F.col("is_valid") & (frequency != VOID)
        stats = checked.agg(
            F.count_if(F.col("is_valid")).alias("valid"),
            F.count_if(~F.col("is_valid")).alias("quarantined"),
            F.count_if(F.col("is_valid") & removing).alias("removing"),
            F.count_if(upserting).alias("upserting"),
            F.count_distinct(F.when(upserting, F.col("claim.claim_id"))).alias("distinct_upserting"),
        ).first()
        if stats is None:  # a global aggregate always has one row; this only narrows the type
            return
        outcome.valid = int(stats["valid"])
        outcome.quarantined = int(stats["quarantined"])
        outcome.input_rows = outcome.valid + outcome.quarantined
        if outcome.input_rows == 0:
            return
        if outcome.quarantined:
            reasons = checked.select(F.explode("reason_codes").alias("code")).groupBy("code").count().collect()
            outcome.reason_counts = {row["code"]: int(row["count"]) for row in reasons}
            quarantined = quarantine_frame(checked, batch_id)
            idempotent_append(quarantined, self.tables.quarantine, f"{app}-quarantine", batch_id)
        valid = checked.filter(F.col("is_valid"))
        enriched = enrich_claims(valid, self.ref)
        if outcome.valid:
            events = events_frame(valid, batch_id)
            idempotent_append(events, self.tables.claim_events, f"{app}-events", batch_id)
            if stats["removing"]:
                idempotent_append(supersession_frame(events), self.tables.supersessions, f"{app}-supersessions",
                                  batch_id)
                self._supersessions_seen = True
            repeated_ids = stats["upserting"] != stats["distinct_upserting"]
            self._apply_to_silver(checked.sparkSession, enriched, batch_id, repeated_ids=repeated_ids)
        self._write_topics(checked, valid)

    def _apply_to_silver(self, spark: SparkSession, enriched: DataFrame, batch_id: int, *, repeated_ids: bool) -> None:
        """Upsert the batch's claims into silver, then remove what replacements and voids supersede.

        Most claims are new: they are appended (an idempotent Delta append, cheap), and only claim ids already in
        silver go through MERGE. A replayed batch finds its appended ids present and merges them again with the same
        content, so the outcome is the same either way.
        """
        from delta.tables import DeltaTable  # noqa: PLC0415

        # The newest-offset window costs a shuffle of whole rows; it is only needed when a claim id repeats.
        upserts = latest_upserts(enriched) if repeated_ids else enriched.filter(F.col("frequency_code") != VOID)
        superseded = None
        if self._supersessions_seen:
            # Originals that arrive after their replacement or void must not come back: the ledger of removed claim
            # ids is consulted before every upsert once it has rows.
            superseded = spark.read.format("delta").load(self.tables.supersessions).select("claim_id").distinct()
            upserts = upserts.join(superseded, "claim_id", "left_anti")
        silver = DeltaTable.forPath(spark, self.tables.silver)
        present = silver.toDF().select("claim_id")
        # Claims already in silver, evaluated (eagerly checkpointed) before the append below changes the table.
        existing = upserts.join(present, "claim_id", "left_semi").localCheckpoint()
        idempotent_append(upserts.join(present, "claim_id", "left_anti"), self.tables.silver,
                          f"{self.pipeline_id}-silver", batch_id)
        if not existing.isEmpty():
            silver.alias("t").merge(existing.alias("s"), "t.claim_id = s.claim_id").whenMatchedUpdateAll().execute()
        if superseded is not None:
            silver.alias("t").merge(superseded.alias("s"), "t.claim_id = s.claim_id").whenMatchedDelete().execute()

    def _write_topics(self, checked: DataFrame, valid: DataFrame) -> None:
        """One Kafka write for every output topic of the batch (the sink routes rows by their `topic` column)."""
        no_headers = F.lit(None).cast(HEADERS_TYPE)
        validated = valid.select(
            F.lit(self.topics.validated).alias("topic"), F.col("kafka_key").alias("key"), "value",
            no_headers.alias("headers"),
        )
        processed = processed_messages(valid, self.ref).select(
            F.lit(self.topics.processed).alias("topic"), F.col("key").cast("string").alias("key"), "value",
            no_headers.alias("headers"),
        )
        dead_letter = checked.filter(~F.col("is_valid")).select(
            F.lit(self.topics.dead_letter).alias("topic"), F.col("kafka_key").alias("key"), "value",
            F.array(
                _header("reason_codes", F.concat_ws(",", "reason_codes")),
                _header("source_partition", F.col("kafka_partition").cast("string")),
                _header("source_offset", F.col("kafka_offset").cast("string")),
            ).alias("headers"),
        )
        alerts = stateless_alerts(valid, self.ref).select(
            F.lit(self.topics.alerts).alias("topic"), F.col("claim_id").alias("key"),
            F.to_json(F.struct("*")).cast("binary").alias("value"), no_headers.alias("headers"),
        )
        self._to_kafka(validated.unionByName(processed).unionByName(dead_letter).unionByName(alerts), topic=None)

    def _to_kafka(self, frame: DataFrame, topic: str | None) -> None:
        writer = frame.write.format("kafka")
        for key, value in SINK_PRODUCER_OPTIONS.items():
            writer = writer.option(key, value)
        if topic is not None:
            writer = writer.option("topic", topic)
        for key, value in self.kafka_options.items():
            writer = writer.option(key, value)
        writer.save()

    def _publish_quality(self, spark: SparkSession, outcome: BatchOutcome) -> None:
        import orjson  # noqa: PLC0415

        message = orjson.dumps(outcome.as_message()).decode()
        frame = spark.createDataFrame([(str(outcome.batch_id), message)], "key string, value string")
        self._to_kafka(frame, self.topics.quality)
        row = spark.createDataFrame(
            [(outcome.batch_id, outcome.input_rows, outcome.valid, outcome.quarantined, outcome.duration_seconds,
              datetime.now(UTC), message)],
            BATCHES_SCHEMA,
        )
        idempotent_append(row, self.tables.batches, f"{self.pipeline_id}-batches", outcome.batch_id)


BATCHES_SCHEMA = StructType(
    [
        StructField("batch_id", LongType()),
        StructField("input_rows", LongType()),
        StructField("valid", LongType()),
        StructField("quarantined", LongType()),
        StructField("duration_seconds", DoubleType()),
        StructField("committed_at", TimestampType()),
        StructField("quality_json", StringType()),
    ]
)
