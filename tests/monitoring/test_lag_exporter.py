"""The lag exporter: broker end offsets minus the stream's last committed checkpoint, on a real broker."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from libs.monitoring.lag import (
    STREAM_CONSUMER,
    CheckpointError,
    PipelineLagCollector,
    committed_offsets,
    latest_progress,
    parse_offsets_file,
    read_batch_status,
    record_batch_run,
)
from libs.settings import KafkaSettings
from tests.monitoring.conftest import free_port


def write_checkpoint(root: Path, batch_id: int, offsets: dict[str, dict[str, int]], *, committed: bool = True,
                     mtime: float | None = None) -> Path:
    """A checkpoint entry as Structured Streaming writes it: offsets/<n> (v1, metadata, source offsets) and
    commits/<n> once the batch's sink finished."""
    (root / "offsets").mkdir(parents=True, exist_ok=True)
    (root / "commits").mkdir(parents=True, exist_ok=True)
    (root / "offsets" / str(batch_id)).write_text(
        "v1\n" + json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1}) + "\n" + json.dumps(offsets) + "\n",
        encoding="utf-8")
    if committed:
        commit = root / "commits" / str(batch_id)
        commit.write_text('v1\n{"nextBatchWatermarkMs":0}', encoding="utf-8")
        if mtime is not None:
            os.utime(commit, (mtime, mtime))
    return root


def test_the_last_committed_batch_counts_not_the_last_planned_one(tmp_path):
    write_checkpoint(tmp_path, 0, {"raw": {"0": 5, "1": 7}})
    write_checkpoint(tmp_path, 1, {"raw": {"0": 9, "1": 12}}, committed=False)  # planned, not yet done

    progress = committed_offsets(tmp_path)

    assert progress is not None
    assert progress.batch_id == 0
    assert progress.offsets == {"raw": {0: 5, 1: 7}}


def test_an_empty_checkpoint_has_no_progress_and_the_newest_of_several_wins(tmp_path):
    assert committed_offsets(tmp_path / "none") is None
    old = write_checkpoint(tmp_path / "old", 3, {"raw": {"0": 1}}, mtime=1_000)
    new = write_checkpoint(tmp_path / "new", 0, {"raw": {"0": 2}}, mtime=2_000)

    progress = latest_progress([old, tmp_path / "none", new])

    assert progress is not None
    assert progress.offsets == {"raw": {0: 2}}


def test_a_damaged_offsets_file_names_the_file_and_line(tmp_path):
    (tmp_path / "5").write_text("v1\n{}\nnot json\n", encoding="utf-8")

    with pytest.raises(CheckpointError, match=r"5:3: expected a JSON object of source offsets"):
        parse_offsets_file(tmp_path / "5")


def test_batch_status_keeps_the_last_success_across_a_failure(tmp_path):
    path = tmp_path / "batch-status.json"
    record_batch_run(path, succeeded=True, day=date(2026, 5, 1), started_at=100.0, finished_at=160.0)
    record_batch_run(path, succeeded=False, day=date(2026, 5, 2), started_at=200.0, finished_at=230.0)

    status = read_batch_status(path)

    assert status["last_run_succeeded"] is False
    assert status["last_success_at"] == 160.0
    assert status["last_run_finished_at"] == 230.0
    assert status["last_run_day"] == "2026-05-02"


def _topic(settings: KafkaSettings, partitions: int) -> str:
    name = f"lag-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)
    return name


def _produce(settings: KafkaSettings, topic: str, per_partition: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for partition, count in per_partition.items():
        for index in range(count):
            producer.produce(topic, value=f"m{index}".encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.mark.kafka
def test_lag_is_the_broker_end_offset_minus_the_committed_offset(kafka_settings, tmp_path):
    raw, other = _topic(kafka_settings, 2), _topic(kafka_settings, 1)
    _produce(kafka_settings, raw, {0: 10, 1: 4})
    _produce(kafka_settings, other, {0: 3})
    checkpoint = write_checkpoint(tmp_path / "cp", 2, {raw: {"0": 6}}, mtime=1_700_000_000)
    record_batch_run(tmp_path / "batch.json", succeeded=True, day=None, started_at=50.0, finished_at=80.0)
    registry = CollectorRegistry()
    topics = {"raw": raw, "dead_letter": other, "alerts": "missing-topic"}
    registry.register(PipelineLagCollector(kafka_settings, topics, [checkpoint], tmp_path / "batch.json"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("claims_kafka_exporter_up") == 1.0
    assert value("claims_kafka_topic_end_offset", topic=raw, role="raw", partition="0") == 10
    assert value("claims_kafka_topic_end_offset", topic=other, role="dead_letter", partition="0") == 3
    stream = {"consumer": STREAM_CONSUMER, "topic": raw}
    assert value("claims_kafka_consumer_lag", **stream, partition="0") == 4  # 10 written, 6 done
    assert value("claims_kafka_consumer_lag", **stream, partition="1") == 4  # never committed: all of it
    assert value("claims_kafka_consumer_committed_offset", **stream, partition="0") == 6
    assert value("claims_kafka_consumer_last_commit_timestamp_seconds", consumer=STREAM_CONSUMER) == 1_700_000_000
    assert value("claims_batch_last_run_success") == 1.0
    assert value("claims_batch_last_run_duration_seconds") == 30.0
    assert value("claims_kafka_consumer_lag", consumer=STREAM_CONSUMER, topic=other, partition="0") is None


def test_an_unreachable_broker_reports_down_without_a_lag(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "cp", 0, {"raw": {"0": 6}})
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    registry = CollectorRegistry()
    registry.register(PipelineLagCollector(settings, {"raw": "raw"}, [checkpoint], tmp_path / "none.json"))

    assert registry.get_sample_value("claims_kafka_exporter_up") == 0.0
    assert registry.get_sample_value("claims_kafka_consumer_lag",
                                     {"consumer": STREAM_CONSUMER, "topic": "raw", "partition": "0"}) is None
    assert registry.get_sample_value("claims_kafka_consumer_committed_offset",
                                     {"consumer": STREAM_CONSUMER, "topic": "raw", "partition": "0"}) == 6
    assert registry.get_sample_value("claims_batch_last_run_success") is None
