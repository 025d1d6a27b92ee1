"""Helpers for the streaming integration tests: a private pipeline per test on the session broker and Spark session.

Why a helper module: every integration test needs the same scaffolding - its own topics (the broker has auto-create
off), its own lake and checkpoint under tmp_path, a PHI protector on a throwaway keyring, exact produce accounting,
read-back of output topics with headers and coordinates, and the Python-rule expectation of what the lake must hold.
Keeping it here keeps the tests about behaviour.

The module is also a tiny entry point (`python -m tests.streaming.pipeline_helpers SETTINGS_JSON AS_OF`) that runs the
claims query in a separate process until it is killed: the restart test SIGKILLs it mid-stream, which a query stopped
politely in-process cannot imitate.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry
from pyspark.sql import DataFrame, SparkSession

from libs.codesets import load_codesets
from libs.kafka.admin import ensure_topics
from libs.kafka.producer import ClaimProducer, ProduceReport
from libs.kafka.topics import Topics, load_topics
from libs.lake import LakeTables
from libs.model import Claim
from libs.phi import PhiProtector
from libs.settings import KafkaSettings, LakeSettings, Settings, SparkSettings, load_settings
from libs.streaming.query import QUERY_NAME, RunningQuery, start_claims_query
from libs.validation import validate_claim
from tests.kafka.helpers import message_count, write_topics_file

# The generator's default anchor date is 2026-10-31; validating a month later finds no timely-filing or future-date
# problem in clean claims, so every quarantined claim is one the generator made defective on purpose.
AS_OF = date(2026, 11, 30)
TEN_MB = 10 * 1024 * 1024
# Raw and dead-letter topics must hold a multi-megabyte poison message unchanged (configs/kafka/topics.json does the
# same for the real topics); applying it to every test topic costs nothing.
TOPIC_CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete", "max.message.bytes": str(TEN_MB)}
QUERY_TIMEOUT_SECONDS = 600
VOID = "8"
REMOVING = ("7", "8")

__all__ = [
    "AS_OF",
    "KafkaMessage",
    "Pipeline",
    "expected_outcome",
    "make_pipeline",
    "message_count",
    "produce_claims",
    "produce_raw",
    "read_messages",
    "run_available_now",
    "stop_query",
    "table",
    "wait_until",
]


@dataclass(frozen=True)
class Pipeline:
    """One test's private pipeline: settings (topics, lake, checkpoint, keyring under tmp_path) and its topics."""

    settings: Settings
    topics: Topics
    root: Path

    @property
    def tables(self) -> LakeTables:
        return LakeTables.from_settings(self.settings.lake)

    @property
    def checkpoint(self) -> Path:
        """Where start_claims_query puts the checkpoint (settings.lake.checkpoint_root / query name)."""
        return Path(self.settings.lake.checkpoint_root) / QUERY_NAME

    def protector(self) -> PhiProtector:
        """The producer's PHI protector, on this pipeline's throwaway keyring."""
        return PhiProtector.from_settings(self.settings)


def make_pipeline(
    tmp_path: Path,
    bootstrap: str,
    *,
    partitions: int = 3,
    trigger_seconds: float = 1.0,
    max_offsets_per_trigger: int | None = None,
) -> Pipeline:
    """Create fresh topics on the broker and the settings pointing at them and at a lake under `tmp_path`."""
    topics_file = write_topics_file(tmp_path, partitions=partitions, config=TOPIC_CONFIG,
                                    prefix=f"stream-{uuid.uuid4().hex[:10]}")
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topics_file=topics_file)
    ensure_topics(kafka, topics_file)
    settings = load_settings(
        kafka=kafka,
        lake=LakeSettings(root=str(tmp_path / "lake"), checkpoint_root=str(tmp_path / "checkpoints")),
        spark=SparkSettings(trigger_seconds=trigger_seconds, shuffle_partitions=2,
                            max_offsets_per_trigger=max_offsets_per_trigger),
        security={"local_key_file": tmp_path / "keys" / "keyring.json", "audit_log": tmp_path / "audit.jsonl"},
    )
    return Pipeline(settings=settings, topics=load_topics(topics_file), root=tmp_path)


def produce_claims(pipeline: Pipeline, claims: Iterable[Claim], protector: PhiProtector | None = None
                   ) -> ProduceReport:
    """Produce claims to the raw topic exactly as the producer app does (protected, keyed by claim id)."""
    protector = protector or pipeline.protector()
    producer = ClaimProducer(pipeline.settings.kafka, pipeline.topics.raw, protect=protector.protect,
                             registry=CollectorRegistry())
    report = producer.produce_all(claims, flush_timeout=60)
    if not report.ok:
        msg = f"expected every claim delivered to {pipeline.topics.raw}, found {report.to_dict()}"
        raise AssertionError(msg)
    return report


