"""How many messages a topic holds, from the broker's own offsets: `make run`'s reconciliation, the bench, the tests.

Why a module: the count is the sum over partitions of high minus low watermark, and right after a topic is created
(or the broker restarted) a partition may have no leader yet, so each lookup is retried briefly. Three places counted
this way, each with its own copy of that retry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from libs.kafka.client_config import client_config
from libs.settings import KafkaSettings

WATERMARK_TIMEOUT_SECONDS = 15.0
RETRY_PAUSE_SECONDS = 0.2


def topic_message_counts(kafka: KafkaSettings, topics: Iterable[str],
                         timeout: float = WATERMARK_TIMEOUT_SECONDS) -> dict[str, int]:
    """Messages held per topic (high minus low watermark, summed over its partitions)."""
    names = list(topics)
    consumer = Consumer(client_config(kafka, **{"group.id": f"claims-counter-{uuid.uuid4().hex[:8]}",
                                                "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(timeout=timeout)
        counts: dict[str, int] = {}
        for topic in names:
            counts[topic] = 0
            for partition in metadata.topics[topic].partitions:
                low, high = watermarks(consumer, TopicPartition(topic, partition), timeout)
                counts[topic] += high - low
        return counts
    finally:
        consumer.close()


def topic_message_count(kafka: KafkaSettings, topic: str, timeout: float = WATERMARK_TIMEOUT_SECONDS) -> int:
    """Messages held by one topic."""
    return topic_message_counts(kafka, [topic], timeout)[topic]


def watermarks(consumer: Consumer, partition: TopicPartition,
               timeout: float = WATERMARK_TIMEOUT_SECONDS) -> tuple[int, int]:
    """Low and high watermark of one partition, retried until `timeout` while it has no leader yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=timeout)
            return int(low), int(high)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(RETRY_PAUSE_SECONDS)
