"""`make run`: the whole pipeline on this machine, from a fresh broker to a reconciled lake.

Steps: start a local KRaft broker, create the topics, generate and produce N synthetic claims (PHI protected by the
producer), drain the raw topic with the streaming query (availableNow), then reconcile produced = bronze =
silver + quarantine (+ replacements and voids) and write the figures to `.local/run/summary.json`.

Each run starts from empty state under `.local/run/` so that its counts are its own; everything it started is
stopped on the way out, also on failure or Ctrl-C.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from libs.kafka.client_config import client_config
from libs.settings import LOCAL_DIR, KafkaSettings, LakeSettings, Settings, load_settings


@dataclass
class RunReport:
    """Everything `make run` prints and writes."""

    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def topic_message_counts(kafka: KafkaSettings, topics: list[str]) -> dict[str, int]:
    """Messages held per topic (sum of high watermarks minus low watermarks over its partitions)."""
    config = {**client_config(kafka), "group.id": "claims-run-counter", "enable.auto.commit": False}
    consumer = Consumer(config)
    try:
        counts: dict[str, int] = {}
        metadata = consumer.list_topics(timeout=15)
        for topic in topics:
            total = 0
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
                total += high - low
            counts[topic] = total
        return counts
    finally:
        consumer.close()


def run_settings(run_dir: Path, bootstrap: str) -> Settings:
    """Settings for a run: the lake and checkpoints live under the run directory."""
    return load_settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        lake=LakeSettings(root=str(run_dir / "lake"), checkpoint_root=str(run_dir / "checkpoints")),
    )


def _timed(report: RunReport, name: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return step()
    finally:
        report.timings[name] = round(time.perf_counter() - started, 2)


def run_pipeline(
    count: int,
    seed: int,
    *,
    run_dir: Path = LOCAL_DIR / "run",
    say: Callable[[str], None] = print,
    show_progress: bool = True,
) -> RunReport:
    """Run everything; returns the report (summary["reconciled"] tells whether the counts add up)."""
    from apps.producer.main import generated_records, load_protector  # noqa: PLC0415
    from apps.producer.main import run as produce  # noqa: PLC0415
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.kafka.broker import LocalKafka  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.spark.session import build_spark_session  # noqa: PLC0415
    from libs.streaming.query import start_claims_query  # noqa: PLC0415
    from libs.streaming.reconcile import reconcile  # noqa: PLC0415

    report = RunReport()
    for stale in ("kafka", "lake", "checkpoints"):
        shutil.rmtree(run_dir / stale, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    say("starting a local Kafka broker (KRaft, 127.0.0.1)")
    with LocalKafka(home=run_dir / "kafka", port=0, controller_port=0) as broker:
        settings = run_settings(run_dir, broker.bootstrap)
        topics = load_topics(settings.kafka.topics_file)
        _timed(report, "topics", lambda: ensure_topics(settings.kafka, settings.kafka.topics_file))
        say(f"producing {count:,} synthetic claims (seed {seed}) to {topics.raw}")
        protect = load_protector(settings)
        produced = _timed(
            report, "produce",
            lambda: produce(settings, generated_records(count, seed), total=count, protect=protect,
                            show_progress=show_progress),
        )
        if not produced.ok:
            say(f"producer: {produced.failed} claims not delivered")
        say("streaming: draining the raw topic through Spark into the lake")
        spark = build_spark_session(settings.spark, app_name="claims-run")
        try:
            running = start_claims_query(spark, settings, available_now=True)
            _timed(report, "stream", running.query.awaitTermination)
            running.stop()
            if running.query.exception() is not None:
                msg = f"the streaming query failed: {running.query.exception()}"
                raise RuntimeError(msg)
            counts = topic_message_counts(settings.kafka, [spec.name for spec in topics.all()])
            reconciliation = _timed(
                report, "reconcile",
                lambda: reconcile(spark, running.tables, produced=produced.delivered,
                                  dead_letter=counts[topics.dead_letter]),
            )
        finally:
            spark.stop()
    summary = reconciliation.as_dict()
    summary["topics"] = counts
    summary["timings_seconds"] = report.timings
    stream_seconds = report.timings.get("stream") or 0.0
    summary["throughput_claims_per_second"] = {
        "produce": round(produced.delivered / report.timings["produce"]) if report.timings.get("produce") else None,
        "stream": round(reconciliation.bronze / stream_seconds) if stream_seconds else None,
    }
    report.summary = summary
    (run_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return report
