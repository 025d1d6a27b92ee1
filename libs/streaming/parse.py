"""Raw Kafka rows into checked rows: Kafka coordinates, the message as received, and the Python rules' verdict.

The stream never parses a claim into Spark's nested schema: the verdict, silver's key columns and the enrichment come
from the Python checker (libs.streaming.check), and silver keeps the claim's JSON as received. Readers that want the
nested claim columns (the daily batch, analysts) parse it with libs.lake.readers.silver_claims, whose schema is
derived from the same model the checker parses with strictly (libs.lake.schema). Measured, parsing ~170 nested fields
in the JVM and writing them as Parquet was ~40 % of the stream's CPU: work the daily batch now does once per day
instead of on the latency path.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.monitoring.correlation import correlation_id_column
from libs.streaming.check import VERDICT_COLUMNS_DDL, ClaimChecker

KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "kafka_key")
KAFKA_COLUMNS_DDL = ("kafka_topic string, kafka_partition int, kafka_offset long, kafka_timestamp timestamp, "
                     "kafka_key string, value binary, value_size int, correlation_id string")


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
        (correlation_id_column() if "headers" in raw.columns else F.lit(None).cast("string")).alias("correlation_id"),
    )


def check_messages(raw: DataFrame, as_of: date, *, pipeline_id: str = "", batch_id: int = 0,
                   processed_at: datetime | None = None) -> DataFrame:
    """Kafka columns, `value`, `value_size` and the verdict columns of libs.streaming.check, one row per message.

    `pipeline_id`, `batch_id` and `processed_at` become columns of every row (see ClaimChecker for why not literals).
    """
    checker = ClaimChecker(as_of, pipeline_id, batch_id, processed_at or datetime.now(UTC))
    return with_kafka_columns(raw).mapInArrow(checker, f"{KAFKA_COLUMNS_DDL}, {VERDICT_COLUMNS_DDL}")
