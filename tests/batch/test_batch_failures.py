"""A failed batch run: the ledger and the log say what failed by its structure, never with a record value in it.

The failures are real: a Spark exception whose message quotes a value (an ANSI cast of a marker string), a Python
exception that carries a marker, and a dependency that went away (the alerts topic missing) named with its fix.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from libs.batch import job
from libs.batch.job import BatchRunError, run_batch
from libs.kafka.admin import ensure_topics
from libs.phi.logging import configure_logging
from libs.settings import KafkaSettings, Settings, WarehouseSettings, load_settings
from libs.warehouse.load import batch_runs_duckdb
from tests.batch.conftest import DAY, Lake
from tests.kafka.helpers import write_topics_file

MARKER = "ZZMARKERSURNAME"

pytestmark = [pytest.mark.kafka, pytest.mark.spark]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(logging.INFO, stream=stream)
    yield stream
    configure_logging(logging.INFO, stream=io.StringIO())


def _settings(lake: Lake, kafka_settings: KafkaSettings, tmp_path: Path, *, create_topics: bool = True) -> Settings:
    topics_file = write_topics_file(tmp_path, partitions=1)
    kafka = KafkaSettings(bootstrap_servers=kafka_settings.bootstrap_servers, topics_file=topics_file)
    if create_topics:
        ensure_topics(kafka, topics_file)
    return load_settings(kafka=kafka, lake=lake.settings,
                         warehouse=WarehouseSettings(duckdb_path=tmp_path / "wh.duckdb"))


def _failing_screen(spark: SparkSession, failure: str) -> Any:
    def screen(*_args: Any, **_kwargs: Any) -> Any:
        if failure == "spark":  # Spark's message quotes the value that failed the cast
            spark.sql(f"SELECT CAST('{MARKER}' AS INT) AS n").collect()
        raise ValueError(f"claim of {MARKER} could not be screened")
    return screen


@pytest.mark.parametrize("failure", ["spark", "python"])
def test_a_record_value_in_an_exception_never_reaches_the_ledger_or_the_log(
    spark: SparkSession, lake: Lake, kafka_settings: KafkaSettings, tmp_path: Path, log_stream: io.StringIO,
    monkeypatch: pytest.MonkeyPatch, failure: str,
) -> None:
    settings = _settings(lake, kafka_settings, tmp_path)
    monkeypatch.setattr(job.fraud, "screen_day_alerts", _failing_screen(spark, failure))
    ansi = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        with pytest.raises(BatchRunError) as raised:
            run_batch(spark, settings, DAY)
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi or "true")

    (run,) = batch_runs_duckdb(settings.warehouse.duckdb_path)
    assert run.status == "failed"
    assert run.error_message is not None
    assert MARKER not in run.error_message
    assert MARKER not in str(raised.value)
    assert MARKER not in log_stream.getvalue()
    assert "\n" not in run.error_message
    assert str(raised.value) == run.error_message  # the CLI and the API say what the ledger says
    if failure == "spark":  # the structure stays: which kind of failure, which Spark condition
        assert run.error_message.startswith(("NumberFormatException", "SparkNumberFormatException"))
        assert "CAST_INVALID_INPUT" in run.error_message
    else:
        assert run.error_message.startswith("ValueError")


def test_a_dependency_that_went_away_is_named_with_its_fix_in_the_ledger(
    spark: SparkSession, lake: Lake, kafka_settings: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(lake, kafka_settings, tmp_path, create_topics=False)  # the alerts topic is missing
    monkeypatch.setattr(job.fraud, "screen_day_alerts", _failing_screen(spark, "python"))

    with pytest.raises(BatchRunError):
        run_batch(spark, settings, DAY)

    (run,) = batch_runs_duckdb(settings.warehouse.duckdb_path)
    assert run.error_message is not None
    assert run.error_message.startswith("expected topic ")
    assert "found missing; create them with `make topics`" in run.error_message
