"""The lag exporter reads the stream's committed offsets from an S3 checkpoint, as on EMR (moto's S3, real broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws
from prometheus_client import CollectorRegistry

from libs.monitoring.lag import (
    STREAM_CONSUMER,
    CheckpointError,
    PipelineLagCollector,
    committed_offsets_s3,
    latest_progress,
    stream_checkpoint,
)
from libs.settings import KafkaSettings
from tests.monitoring.conftest import free_port
from tests.monitoring.test_lag_exporter import _produce, _topic, write_checkpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "claims-dev-lake-checkpoint"
ROOT = f"s3://{BUCKET}/checkpoints"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    """moto's S3 with the checkpoint bucket; never real credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_checkpoint(s3: S3Client, prefix: str, batch_id: int, offsets: dict[str, dict[str, int]], *,
                   committed: bool = True) -> None:
    """offsets/<n> and (when committed) commits/<n>, with the bodies Structured Streaming writes."""
    body = "v1\n" + json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1}) + "\n" + json.dumps(offsets) + "\n"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/offsets/{batch_id}", Body=body.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/offsets/.{batch_id}.crc", Body=b"crc")  # Hadoop's side files
    if committed:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/commits/{batch_id}", Body=b'v1\n{"nextBatchWatermarkMs":0}')


def test_the_last_committed_batch_on_s3_counts_not_the_last_planned_one(s3: S3Client) -> None:
    prefix = f"checkpoints/{STREAM_CONSUMER}"
    for batch_id in range(12):  # 10 sorts before 9 as text: the ids must be compared as numbers
        put_checkpoint(s3, prefix, batch_id, {"raw": {"0": batch_id * 10}})
    put_checkpoint(s3, prefix, 12, {"raw": {"0": 999}}, committed=False)
    commit = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/commits/11")

    progress = committed_offsets_s3(s3, f"s3://{BUCKET}/{prefix}")
    via_s3a = committed_offsets_s3(s3, f"s3a://{BUCKET}/{prefix}/")  # how app_config names the checkpoint root

    assert progress is not None
    assert progress.batch_id == 11
    assert progress.offsets == {"raw": {0: 110}}
    assert progress.committed_at == commit["LastModified"].timestamp()
    assert via_s3a == progress


def test_an_s3_checkpoint_before_the_first_commit_has_no_progress(s3: S3Client) -> None:
    put_checkpoint(s3, "checkpoints/claims-stream", 0, {"raw": {"0": 5}}, committed=False)

    assert committed_offsets_s3(s3, f"{ROOT}/claims-stream") is None
    assert committed_offsets_s3(s3, f"{ROOT}/never-started") is None


def test_a_damaged_s3_offsets_file_is_named_by_its_uri(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key="cp/offsets/4", Body=b"v1\n{}\nnot json\n")
    s3.put_object(Bucket=BUCKET, Key="cp/commits/4", Body=b"v1\n{}")

    with pytest.raises(CheckpointError, match=rf"s3://{BUCKET}/cp/offsets/4:3: expected a JSON object"):
        committed_offsets_s3(s3, f"s3://{BUCKET}/cp")


def test_the_checkpoint_root_of_the_settings_keeps_s3_uris_whole(tmp_path) -> None:
    assert stream_checkpoint("s3://bucket/checkpoints/") == "s3://bucket/checkpoints/claims-stream"
    assert stream_checkpoint("s3a://bucket/checkpoints") == "s3a://bucket/checkpoints/claims-stream"
    assert stream_checkpoint(tmp_path) == tmp_path / "claims-stream"
    with pytest.raises(CheckpointError, match=r"expected an s3://bucket/prefix checkpoint URI, found 's3:///x'"):
        committed_offsets_s3(boto3.client("s3", region_name="us-east-1"), "s3:///x")


def test_an_unreadable_s3_checkpoint_is_skipped_and_a_local_one_still_counts(s3: S3Client, tmp_path) -> None:
    local = write_checkpoint(tmp_path / "cp", 0, {"raw": {"0": 3}})

    progress = latest_progress(["s3://no-such-bucket/checkpoints/claims-stream", local], lambda: s3)

    assert progress is not None
    assert progress.offsets == {"raw": {0: 3}}


def test_an_unreachable_broker_still_reports_the_s3_progress(s3: S3Client, tmp_path) -> None:
    put_checkpoint(s3, "checkpoints/claims-stream", 3, {"raw": {"0": 6}})
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    registry = CollectorRegistry()
    registry.register(PipelineLagCollector(settings, {"raw": "raw"}, [stream_checkpoint(ROOT)],
                                           tmp_path / "none.json", s3_client=lambda: s3))

    assert registry.get_sample_value("claims_kafka_exporter_up") == 0.0
    assert registry.get_sample_value("claims_kafka_consumer_committed_offset",
                                     {"consumer": STREAM_CONSUMER, "topic": "raw", "partition": "0"}) == 6


@pytest.mark.kafka
def test_lag_on_a_real_broker_is_measured_against_the_s3_checkpoint(s3: S3Client, kafka_settings, tmp_path) -> None:
    raw = _topic(kafka_settings, 2)
    _produce(kafka_settings, raw, {0: 10, 1: 4})
    put_checkpoint(s3, f"checkpoints/{STREAM_CONSUMER}", 7, {raw: {"0": 6, "1": 4}})
    registry = CollectorRegistry()
    registry.register(PipelineLagCollector(kafka_settings, {"raw": raw}, [stream_checkpoint(ROOT)],
                                           tmp_path / "none.json", s3_client=lambda: s3))
    stream = {"consumer": STREAM_CONSUMER, "topic": raw}

    assert registry.get_sample_value("claims_kafka_exporter_up") == 1.0
    assert registry.get_sample_value("claims_kafka_consumer_lag", {**stream, "partition": "0"}) == 4
    assert registry.get_sample_value("claims_kafka_consumer_lag", {**stream, "partition": "1"}) == 0
    assert registry.get_sample_value("claims_kafka_consumer_last_commit_timestamp_seconds",
                                     {"consumer": STREAM_CONSUMER}) is not None
