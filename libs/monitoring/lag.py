"""Broker-side consumer lag of the stream, and the daily batch's last run, as Prometheus metrics.

Why an exporter of our own: Structured Streaming does not commit its progress to a Kafka consumer group (it keeps
offsets in its checkpoint), so Kafka's own lag tools and JMX see no consumer at all. The truth about how far the
stream is behind is the broker's end offset of each raw partition minus the offset recorded in the stream's last
*committed* micro-batch (checkpoint `offsets/<n>` with a matching `commits/<n>`). Computed outside the stream, the lag
keeps growing and the last-commit time keeps ageing when the stream process is dead or hung, which is exactly when its
own /metrics endpoint can no longer say so.

The exporter also publishes each pipeline topic's end offsets (the dead-letter topic's rate counts rejects from the
producer and the stream alike) and the batch job's last run, read from the small status file the batch entry point
writes (`record_batch_run`), since a job that runs once a day has no endpoint to scrape.

Every scrape asks the broker afresh (one metadata and one list-offsets request); a broker that does not answer makes
`claims_kafka_exporter_up` 0 instead of failing the scrape.

Checkpoints are read where the stream writes them: a local directory (`claims stream`, `make run`) or an
`s3://bucket/prefix` (or `s3a://`, as app_config names it) URI: the stream on EMR checkpoints to the checkpoint
bucket. On S3 the same two listings decide
(`offsets/<n>` keys with a matching `commits/<n>`), and the commit object's LastModified is the commit time - S3's
clock, as the local file's mtime is the local one. Listing and reading need s3:ListBucket and s3:GetObject on the
checkpoint bucket and kms:Decrypt on the lake key, all of which the EMR instance role has.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from libs.kafka.client_config import client_config
from libs.settings import KafkaSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

STREAM_CONSUMER = "claims-stream"  # the stream's query name (libs.streaming.query.QUERY_NAME), its checkpoint's name
BROKER_TIMEOUT_SECONDS = 5.0
# s3a:// is how Spark's Hadoop S3A client names the checkpoint root in app_config (infra/outputs.py); same objects.
S3_SCHEMES = ("s3://", "s3a://")

# A checkpoint: a local directory, or an s3:// or s3a:// URI (kept a string: Path would fold the '//').
Checkpoint = Path | str


class CheckpointError(ValueError):
    """A checkpoint offsets file is not what Structured Streaming writes; the message names the file."""


@dataclass(frozen=True)
class CommittedOffsets:
    """The stream's progress: the last committed micro-batch, its end offsets and when it was committed."""

    batch_id: int
    offsets: Mapping[str, Mapping[int, int]]
    committed_at: float


def _batch_ids(directory: Path) -> list[int]:
    return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit()) if directory.is_dir() else []


def parse_offsets_file(path: Path) -> dict[str, dict[int, int]]:
    """{topic: {partition: next offset}} of a checkpoint `offsets/<n>` file (line 1 'v1', line 2 metadata, then one
    JSON line per source; the Kafka source's line is a topic -> partition -> offset object)."""
    return parse_offsets_text(path.read_text(encoding="utf-8"), str(path))


def parse_offsets_text(text: str, source_name: str) -> dict[str, dict[int, int]]:
    """parse_offsets_file on the text of an offsets file read from anywhere; `source_name` names it in errors."""
    path = source_name
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("v"):
        msg = f"{path}: expected a version line, a metadata line and source offsets, found {len(lines)} line(s)"
        raise CheckpointError(msg)
    offsets: dict[str, dict[int, int]] = {}
    for number, line in enumerate(lines[2:], start=3):
        try:
            source = json.loads(line)
        except json.JSONDecodeError:
            msg = f"{path}:{number}: expected a JSON object of source offsets, found invalid JSON"
            raise CheckpointError(msg) from None
        if not isinstance(source, dict):
            continue  # a non-Kafka source (none today) has its own format
        for topic, partitions in source.items():
            if isinstance(partitions, dict):
                offsets.setdefault(str(topic), {}).update({int(p): int(o) for p, o in partitions.items()})
    return offsets


