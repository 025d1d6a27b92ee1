"""Shared by the ingestion and API tests: settings on the session broker with per-test topics and keys, and an exact
read-back of a topic with every message's headers, partition and offset."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from libs.kafka.admin import ensure_topics
from libs.kafka.broker import LocalKafka
from libs.settings import ApiSettings, KafkaSettings, LakeSettings, SecuritySettings, Settings, WarehouseSettings
from tests.kafka.helpers import write_topics_file


@dataclass(frozen=True)
class Message:
    """One record as read back from a topic."""

    key: bytes
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int


def ingest_settings(broker: LocalKafka, tmp_path: Path, partitions: int = 3) -> Settings:
    """Settings on `broker` with topics unique to the test (created), and keys, audit log and stores under tmp_path."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    topics_file = write_topics_file(tmp_path, partitions=partitions)
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topics_file=topics_file)
    ensure_topics(kafka, topics_file)
    return Settings(
        kafka=kafka,
        security=SecuritySettings(local_key_file=tmp_path / "keys" / "keyring.json",
                                  audit_log=tmp_path / "audit" / "audit.jsonl"),
        lake=LakeSettings(root=str(tmp_path / "lake"), checkpoint_root=str(tmp_path / "checkpoints")),
        warehouse=WarehouseSettings(duckdb_path=tmp_path / "warehouse" / "claims.duckdb"),
        api=ApiSettings(idempotency_db=tmp_path / "api" / "idempotency.sqlite3", kafka_delivery_timeout_seconds=10),
    )


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[Message]:
    """Every message of `topic` (waits until `expected` arrived or `timeout`), in partition and offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is None:
                    messages.append(Message(msg.key() or b"", msg.value() or b"", dict(msg.headers() or []),
                                            int(msg.partition() or 0), int(msg.offset() or 0)))
        # One more short read: more messages than expected must fail the test, not go unseen.
        messages.extend(Message(m.key() or b"", m.value() or b"", dict(m.headers() or []), int(m.partition() or 0),
                                int(m.offset() or 0))
                        for m in consumer.consume(num_messages=1000, timeout=1.0) if m.error() is None)
        return sorted(messages, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()