def produce_raw(pipeline: Pipeline, messages: list[tuple[bytes | None, bytes | None]]) -> list[tuple[int, int]]:
    """Produce arbitrary (key, value) pairs to the raw topic; returns each message's (partition, offset), in order.

    Used for poison messages the ClaimProducer would never send. `message.max.bytes` is raised so that a value of a
    few megabytes leaves the client (the raw topic accepts up to 10 MB).
    """
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka.bootstrap_servers,
                         "enable.idempotence": True, "message.max.bytes": TEN_MB + 100_000,
                         "linger.ms": 5})
    coordinates: list[tuple[int, int] | None] = [None] * len(messages)
    errors: list[str] = []

    def delivered(index: int) -> Callable[[Any, Any], None]:
        def report(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"message {index}: {err.name()}")
            else:
                coordinates[index] = (int(msg.partition()), int(msg.offset()))
        return report

    for index, (key, value) in enumerate(messages):
        producer.produce(pipeline.topics.raw, key=key, value=value, on_delivery=delivered(index))
        producer.poll(0)
    left = producer.flush(60)
    if left or errors or any(c is None for c in coordinates):
        msg = f"expected {len(messages)} raw messages delivered, found {left} unconfirmed and errors {errors}"
        raise AssertionError(msg)
    return [c for c in coordinates if c is not None]


@dataclass(frozen=True)
class KafkaMessage:
    """One consumed message with what the tests check: coordinates, key, value and headers."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes] = field(default_factory=dict)


def read_messages(settings: KafkaSettings, topic: str, expected: int, timeout: float = 60.0) -> list[KafkaMessage]:
    """Every message of `topic` from the beginning, until at least `expected` arrived (then drains briefly)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.max.bytes": TEN_MB * 2,
                         "max.partition.fetch.bytes": TEN_MB * 2})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[KafkaMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            for msg in batch:
                if msg.error() is None:
                    raw_headers = msg.headers() or []  # consumed messages carry a list of (name, value)
                    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
                    headers = {str(name): _as_bytes(value) for name, value in pairs}
                    messages.append(KafkaMessage(int(msg.partition() or 0), int(msg.offset() or 0),
                                                 _optional_bytes(msg.key()), _optional_bytes(msg.value()), headers))
            if len(messages) >= expected and not batch:
                break
        return messages
    finally:
        consumer.close()


def _as_bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def _optional_bytes(value: str | bytes | None) -> bytes | None:
    return None if value is None else _as_bytes(value)


def run_available_now(spark: SparkSession, pipeline: Pipeline, *, as_of: date = AS_OF,
                      settings: Settings | None = None) -> RunningQuery:
    """Drain the raw topic with an availableNow query and wait for it to end; raises when the query failed.

    `settings` overrides the pipeline's (same topics and lake, e.g. another per-batch cap).
    """
    running = start_claims_query(spark, settings or pipeline.settings, available_now=True, as_of=as_of)
    try:
        if not running.query.awaitTermination(QUERY_TIMEOUT_SECONDS):
            msg = f"expected the availableNow query to finish within {QUERY_TIMEOUT_SECONDS} s, it is still running"
            raise AssertionError(msg)
        failure = running.query.exception()
        if failure is not None:
            msg = f"expected the query to finish without an error, found {failure}"
            raise AssertionError(msg)
    finally:
        stop_query(spark, running)
    return running


def stop_query(spark: SparkSession, running: RunningQuery) -> None:
    """Stop the query (if still running) and detach its listener (start_claims_query adds one per start)."""
    if running.query.isActive:
        running.query.stop()
    spark.streams.removeListener(running.listener)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 180.0, every: float = 0.5) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f} s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(every)


def table(spark: SparkSession, location: str) -> DataFrame:
    """A Delta table of the lake."""
    return spark.read.format("delta").load(location)


@dataclass(frozen=True)
class Expected:
    """What the lake must hold according to the Python rules, for claims processed in one micro-batch."""

    valid_ids: list[str]
    invalid_ids: list[str]
    silver_ids: set[str]
    superseded: set[str]
    voids: int
    reason_counts: dict[str, int]


