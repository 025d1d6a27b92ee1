"""`make run`: the whole pipeline on this machine, from a fresh broker to a reconciled lake.

Steps: start a local KRaft broker, create the topics, generate and produce N synthetic claims (PHI protected by the
producer), drain the raw topic with the streaming query (availableNow), then reconcile produced = bronze =
quarantine + valid and silver = valid - voids, claim id for claim id, and write the figures to
`.local/run/summary.json`.

What a person sees: one progress line per phase (produce; stream with claims/s; reconcile) and the final tables. What
the engines say goes to log files under `.local/run/logs/` (the summary names them): the Spark JVM's output and the
Python workers' (spark.log), this process's structured log with librdkafka's lines (pipeline.log); the broker keeps
its own logs under `.local/run/kafka/logs/`.

The Spark session starts in a background thread while the claims are produced, so the JVM's start-up overlaps the
producing; the stream phase is timed from the query's start to its end.

Each run starts from empty state under `.local/run/` so that its counts are its own; everything it started is
stopped on the way out, also on failure or Ctrl-C.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from libs.kafka.client_config import client_config
from libs.settings import LOCAL_DIR, KafkaSettings, LakeSettings, Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from libs.kafka.producer import ProduceReport
    from libs.streaming.processor import BatchOutcome
    from libs.streaming.reconcile import Reconciliation

log = logging.getLogger("claims.run")


@dataclass
class RunReport:
    """Everything `make run` prints and writes."""

    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunLogs:
    """Where the engines' output of a run goes."""

    directory: Path

    @property
    def spark(self) -> Path:
        return self.directory / "spark.log"

    @property
    def pipeline(self) -> Path:
        return self.directory / "pipeline.log"


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


