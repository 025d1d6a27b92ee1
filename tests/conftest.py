"""Session-wide test fixtures.

`kafka_broker` starts ONE real local Kafka broker (KRaft, from the Maven jars in .cache/jars/kafka) on free loopback
ports in a temporary directory for the whole test session, and stops it at the end. Tests that use it are marked
`@pytest.mark.kafka` (so `make unit` can deselect them). Nothing is skipped: when the jars are missing the fixture
resolves them with scripts/fetch_jars.sh, and fails with the reason if that is impossible.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from libs.kafka.broker import FAST_START_JVM_OPTIONS, BrokerError, LocalKafka
from libs.settings import REPO_ROOT, KafkaSettings

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
