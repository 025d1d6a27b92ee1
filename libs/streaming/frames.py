"""The rows each output of a micro-batch gets, as pure DataFrame functions of the checked frame.

Why pure functions: every output (bronze, quarantine, the event ledger, silver, the five topics) is a
projection of one checked frame (libs.streaming.parse.check_messages), so its semantics can be pinned row by row on
static frames; the processor (libs.streaming.processor) only orders the writes.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.model import FrequencyCode
from libs.streaming.check import ENRICHMENT_COLUMNS, SILVER_KEY_COLUMNS
from libs.streaming.parse import KAFKA_COLUMNS

VOID = FrequencyCode.VOID.value
REMOVING_FREQUENCIES = (FrequencyCode.REPLACEMENT.value, VOID)
HEADERS_TYPE = "array<struct<key:string,value:binary>>"


def _ingest_date() -> Column:
    return F.to_date("kafka_timestamp").alias("ingest_date")


def bronze_frame(checked: DataFrame) -> DataFrame:
    """Every message exactly as received, with its Kafka coordinates."""
    return checked.select(*KAFKA_COLUMNS, "value", "value_size", _ingest_date(), "pipeline_id", "batch_id")


def quarantine_frame(checked: DataFrame) -> DataFrame:
    """Rejected messages: reason codes, each finding with the field it points at, and the Kafka coordinates.

    The payload stays in bronze (same partition and offset); no copy of it here.
    """
    return checked.where(~F.col("is_valid")).select(
        "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "claim_id",
        F.col("error_codes").alias("reason_codes"), "warning_codes", "findings", "value_size", _ingest_date(),
        "pipeline_id", "batch_id",
    )


def removes(frequency: Column, claim_id: Column, original: Column) -> Column:
    """Whether a claim message removes another claim from the current state.

    A replacement (7) removes the original it names when that is another claim id (one that reuses its original's
    id simply is the new version); a void (8) always removes its original, also when it names its own claim id.
    """
    return (frequency.isin(*REMOVING_FREQUENCIES) & original.isNotNull()
            & ((original != claim_id) | (frequency == VOID)))


def events_frame(checked: DataFrame) -> DataFrame:
    """One row per valid claim message: the ledger the current claims are derived from and reconciled against.

    `supersedes_claim_id` is the claim this message removes (libs.lake.readers.removals reads them).
    """
    supersedes = F.when(removes(F.col("frequency_code"), F.col("claim_id"), F.col("original_claim_id")),
                        F.col("original_claim_id"))
    return checked.where(F.col("is_valid")).select(
        "claim_id", "frequency_code", "original_claim_id", supersedes.cast("string").alias("supersedes_claim_id"),
        "kafka_partition", "kafka_offset", "kafka_timestamp", _ingest_date(), "pipeline_id", "batch_id",
    )


def silver_frame(checked: DataFrame) -> DataFrame:
    """Silver rows: every accepted claim version (valid and not a void), its key columns, enrichment and JSON.

    `claim_json` is the protected claim exactly as received (libs.lake.readers.silver_claims reads it into the model's
    nested columns). Silver is append-only: a later version of a claim id, a replacement or a void does not rewrite
    earlier rows (which would cost a scan of the whole table per micro-batch); the current claims are derived from
    silver and the event ledger (libs.lake.readers.current_claims), and the warehouse holds them.
    """
    return checked.where(F.col("is_valid") & (F.col("frequency_code") != VOID)).select(
        "claim_id", "frequency_code", "original_claim_id", *SILVER_KEY_COLUMNS, *ENRICHMENT_COLUMNS, "warning_codes",
        F.col("value").cast("string").alias("claim_json"), "kafka_partition", "kafka_offset", "kafka_timestamp",
        "processed_at", _ingest_date(), "pipeline_id", "batch_id",
    )


# ------------------------------------------------------------------------------------------------------ topics


def _header(name: str, value: Column) -> Column:
    return F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))


def _message(topic: str, key: Column, value: Column, headers: Column | None = None) -> Column:
    """One Kafka sink row (topic, key, value, headers) as a struct."""
    return F.struct(F.lit(topic).alias("topic"), key.cast("string").alias("key"), value.cast("binary").alias("value"),
                    (headers if headers is not None else F.lit(None).cast(HEADERS_TYPE)).alias("headers"))


def processed_value() -> Column:
    """A `medical-claims-processed` value: the claim as received plus its enrichment.

    The claim JSON is spliced in as received rather than re-serialised from the parsed struct: the bytes already are
    the protected claim, and re-encoding every nested field would double the JSON work of a batch.
    """
    enrichment = F.to_json(F.struct(*ENRICHMENT_COLUMNS, "processed_at", "warning_codes"))
    return F.concat(F.lit('{"claim":'), F.col("value").cast("string"), F.lit(',"enrichment":'), enrichment,
                    F.lit("}"))


def dead_letter_headers() -> Column:
    """Why a message was rejected and where it came from, as Kafka headers (the value stays unchanged)."""
    return F.array(
        _header("reason_codes", F.concat_ws(",", "error_codes")),
        _header("source_partition", F.col("kafka_partition").cast("string")),
        _header("source_offset", F.col("kafka_offset").cast("string")),
    )


def alert_value(alert: Column) -> Column:
    """A `medical-claims-alerts` value: claim id, source coordinates, rule and a PHI-free detail, as JSON."""
    return F.to_json(F.struct(F.col("claim_id"), F.col("kafka_partition"), F.col("kafka_offset"),
                              alert["rule"].alias("rule"), alert["detail"].alias("detail")))


def topic_messages(checked: DataFrame, topics: Any) -> DataFrame:
    """Every Kafka output of a batch, from one pass over the checked rows.

    A valid claim goes to `validated` (as received) and to `processed`, both keyed by claim id (so a claim and its
    later versions stay in one partition, in order, whatever key the raw message had),
    plus one `alerts` message per per-claim fraud alert; a rejected message goes unchanged to `dead_letter` with its
    reasons and source offset in headers. `topics` has the attributes validated, processed, alerts, dead_letter.
    """
    valid = [_message(topics.validated, F.col("claim_id"), F.col("value")),
             _message(topics.processed, F.col("claim_id"), processed_value())]
    rejected = [_message(topics.dead_letter, F.col("kafka_key"), F.col("value"), dead_letter_headers())]
    alerts = F.transform(F.coalesce(F.col("alerts"), F.array()),
                         lambda alert: _message(topics.alerts, F.col("claim_id"), alert_value(alert)))
    messages = F.when(F.col("is_valid"), F.concat(F.array(*valid), alerts)).otherwise(F.array(*rejected))
    return checked.select(F.explode(messages).alias("m")).select("m.*")


def alert_rows(checked: DataFrame) -> DataFrame:
    """One row per per-claim fraud alert of a valid claim: claim_id, Kafka coordinates, rule and a PHI-free detail."""
    exploded = checked.where(F.col("is_valid")).select(
        "claim_id", "kafka_partition", "kafka_offset", F.explode("alerts").alias("alert"))
    return exploded.select("claim_id", "kafka_partition", "kafka_offset", "alert.rule", "alert.detail")


def quality_message(spark: Any, topic: str, key: str, document: dict[str, Any]) -> DataFrame:
    """`medical-claims-quality`: one message per batch (built in the JVM: no Python-to-JVM row transfer)."""
    import orjson  # noqa: PLC0415

    return spark.range(1).select(_message(topic, F.lit(key), F.lit(orjson.dumps(document).decode())).alias("m")
                                 ).select("m.*")
