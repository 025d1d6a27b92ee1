"""Helpers for Spark tests: static frames shaped like the Kafka source."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import Row

from libs.streaming.processor import RAW_KAFKA_SCHEMA


def kafka_rows(spark: SparkSession, values: list[bytes | None], partition: int = 0) -> DataFrame:
    """A static frame shaped like the Kafka source, one row per value, offsets 0..n-1."""
    rows = [
        Row(key=None, value=value, topic="medical-claims-raw", partition=partition, offset=offset, timestamp=None,
            timestampType=0)
        for offset, value in enumerate(values)
    ]
    return spark.createDataFrame(rows, RAW_KAFKA_SCHEMA)
