"""Reading the lake: the claim columns of silver rows, the removal ledger and the current claims.

Why readers: the stream only ever appends (libs.streaming.processor), so a replacement, a void or a later version of a
claim id adds rows instead of rewriting old ones. What "the claims as they stand" means is therefore defined once,
here, and the daily batch, the reconciliation and the PHI commands all read through it:

    current claims = for each claim id, its newest accepted version in silver,
                     unless an event removed that claim id (a replacement naming another id, or a void).

Newest is by Kafka coordinates: a claim id is the message key, so all its versions land in one partition, in order.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812

from libs.lake.schema import CORRUPT_RECORD_COLUMN, claim_message_schema

# Silver columns that are not part of the claim JSON (the claim's own fields come from the JSON).
SILVER_EXTRAS = ("claim_json", "kafka_partition", "kafka_offset", "kafka_timestamp", "warning_codes",
                 "billing_specialty", "principal_diagnosis", "line_count", "total_units", "em_level", "age_band",
                 "first_service_date", "service_month", "processed_at", "ingest_date", "pipeline_id", "batch_id")


def read_delta(spark: SparkSession, location: str) -> DataFrame:
    """A Delta table of the lake."""
    return spark.read.format("delta").load(location)


def claim_struct(json: Column) -> Column:
    """A protected claim's JSON as a struct of the model's schema (PERMISSIVE: unreadable -> corrupt-record column)."""
    return F.from_json(json, claim_message_schema(),
                       {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD_COLUMN})


def silver_claims(silver: DataFrame) -> DataFrame:
    """Silver rows with the claim's nested columns (claim_id, lines, diagnoses, phi blocks...) and silver's extras.

    The extras keep `claim_json`, the claim as received, for whatever needs the record itself (a reveal, a screen).

    The stream accepted each claim with the strict parser of the same model, so every row parses; a row that did not
    would keep null claim columns and its JSON in `_corrupt_record` (callers that must not lose it check that column).
    """
    parsed = silver.select(claim_struct(F.col("claim_json")).alias("c"), *SILVER_EXTRAS)
    return parsed.select("c.*", *SILVER_EXTRAS)


def removals(events: DataFrame) -> DataFrame:
    """Claim ids removed from the current claims: claim_id (removed), superseded_by, frequency_code, coordinates."""
    return events.where(F.col("supersedes_claim_id").isNotNull()).select(
        F.col("supersedes_claim_id").alias("claim_id"), F.col("claim_id").alias("superseded_by"), "frequency_code",
        "kafka_partition", "kafka_offset", "kafka_timestamp")


def newest_versions(rows: DataFrame) -> DataFrame:
    """One row per claim_id: the version with the highest Kafka offset (ties: partition)."""
    newest_first = Window.partitionBy("claim_id").orderBy(F.col("kafka_offset").desc(), F.col("kafka_partition").desc())
    ranked = rows.withColumn("_rank", F.row_number().over(newest_first))
    return ranked.where(F.col("_rank") == 1).drop("_rank")


def current_claims(silver: DataFrame, events: DataFrame) -> DataFrame:
    """The claims as they stand: newest version per claim id among `silver`, minus every claim id `events` removed.

    `silver` may be a subset (e.g. one day's rows: the day's newest versions, of claims not removed by any event).
    """
    removed = removals(events).select("claim_id").distinct()
    return newest_versions(silver).join(removed, "claim_id", "left_anti")
