"""The streaming stages of the bench: drain the raw topic (availableNow), and a steady produce rate with its latency.

Why per-step and per-process figures: a claims/s figure says that the query is slow, not where. The processor times
each step of every micro-batch (check, bronze, quarantine, events, silver, topics: libs.streaming.processor), and
the CPU each process kind spent during the stage (Spark's JVM, the Python workers that run the rules, the broker;
libs.bench.cpu) says which engine the time went to.

The query is the production one (`libs.streaming.query.start_claims_query`); nothing here changes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.streaming import StreamingQuery

from libs.bench import cpu
from libs.bench.results import latency_summary
from libs.lake import LakeTables, read_delta
from libs.settings import Settings
from libs.streaming.metrics import partition_lag, source_offsets
from libs.streaming.processor import BatchOutcome
from libs.streaming.query import RunningQuery, start_claims_query

WAITING_FOR_TRIGGER = "Waiting for next trigger"


def offsets_total(value: Any) -> int:
    """Sum of the offsets of every partition of every topic in an offsets entry."""
    return sum(int(offset) for partitions in source_offsets(value).values() for offset in partitions.values())


def processed_offsets(progress: dict[str, Any] | None) -> int:
    """Sum of the end offsets of every source of a progress event: messages processed so far on a fresh topic."""
    if not progress:
        return 0
    return sum(offsets_total(source.get("endOffset")) for source in progress.get("sources") or [])


def batch_row(outcome: BatchOutcome) -> dict[str, Any]:
    """One micro-batch as the bench reports it."""
    return {"batch_id": outcome.batch_id, "input_rows": outcome.input_rows, "valid": outcome.valid,
            "quarantined": outcome.quarantined, "seconds": round(outcome.duration_seconds, 3),
            "steps": {step: round(seconds, 3) for step, seconds in outcome.step_seconds.items()}}


def step_totals(outcomes: Sequence[BatchOutcome]) -> dict[str, float]:
    """Each step's seconds summed over the batches (steps of one batch overlap: see BatchOutcome.step)."""
    totals: dict[str, float] = {}
    for outcome in outcomes:
        for step, seconds in outcome.step_seconds.items():
            totals[step] = totals.get(step, 0.0) + seconds
    return {step: round(seconds, 2) for step, seconds in totals.items()}


def cpu_profile(spent: dict[str, float], claims: int) -> dict[str, Any]:
    """CPU seconds per process kind and per claim (µs), with the share of the total."""
    total = sum(spent.values()) or 1.0
    return {kind: {"cpu_seconds": seconds, "share": round(seconds / total, 3),
                   "us_per_claim": round(seconds / claims * 1e6, 1) if claims else None}
            for kind, seconds in sorted(spent.items(), key=lambda item: -item[1])}


@dataclass
class DrainResult:
    """One availableNow drain of the raw topic into a fresh lake."""

    claims: int
    seconds: float  # start_claims_query() called -> query terminated
    setup_seconds: float  # start_claims_query() itself: tables, query start
    outcomes: list[BatchOutcome] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": self.claims,
            "seconds": round(self.seconds, 3),
            "setup_seconds": round(self.setup_seconds, 3),
            "claims_per_second": round(self.claims / self.seconds, 1) if self.seconds else None,
            "batches": [batch_row(outcome) for outcome in self.outcomes],
            "step_seconds": step_totals(self.outcomes),
            "cpu": cpu_profile(self.cpu_seconds, self.claims),
        }


def _raise_if_failed(running: RunningQuery, what: str) -> None:
    error = running.query.exception()
    if error is not None:
        msg = f"{what}: the streaming query failed: {error}"
        raise RuntimeError(msg)


def _last_progress(query: StreamingQuery) -> dict[str, Any] | None:
    progress = query.lastProgress
    return json.loads(progress.json) if progress is not None else None


def drain(spark: SparkSession, settings: Settings, as_of: date, on_rows: Callable[[int], None] | None = None
          ) -> DrainResult:
    """Drain the raw topic of `settings` with availableNow into the lake of `settings`; timed from the query start.

    `on_rows` is called about once a second with the messages processed so far (for a progress display).
    """
    outcomes: list[BatchOutcome] = []
    before = cpu.snapshot()
    started = time.perf_counter()
    running = start_claims_query(spark, settings, available_now=True, as_of=as_of, on_batch=outcomes.append)
    setup = time.perf_counter() - started
    try:
        while not running.query.awaitTermination(1):
            if on_rows is not None:
                on_rows(sum(outcome.input_rows for outcome in outcomes))
    finally:
        running.stop()
    seconds = time.perf_counter() - started
    spent = cpu.difference(before, cpu.snapshot())
    _raise_if_failed(running, "drain")
    return DrainResult(sum(outcome.input_rows for outcome in outcomes), seconds, setup, outcomes, spent)


