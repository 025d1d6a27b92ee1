"""Session-wide test fixtures.

`kafka_broker` starts ONE real local Kafka broker (KRaft, from the Maven jars in .cache/jars/kafka) on free loopback
ports in a temporary directory for the whole test session, and stops it at the end. Tests that use it are marked
`@pytest.mark.kafka` (so `make unit` can deselect them). Nothing is skipped: when the jars are missing the fixture
resolves them with scripts/fetch_jars.sh, and fails with the reason if that is impossible.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from libs.kafka.broker import FAST_START_JVM_OPTIONS, BrokerError, LocalKafka
from libs.settings import REPO_ROOT, KafkaSettings, SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

KAFKA_JARS = REPO_ROOT / ".cache" / "jars" / "kafka"


def _ensure_kafka_jars() -> None:
    if any(KAFKA_JARS.glob("kafka_2.13-*.jar")):
        return
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "fetch_jars.sh")], capture_output=True, text=True,
                            check=False, timeout=900)
    if result.returncode != 0 or not any(KAFKA_JARS.glob("kafka_2.13-*.jar")):
        pytest.fail(f"Kafka jars missing in {KAFKA_JARS} and scripts/fetch_jars.sh failed "
                    f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A running single-node broker for the session; `.bootstrap` is its host:port."""
    _ensure_kafka_jars()
    broker = LocalKafka(home=tmp_path_factory.mktemp("kafka"), port=0, controller_port=0,
                        jvm_options=FAST_START_JVM_OPTIONS)
    try:
        broker.start(timeout=120)
    except BrokerError as exc:
        pytest.fail(f"local Kafka broker did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker: LocalKafka) -> KafkaSettings:
    """KafkaSettings pointing at the session broker."""
    return KafkaSettings(bootstrap_servers=kafka_broker.bootstrap)


@pytest.fixture(scope="session")
def spark(kafka_broker: LocalKafka) -> Iterator[SparkSession]:
    """One local Spark session (Delta, Kafka connector) for the whole test session; a JVM start costs seconds.

    It depends on the session broker only so that pytest stops Spark first: Spark's cached Kafka sink producers
    would otherwise keep logging connection failures after the broker is gone.
    """
    from libs.spark.session import build_spark_session  # noqa: PLC0415  (PySpark only for tests that need it)

    session = build_spark_session(SparkSettings(shuffle_partitions=2), app_name="claims-tests")
    yield session
    session.stop()
    _stop_spark_jvm()


def _stop_spark_jvm() -> None:
    """End the Spark JVM now: `stop()` keeps it alive until the interpreter exits, and its pooled Kafka producers
    would print reconnect warnings after the broker is gone (and after pytest's summary)."""
    from pyspark import SparkContext  # noqa: PLC0415

    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)
    gateway.shutdown()
    if process is not None:
        process.terminate()
        process.wait(timeout=30)
    SparkContext._gateway = None
    SparkContext._jvm = None
