"""Spark fixtures: one real local Spark session (with Delta and the Kafka connector) for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import Row

from libs.codesets import load_codesets
from libs.settings import SparkSettings
from libs.spark.session import build_spark_session
from libs.streaming.processor import RAW_KAFKA_SCHEMA
from libs.streaming.refdata import SparkRefData, build_refdata


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A local[2] session; built once because a JVM start costs seconds."""
    session = build_spark_session(SparkSettings(shuffle_partitions=2), app_name="claims-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def refdata(spark: SparkSession) -> SparkRefData:
    """Reference data built from the shipped code sets."""
    return build_refdata(spark, load_codesets())


def kafka_rows(spark: SparkSession, values: list[bytes | None], partition: int = 0) -> DataFrame:
    """A static frame shaped like the Kafka source, one row per value, offsets 0..n-1."""
    rows = [
        Row(key=None, value=value, topic="medical-claims-raw", partition=partition, offset=offset, timestamp=None,
            timestampType=0)
        for offset, value in enumerate(values)
    ]
    return spark.createDataFrame(rows, RAW_KAFKA_SCHEMA)