def committed_offsets(checkpoint: Path) -> CommittedOffsets | None:
    """The last micro-batch that has both an offsets and a commits entry, or None before the first commit."""
    committed = set(_batch_ids(checkpoint / "commits"))
    for batch_id in reversed(_batch_ids(checkpoint / "offsets")):
        if batch_id in committed:
            offsets = parse_offsets_file(checkpoint / "offsets" / str(batch_id))
            commit = checkpoint / "commits" / str(batch_id)
            return CommittedOffsets(batch_id=batch_id, offsets=offsets, committed_at=commit.stat().st_mtime)
    return None


def is_s3_uri(location: Checkpoint) -> TypeGuard[str]:
    """Whether a checkpoint location is on S3 (s3:// or s3a://)."""
    return isinstance(location, str) and location.startswith(S3_SCHEMES)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of an s3://bucket/prefix (or s3a://) URI."""
    rest = next((uri[len(scheme):] for scheme in S3_SCHEMES if uri.startswith(scheme)), "")
    if not rest.split("/", 1)[0]:
        msg = f"expected an s3://bucket/prefix checkpoint URI, found {uri!r}"
        raise CheckpointError(msg)
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _s3_batches(s3: S3Client, bucket: str, prefix: str) -> dict[int, float]:
    """Batch id -> LastModified (Unix seconds) of the objects directly under `prefix` named by a batch number."""
    batches: dict[int, float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix):]
            if name.isdigit():
                batches[int(name)] = item["LastModified"].timestamp()
    return batches


def committed_offsets_s3(s3: S3Client, uri: str) -> CommittedOffsets | None:
    """committed_offsets for a checkpoint on S3: the last batch with both `offsets/<n>` and `commits/<n>`."""
    bucket, prefix = split_s3_uri(uri)
    commits = _s3_batches(s3, bucket, f"{prefix}commits/")
    planned = _s3_batches(s3, bucket, f"{prefix}offsets/")
    done = sorted(set(commits) & set(planned))
    if not done:
        return None
    batch_id = done[-1]
    key = f"{prefix}offsets/{batch_id}"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return CommittedOffsets(batch_id=batch_id, offsets=parse_offsets_text(body, f"s3://{bucket}/{key}"),
                            committed_at=commits[batch_id])


def stream_checkpoint(checkpoint_root: str | Path, name: str = STREAM_CONSUMER) -> Checkpoint:
    """The stream's checkpoint under settings.lake.checkpoint_root: a local Path, or an s3:// URI kept whole."""
    root = str(checkpoint_root)
    if is_s3_uri(root):
        return f"{root.rstrip('/')}/{name}"
    return Path(root) / name


def latest_progress(checkpoints: Iterable[Checkpoint],
                    s3_client: Callable[[], S3Client] | None = None) -> CommittedOffsets | None:
    """The most recently committed progress among candidate checkpoints (None when none has a commit).

    Locally the stream's checkpoint is under settings.lake.checkpoint_root for `claims stream` and under
    .local/run for `make run`; whichever committed last is the stream that runs now. `s3:// ` checkpoints are read
    with `s3_client()` (default: boto3's S3 client with the default credentials: the instance role on EMR).
    """
    found = []
    for checkpoint in checkpoints:
        try:
            if is_s3_uri(checkpoint):
                progress = committed_offsets_s3((s3_client or _default_s3_client)(), checkpoint)
            else:
                progress = committed_offsets(Path(checkpoint))
        except (OSError, CheckpointError) as exc:
            log.warning("stream checkpoint unreadable: %s", exc)
            continue
        except (ClientError, BotoCoreError) as exc:
            # The error names the checkpoint and the S3 error code only; checkpoints hold no PHI.
            log.warning("stream checkpoint %s unreadable on S3: %s", checkpoint, exc)
            continue
        if progress is not None:
            found.append(progress)
    return max(found, key=lambda progress: progress.committed_at, default=None)