class SparkStarter:
    """Starts and warms the Spark session in a background thread, so that both overlap the producing.

    Warm-up (libs.streaming.warmup): the Python workers start and every write path of the stream runs once on a
    scratch lake, so the drain that follows runs on the engine as a long-running stream has it.
    """

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self._settings = settings
        self._log_file = log_file
        self._session: SparkSession | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._start, name="spark-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        from libs.spark.session import build_spark_session  # noqa: PLC0415  (PySpark only when running)
        from libs.streaming.warmup import warm_up  # noqa: PLC0415

        started = time.perf_counter()
        try:
            self._session = build_spark_session(self._settings.spark, app_name="claims-run", log_file=self._log_file)
            warm_up(self._session, self._settings)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread by session())
            self._error = exc
        self.seconds = time.perf_counter() - started

    def session(self) -> SparkSession:
        """The started session (waits for the start to finish; re-raises its failure)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._session is not None  # set when _error is not
        return self._session


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<10}[/bold]"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                    disable=not enabled, transient=False)


def _stream(settings: Settings, spark: SparkSession, total: int, progress: Progress) -> tuple[Any, float]:
    """Drain the raw topic with the streaming query; the progress line shows claims processed and claims/s."""
    from libs.streaming.query import start_claims_query  # noqa: PLC0415

    task = progress.add_task("stream", total=total, info="starting the query")
    done = {"rows": 0}

    def on_batch(outcome: BatchOutcome) -> None:
        done["rows"] += outcome.input_rows

    started = time.perf_counter()
    running = start_claims_query(spark, settings, available_now=True, on_batch=on_batch)
    tracker = spark.sparkContext.statusTracker()
    while not running.query.awaitTermination(1):
        stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
        tasks = [(s.numCompletedTasks, s.numTasks) for s in stages if s is not None]
        activity = f"tasks {sum(d for d, _ in tasks)}/{sum(t for _, t in tasks)}" if tasks else "committing"
        progress.update(task, completed=done["rows"], info=activity)
    seconds = time.perf_counter() - started
    running.stop()
    if running.query.exception() is not None:
        msg = f"the streaming query failed: {running.query.exception()}"
        raise RuntimeError(msg)
    rate = done["rows"] / seconds if seconds else 0.0
    progress.update(task, completed=done["rows"], info=f"{rate:,.0f} claims/s")
    return running, seconds


def _produce(settings: Settings, count: int, seed: int, progress: Progress) -> tuple[ProduceReport, float]:
    """Generate, protect and produce `count` claims to the raw topic (rejections to the dead-letter topic)."""
    from libs.generator import GeneratorConfig, generate_claims  # noqa: PLC0415
    from libs.kafka.producer import ClaimProducer  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.phi import PhiProtector  # noqa: PLC0415

    topics = load_topics(settings.kafka.topics_file)
    task = progress.add_task("produce", total=count, info="")
    started = time.perf_counter()
    producer = ClaimProducer(settings.kafka, topics.raw, dead_letter_topic=topics.dead_letter,
                             protect=PhiProtector.from_settings(settings).protect)
    claims = (claim for claim, _labels in generate_claims(GeneratorConfig(count=count, seed=seed)))
    produced = producer.produce_all(claims, on_progress=lambda report: progress.update(
        task, completed=report.sent, info=f"{report.delivered:,} delivered"))
    seconds = time.perf_counter() - started
    progress.update(task, completed=produced.sent, info=f"{produced.delivered / seconds:,.0f} claims/s")
    return produced, seconds


def _summary(reconciliation: Reconciliation, counts: dict[str, int], report: RunReport, *, produced: int,
             logs: RunLogs, run_dir: Path) -> dict[str, Any]:
    summary = reconciliation.as_dict()
    summary["topics"] = counts
    summary["timings_seconds"] = report.timings
    produce_seconds, stream_seconds = report.timings.get("produce"), report.timings.get("stream")
    summary["throughput_claims_per_second"] = {
        "produce": round(produced / produce_seconds) if produce_seconds else None,
        "stream": round(reconciliation.bronze / stream_seconds) if stream_seconds else None,
    }
    summary["logs"] = {"spark": str(logs.spark), "pipeline": str(logs.pipeline),
                       "kafka": str(run_dir / "kafka" / "logs")}
    return summary


def run_pipeline(
    count: int,
    seed: int,
    *,
    run_dir: Path = LOCAL_DIR / "run",
    say: Callable[[str], None] = print,
    show_progress: bool = True,
    console: Console | None = None,
) -> RunReport:
    """Run everything; returns the report (summary["reconciled"] tells whether the counts add up)."""
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.kafka.broker import LocalKafka  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.phi.logging import configure_logging  # noqa: PLC0415
    from libs.streaming.reconcile import reconcile  # noqa: PLC0415

    console = console or Console(stderr=True)
    report = RunReport()
    for stale in ("kafka", "lake", "checkpoints", "logs"):
        shutil.rmtree(run_dir / stale, ignore_errors=True)
    logs = RunLogs(run_dir / "logs")
    logs.directory.mkdir(parents=True, exist_ok=True)
    # Left open on purpose: the JVM gateway still logs as the interpreter exits.
    configure_logging(logging.INFO, stream=logs.pipeline.open("a", encoding="utf-8"))
    say(f"starting a local Kafka broker (KRaft, 127.0.0.1); engine logs go to {logs.directory}")
    with LocalKafka(home=run_dir / "kafka", port=0, controller_port=0) as broker:
        settings = run_settings(run_dir, broker.bootstrap)
        starter = SparkStarter(settings, logs.spark)
        topics = load_topics(settings.kafka.topics_file)
        ensure_topics(settings.kafka, settings.kafka.topics_file)
        say(f"producing {count:,} synthetic claims (seed {seed}) to {topics.raw}, streaming them into "
            f"{settings.lake.root}")
        with _progress(console, show_progress) as progress:
            produced, seconds = _produce(settings, count, seed, progress)
            report.timings["produce"] = round(seconds, 2)
            if not produced.ok:
                say(f"producer: {produced.failed} claims not delivered")
            spark = starter.session()
            report.timings["spark start and warm-up (during produce)"] = round(starter.seconds, 2)
            try:
                running, seconds = _stream(settings, spark, produced.delivered, progress)
                report.timings["stream"] = round(seconds, 2)
                task = progress.add_task("reconcile", total=None, info="reading the lake")
                started = time.perf_counter()
                counts = topic_message_counts(settings.kafka, [spec.name for spec in topics.all()])
                reconciliation = reconcile(spark, running.tables, produced=produced.delivered,
                                           dead_letter=counts[topics.dead_letter])
                report.timings["reconcile"] = round(time.perf_counter() - started, 2)
                progress.update(task, total=1, completed=1,
                                info="reconciled" if reconciliation.reconciled else "NOT reconciled")
            finally:
                spark.stop()
    report.summary = _summary(reconciliation, counts, report, produced=produced.delivered, logs=logs, run_dir=run_dir)
    (run_dir / "summary.json").write_bytes(orjson.dumps(report.summary, option=orjson.OPT_INDENT_2))
    return report