@dataclass
class LatencyResult:
    """Per-claim latency at a steady produce rate: Kafka timestamp -> silver committed, and -> alert sent."""

    produced: int
    produce_seconds: float
    drained_seconds: float  # first produce -> every produced message processed
    silver: dict[str, float | int]
    alerts: dict[str, float | int]
    lag: list[int]  # unprocessed offsets after each micro-batch with input
    outcomes: list[BatchOutcome] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rows = [outcome.input_rows for outcome in self.outcomes if outcome.input_rows]
        return {
            "produced": self.produced,
            "produce_seconds": round(self.produce_seconds, 3),
            "achieved_rate": round(self.produced / self.produce_seconds, 1) if self.produce_seconds else None,
            "drained_seconds": round(self.drained_seconds, 3),
            "drained_after_produce_seconds": round(self.drained_seconds - self.produce_seconds, 3),
            "produce_to_silver": self.silver,
            "produce_to_alert": self.alerts,
            "lag_after_batch": self.lag,
            "batches": len(rows),
            "mean_batch_rows": round(sum(rows) / len(rows), 1) if rows else None,
            "mean_batch_seconds": round(sum(o.duration_seconds for o in self.outcomes) / len(self.outcomes), 3)
            if self.outcomes else None,
            "step_seconds": step_totals(self.outcomes),
            "cpu": cpu_profile(self.cpu_seconds, self.produced),
        }


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"expected {what} within {timeout:.0f} s, found it still pending"
            raise TimeoutError(msg)
        time.sleep(poll)


def silver_latencies_ms(spark: SparkSession, tables: LakeTables, outcomes: Sequence[BatchOutcome]) -> list[float]:
    """For every silver row: its batch's silver commit time minus the claim's Kafka timestamp (producer CreateTime)."""
    committed = [(o.batch_id, o.silver_committed_at) for o in outcomes if o.silver_committed_at is not None]
    if not committed:
        return []
    commits = spark.createDataFrame(committed, "batch_id long, silver_committed_at timestamp")
    micros = F.unix_micros("silver_committed_at") - F.unix_micros("kafka_timestamp")
    rows = read_delta(spark, tables.silver).join(commits, "batch_id").select((micros / 1000.0).alias("ms")).collect()
    return [float(row["ms"]) for row in rows]


def alert_latencies_ms(spark: SparkSession, settings: Settings, tables: LakeTables) -> list[float]:
    """For every alert on the alerts topic: its Kafka timestamp minus the raw claim's Kafka timestamp."""
    from libs.kafka.client_config import spark_kafka_options  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    reader = spark.read.format("kafka").option("subscribe", load_topics(settings.kafka.topics_file).alerts)
    for key, value in spark_kafka_options(settings.kafka).items():
        reader = reader.option(key, value)
    source = F.from_json(F.col("value").cast("string"), "kafka_partition int, kafka_offset long")
    alerts = reader.load().select(F.col("timestamp").alias("alert_timestamp"), source.alias("s")).select(
        "alert_timestamp", "s.kafka_partition", "s.kafka_offset")
    raw = read_delta(spark, tables.bronze).select("kafka_partition", "kafka_offset", "kafka_timestamp")
    micros = F.unix_micros("alert_timestamp") - F.unix_micros("kafka_timestamp")
    rows = alerts.join(raw, ["kafka_partition", "kafka_offset"]).select((micros / 1000.0).alias("ms")).collect()
    return [float(row["ms"]) for row in rows]


def steady_latency(
    spark: SparkSession,
    settings: Settings,
    *,
    as_of: date,
    produce: Callable[[], tuple[int, float]],
    drain_timeout: float = 600.0,
) -> LatencyResult:
    """Start the query with its processing-time trigger, run `produce` (returns delivered, seconds), wait for the drain.

    The query has finished its initialisation before the first claim is produced, so the latency is the steady-state
    one, not the start-up. "Drained" means the source's end offsets reached the number of messages produced (the
    topic is fresh, so offsets start at 0).
    """
    outcomes: list[BatchOutcome] = []
    running = start_claims_query(spark, settings, available_now=False, as_of=as_of, on_batch=outcomes.append)
    query = running.query
    try:
        wait_until(lambda: query.status.get("message") == WAITING_FOR_TRIGGER or not query.isActive,
                   120.0, "the latency query to be ready")
        _raise_if_failed(running, "latency")
        before = cpu.snapshot()
        started = time.perf_counter()
        delivered, produce_seconds = produce()

        wait_until(lambda: processed_offsets(_last_progress(query)) >= delivered or not query.isActive,
                   drain_timeout, f"the query to process the {delivered:,} produced claims")
        drained_seconds = time.perf_counter() - started
        spent = cpu.difference(before, cpu.snapshot())
        _raise_if_failed(running, "latency")
    finally:
        running.stop()
    tables = LakeTables.from_settings(settings.lake)
    return LatencyResult(
        produced=delivered, produce_seconds=produce_seconds, drained_seconds=drained_seconds,
        silver=latency_summary(silver_latencies_ms(spark, tables, outcomes)),
        alerts=latency_summary(alert_latencies_ms(spark, settings, tables)),
        lag=lag_after_batches(query), outcomes=outcomes, cpu_seconds=spent,
    )


def lag_after_batches(query: StreamingQuery) -> list[int]:
    """Offsets not yet processed after each micro-batch that had input (from the retained progress events).

    A backlog that keeps up stays near one trigger's worth of claims; one that grows batch after batch does not.
    """
    lags = []
    for progress in (json.loads(event.json) for event in query.recentProgress):
        if int(progress.get("numInputRows") or 0) > 0:
            lags.append(sum(value for source in progress.get("sources") or []
                            for value in partition_lag(source).values()))
    return lags