def _default_s3_client() -> S3Client:
    return boto3.client("s3")


# --------------------------------------------------------------------------------------------------------------------
# The batch job's last run (written by apps/batch, read by the exporter)
# --------------------------------------------------------------------------------------------------------------------


def record_batch_run(path: Path, *, succeeded: bool, day: date | None, started_at: float,
                     finished_at: float | None = None) -> None:
    """Record the batch job's run in `path` (atomically: the exporter may read it at any moment).

    The last successful run's time is carried over from the previous file, so a failure does not hide how long ago
    the job last succeeded (what the "batch late" alert watches).
    """
    finished = time.time() if finished_at is None else finished_at
    previous = read_batch_status(path)
    status = {
        "last_run_started_at": started_at,
        "last_run_finished_at": finished,
        "last_run_succeeded": succeeded,
        "last_run_day": day.isoformat() if day else None,
        "last_success_at": finished if succeeded else previous.get("last_success_at"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".batch-status", delete=False,
                                     encoding="utf-8") as handle:
        json.dump(status, handle)
    os.replace(handle.name, path)


def read_batch_status(path: Path) -> dict[str, Any]:
    """The status file's content, or {} when the batch never ran here (or the file is unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


# --------------------------------------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------------------------------------


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "up": GaugeMetricFamily("claims_kafka_exporter_up",
                                "1 when the last scrape reached the broker, 0 when it did not."),
        "end": GaugeMetricFamily("claims_kafka_topic_end_offset",
                                 "Next offset the broker will assign, per pipeline topic partition; `role` is the "
                                 "topic's role in configs/kafka/topics.json (raw, dead_letter, ...).",
                                 labels=["topic", "role", "partition"]),
        "committed": GaugeMetricFamily("claims_kafka_consumer_committed_offset",
                                       "Next offset the consumer will read, from its last committed progress.",
                                       labels=["consumer", "topic", "partition"]),
        "lag": GaugeMetricFamily("claims_kafka_consumer_lag",
                                 "Broker end offset minus the consumer's committed offset (messages not yet done).",
                                 labels=["consumer", "topic", "partition"]),
        "commit": GaugeMetricFamily("claims_kafka_consumer_last_commit_timestamp_seconds",
                                    "Unix time of the consumer's last committed micro-batch.", labels=["consumer"]),
        "batch_run": GaugeMetricFamily("claims_batch_last_run_timestamp_seconds",
                                       "Unix time the daily batch last finished (successfully or not)."),
        "batch_ok": GaugeMetricFamily("claims_batch_last_run_success",
                                      "1 when the daily batch's last run succeeded, 0 when it failed."),
        "batch_success": GaugeMetricFamily("claims_batch_last_success_timestamp_seconds",
                                           "Unix time the daily batch last finished successfully."),
        "batch_duration": GaugeMetricFamily("claims_batch_last_run_duration_seconds",
                                            "Wall time of the daily batch's last run."),
    }


class PipelineLagCollector(Collector):
    """Collects the families above on every scrape (a custom collector: values are read, not accumulated)."""

    def __init__(self, kafka: KafkaSettings | Callable[[], KafkaSettings], topics: Mapping[str, str],
                 checkpoints: Sequence[Checkpoint], batch_status: Path | Callable[[], dict[str, Any]],
                 s3_client: Callable[[], S3Client] | None = None) -> None:
        """`topics` maps each role (TopicRole values: raw, dead_letter, ...) to its topic name; the stream reads
        the `raw` one. Rules and dashboards select topics by role, so they hold in every environment.

        `kafka` may be a function, asked on every scrape: locally the broker of `make run` gets new ports each run.
        `checkpoints` are directories or s3:// URIs; `s3_client` makes the client for the latter (made once, on the
        first scrape that needs it). `batch_status` is the batch's status file, or a function giving the same
        fields (libs.monitoring.batch_ledger reads them from Redshift's batch_runs in AWS).
        """
        self._kafka = kafka if callable(kafka) else (lambda: kafka)
        self.roles = {name: role for role, name in topics.items()}
        self.raw_topic = topics.get("raw", "")
        self.checkpoints = list(checkpoints)
        self.batch_status = batch_status
        self._admin: tuple[str, AdminClient] | None = None
        self._make_s3 = s3_client or _default_s3_client
        self._s3: S3Client | None = None

    def _s3_client(self) -> S3Client:
        if self._s3 is None:
            self._s3 = self._make_s3()
        return self._s3

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (so registering the collector never calls the broker)."""
        yield from _families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        try:
            end = self.end_offsets()
        except KafkaException as exc:
            log.warning("broker not reachable for lag: %s", exc.args[0] if exc.args else exc)
            end = None
        families["up"].add_metric([], 0.0 if end is None else 1.0)
        for (topic, partition), offset in sorted((end or {}).items()):
            families["end"].add_metric([topic, self.roles.get(topic, ""), str(partition)], float(offset))
        self._add_stream_progress(families, end)
        self._add_batch_status(families)
        yield from families.values()

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """Each partition's end offset (the 'latest' offset spec) for the pipeline topics that exist."""
        settings = self._kafka()
        if self._admin is None or self._admin[0] != settings.bootstrap_servers:
            self._admin = (settings.bootstrap_servers, AdminClient(client_config(settings)))
        admin = self._admin[1]
        metadata = admin.list_topics(timeout=BROKER_TIMEOUT_SECONDS)
        requests = {TopicPartition(topic, partition): OffsetSpec.latest()
                    for topic in self.roles if topic in metadata.topics
                    for partition in metadata.topics[topic].partitions}
        if not requests:
            return {}
        futures = admin.list_offsets(requests, request_timeout=BROKER_TIMEOUT_SECONDS)
        return {(tp.topic, tp.partition): int(future.result().offset) for tp, future in futures.items()}

    def _add_stream_progress(self, families: dict[str, GaugeMetricFamily],
                             end: dict[tuple[str, int], int] | None) -> None:
        progress = latest_progress(self.checkpoints, self._s3_client)
        done = dict(progress.offsets.get(self.raw_topic, {})) if progress else {}
        if progress is not None:
            families["commit"].add_metric([STREAM_CONSUMER], progress.committed_at)
        for partition, offset in sorted(done.items()):
            families["committed"].add_metric([STREAM_CONSUMER, self.raw_topic, str(partition)], float(offset))
        if end is None:
            return  # no broker answer: no lag rather than a wrong one
        for (topic, partition), latest in sorted(end.items()):
            if topic == self.raw_topic:
                # A partition the stream never committed is behind by everything in it (the stream starts earliest).
                lag = max(latest - done.get(partition, 0), 0)
                families["lag"].add_metric([STREAM_CONSUMER, topic, str(partition)], float(lag))

    def _add_batch_status(self, families: dict[str, GaugeMetricFamily]) -> None:
        status = (read_batch_status(self.batch_status) if isinstance(self.batch_status, Path)
                  else self.batch_status())
        finished, started = status.get("last_run_finished_at"), status.get("last_run_started_at")
        if isinstance(finished, int | float):
            families["batch_run"].add_metric([], float(finished))
            families["batch_ok"].add_metric([], 1.0 if status.get("last_run_succeeded") else 0.0)
            if isinstance(started, int | float):
                families["batch_duration"].add_metric([], max(float(finished) - float(started), 0.0))
        if isinstance(status.get("last_success_at"), int | float):
            families["batch_success"].add_metric([], float(status["last_success_at"]))
