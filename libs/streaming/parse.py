"""Turn raw Kafka rows into parsed claim rows, or into message-level rejections with a reason code.

Why a separate step: a message that is not JSON, has wrong types, lacks the key fields or is huge must never stop the
query. Each such message is tagged with a `MessageReason` and routed to quarantine and the dead-letter topic with its
partition and offset; only parsed rows reach the validation rules.
"""

from __future__ import annotations

from enum import StrEnum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.streaming.schema import CORRUPT_RECORD_COLUMN, claim_message_schema

# Values above this are not parsed at all: a claim of a few hundred lines is ~100 KB; a multi-megabyte value is an
# upstream fault, and parsing it would only put memory pressure on the executors.
MAX_PARSE_BYTES = 1_000_000


class MessageReason(StrEnum):
    """Why a raw message could not become a claim (kept apart from the claim validation reason codes)."""

    EMPTY = "MESSAGE_EMPTY"
    TOO_LARGE = "MESSAGE_TOO_LARGE"
    NOT_JSON = "MESSAGE_NOT_JSON"
    SCHEMA_MISMATCH = "MESSAGE_SCHEMA_MISMATCH"
    MISSING_CLAIM_ID = "MESSAGE_MISSING_CLAIM_ID"
    BAD_CLAIM_TYPE = "MESSAGE_BAD_CLAIM_TYPE"


KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "kafka_key")


def with_kafka_columns(raw: DataFrame) -> DataFrame:
    """Rename the Kafka source columns once, so every later step and table uses the same names."""
    return raw.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("value"),
        F.coalesce(F.length("value"), F.lit(0)).alias("value_size"),
    )


def _message_reason(claim: Column, size: Column, value: Column) -> Column:
    corrupt = claim[CORRUPT_RECORD_COLUMN].isNotNull()
    claim_id_blank = claim["claim_id"].isNull() | (F.trim(claim["claim_id"]) == "")
    text = F.ltrim(value.cast("string"))
    looks_like_object = text.startswith("{")
    return (
        F.when(value.isNull() | (size == 0), F.lit(MessageReason.EMPTY.value))
        .when(size > MAX_PARSE_BYTES, F.lit(MessageReason.TOO_LARGE.value))
        .when(claim.isNull() | (corrupt & ~looks_like_object), F.lit(MessageReason.NOT_JSON.value))
        .when(corrupt & claim_id_blank, F.lit(MessageReason.NOT_JSON.value))
        .when(corrupt, F.lit(MessageReason.SCHEMA_MISMATCH.value))
        .when(claim_id_blank, F.lit(MessageReason.MISSING_CLAIM_ID.value))
        .when(
            F.coalesce(~claim["claim_type"].isin("professional", "institutional"), F.lit(True)),
            F.lit(MessageReason.BAD_CLAIM_TYPE.value),
        )
    )


def parse_messages(raw: DataFrame) -> DataFrame:
    """Parse `value` with the schema derived from the claim model.

    Returns the Kafka columns, `value`, `value_size`, `claim` (the parsed struct, null when oversize) and
    `message_reason` (null when the message parsed into a claim).
    """
    schema = claim_message_schema()
    small_enough = F.col("value_size") <= MAX_PARSE_BYTES
    parsed = F.when(
        small_enough,
        F.from_json(
            F.col("value").cast("string"),
            schema,
            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD_COLUMN},
        ),
    )
    frame = with_kafka_columns(raw) if "partition" in raw.columns else raw
    frame = frame.withColumn("claim", parsed)
    return frame.withColumn("message_reason", _message_reason(F.col("claim"), F.col("value_size"), F.col("value")))