def expected_outcome(claims: list[Claim], as_of: date = AS_OF) -> Expected:
    """Valid/invalid claim ids by `validate_claim`, and the silver ids after replacements and voids are applied.

    Only valid replacements and voids remove their original (an invalid one is quarantined and changes nothing);
    a void is never stored itself.
    """
    codesets = load_codesets()
    results = [validate_claim(claim, as_of, codesets) for claim in claims]
    valid = [claim for claim, result in zip(claims, results, strict=True) if result.is_valid]
    # Quarantine records each error code once per claim (the Spark rules fire per code, not per occurrence).
    reasons = Counter(code.value for result in results for code in {issue.code for issue in result.errors})
    valid_ids = {claim.claim_id for claim in valid}
    superseded = {
        claim.original_claim_id for claim in valid
        if claim.frequency_code in REMOVING and claim.original_claim_id and claim.original_claim_id != claim.claim_id
    }
    upserted = {claim.claim_id for claim in valid if claim.frequency_code != VOID}
    return Expected(
        valid_ids=[claim.claim_id for claim in valid],
        invalid_ids=[claim.claim_id for claim in claims if claim.claim_id not in valid_ids],
        silver_ids=upserted - superseded,
        superseded=superseded & upserted,
        voids=sum(1 for claim in valid if claim.frequency_code == VOID),
        reason_counts=dict(reasons),
    )


KILL_POINTS = ("before-writes", "after-bronze", "after-events", "after-silver", "during-topics", "before-commit")


def _kill_now() -> None:
    """SIGKILL this process group (driver and its JVM) at once: no stop(), no flush, no finally blocks."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def install_kill_point(point: str, batch_id: int, tables: LakeTables) -> None:
    """Patch the processor so that the process dies at `point` of micro-batch `batch_id` (see KILL_POINTS).

    The writes of a batch run concurrently, so "after-bronze" kills as soon as bronze is committed, whatever the other
    writes have done by then: exactly the partial states a replay must complete without duplicating anything.
    """
    from libs.lake.writes import OnceAppender  # noqa: PLC0415
    from libs.streaming.processor import ClaimBatchProcessor  # noqa: PLC0415

    if point not in KILL_POINTS:
        msg = f"kill point: expected one of {KILL_POINTS}, found {point!r}"
        raise ValueError(msg)
    original_write, original_topics = ClaimBatchProcessor._write, ClaimBatchProcessor._write_topics
    original_call, original_append = ClaimBatchProcessor.__call__, OnceAppender.append
    after = {"after-bronze": tables.bronze, "after-events": tables.claim_events, "after-silver": tables.silver}

    def write(self: Any, checked: Any, batch: int, outcome: Any) -> None:
        if point == "before-writes" and batch == batch_id:
            _kill_now()
        original_write(self, checked, batch, outcome)

    def append(self: Any, frame: Any, location: str, batch: int) -> bool:
        written = original_append(self, frame, location, batch)
        if batch == batch_id and after.get(point) == location:
            _kill_now()
        return written

    def write_topics(self: Any, checked: Any, batch: int, outcome: Any) -> None:
        if point == "during-topics" and batch == batch_id:
            threading.Timer(0.3, _kill_now).start()  # lands while the Kafka sink's tasks are sending
        original_topics(self, checked, batch, outcome)

    def call(self: Any, batch_df: Any, batch: int) -> None:
        original_call(self, batch_df, batch)
        if point == "before-commit" and batch == batch_id:
            _kill_now()  # every output written, the checkpoint's commit for the batch not yet

    ClaimBatchProcessor._write = write  # type: ignore[method-assign]
    ClaimBatchProcessor._write_topics = write_topics  # type: ignore[method-assign]
    ClaimBatchProcessor.__call__ = call  # type: ignore[method-assign]
    OnceAppender.append = append  # type: ignore[method-assign]


def _run_until_killed(settings_file: str, as_of: str, kill_point: str | None = None, kill_batch: str = "1") -> int:
    """Subprocess entry point: run the query with a processing-time trigger until it is killed (by the test, or at
    `kill_point` of micro-batch `kill_batch` by itself)."""
    from libs.spark.session import build_spark_session  # noqa: PLC0415

    settings = Settings.model_validate(orjson.loads(Path(settings_file).read_bytes()))
    if kill_point:
        install_kill_point(kill_point, int(kill_batch), LakeTables.from_settings(settings.lake))
    spark = build_spark_session(settings.spark, app_name="claims-kill-test")
    running = start_claims_query(spark, settings, as_of=date.fromisoformat(as_of))
    running.query.awaitTermination()
    return 0 if running.query.exception() is None else 1


if __name__ == "__main__":
    sys.exit(_run_until_killed(*sys.argv[1:]))
