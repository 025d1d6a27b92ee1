"""The streaming stages of the bench: drain the raw topic (availableNow) and latency at a steady produce rate.

Why the listener progress and Spark's stage timings are kept: a single claims/s figure says that the query is slow,
not where. Each micro-batch's `durationMs` (latestOffset, getBatch, queryPlanning, addBatch = the foreachBatch
function, walCommit, commitOffsets) separates Spark's own bookkeeping from the processor's work, and the per-stage
timings from Spark's REST API (`/api/v1/applications/<id>/stages`, served by the UI the bench switches on) name the
DataFrame actions of the processor that take the time (Delta writes, MERGE, Kafka sink, counts).

The query itself is the production one (`libs.streaming.query.start_claims_query`); nothing here changes it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.streaming import StreamingQuery

from libs.bench.results import latency_summary
from libs.settings import Settings
from libs.streaming.metrics import source_offsets
from libs.streaming.query import RunningQuery, start_claims_query

DURATION_KEYS = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets",
                 "triggerExecution")
SPARK_UI_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%Z"
WAITING_FOR_TRIGGER = "Waiting for next trigger"


def offsets_total(value: Any) -> int:
    """Sum of the offsets of every partition of every topic in an offsets entry."""
    return sum(int(offset) for partitions in source_offsets(value).values() for offset in partitions.values())


def processed_offsets(progress: dict[str, Any] | None) -> int:
    """Sum of the end offsets of every source of a progress event: messages processed so far on a fresh topic."""
    if not progress:
        return 0
    return sum(offsets_total(source.get("endOffset")) for source in progress.get("sources") or [])


def batch_figures(progress: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per micro-batch with input: batch id, messages read, the listener's numInputRows and durations in ms.

    Messages are counted from the Kafka source's start and end offsets, not from `numInputRows`: Spark derives that
    from the executed plans of the batch, and a foreachBatch function that reads the batch DataFrame in several
    actions (bronze write, validation, sinks) makes it a multiple of the real count. Both are kept.
    """
    batches = []
    for event in progress:
        sources = event.get("sources") or []
        messages = sum(offsets_total(source.get("endOffset")) - offsets_total(source.get("startOffset"))
                       for source in sources)
        if messages <= 0:
            continue
        durations = event.get("durationMs") or {}
        batches.append({
            "batch_id": int(event.get("batchId", -1)),
            "input_rows": messages,
            "num_input_rows_reported": int(event.get("numInputRows") or 0),
            "duration_ms": {key: int(durations[key]) for key in DURATION_KEYS if key in durations},
        })
    return batches


def query_progress(query: StreamingQuery) -> list[dict[str, Any]]:
    """The query's retained progress events as plain dicts (`spark.sql.streaming.numRecentProgressUpdates`)."""
    return [json.loads(progress.json) for progress in query.recentProgress]


def steady_state(batches: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Rows and processing time of every batch but the first (which carries the JVM, codegen and Delta warm-up).

    None when there are fewer than two batches: the warm-up cannot be separated from one batch.
    """
    if len(batches) < 2:  # a first batch and at least one more
        return None
    rest = batches[1:]
    rows = sum(batch["input_rows"] for batch in rest)
    millis = sum(batch["duration_ms"].get("triggerExecution", 0) for batch in rest)
    return {
        "batches": len(rest),
        "claims": rows,
        "seconds": millis / 1000.0,
        "claims_per_second": round(rows / (millis / 1000.0), 1) if millis else None,
    }


def duration_totals(batches: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The listener's durations summed over batches (ms), e.g. how much of the time is addBatch."""
    totals: dict[str, int] = {}
    for batch in batches:
        for key, value in batch["duration_ms"].items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


# ---------------------------------------------------------------------------------------------- Spark stage timings


def parse_ui_time(text: str | None) -> float | None:
    """Epoch seconds of a Spark REST timestamp such as '2026-11-30T05:40:01.123GMT'; None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text, SPARK_UI_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def stage_breakdown(stages: Iterable[dict[str, Any]], since: float, until: float, limit: int = 10
                    ) -> list[dict[str, Any]]:
    """Spark stages submitted in [since, until] grouped by their call site, longest total wall time first.

    `wall_seconds` is completion - submission summed over the group's stages (stages of one job can overlap, so the
    sum can exceed the window); `task_seconds` is the executors' run time, i.e. the CPU work spread over the cores.
    """
    groups: dict[str, dict[str, Any]] = {}
    for stage in stages:
        submitted, completed = parse_ui_time(stage.get("submissionTime")), parse_ui_time(stage.get("completionTime"))
        if submitted is None or completed is None or not since <= submitted <= until:
            continue
        name = str(stage.get("name") or "?")
        group = groups.setdefault(name, {"call_site": name, "stages": 0, "tasks": 0, "wall_seconds": 0.0,
                                         "task_seconds": 0.0, "input_records": 0})
        group["stages"] += 1
        group["tasks"] += int(stage.get("numCompleteTasks") or stage.get("numTasks") or 0)
        group["wall_seconds"] += completed - submitted
        group["task_seconds"] += float(stage.get("executorRunTime") or 0) / 1000.0
        group["input_records"] += int(stage.get("inputRecords") or 0)
    ordered = sorted(groups.values(), key=lambda group: group["wall_seconds"], reverse=True)[:limit]
    for group in ordered:
        group["wall_seconds"] = round(group["wall_seconds"], 2)
        group["task_seconds"] = round(group["task_seconds"], 2)
    return ordered


def fetch_stages(spark: SparkSession, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Completed stages from the Spark UI's REST API; empty when the UI is off (the breakdown is then omitted)."""
    context = spark.sparkContext
    base = context.uiWebUrl
    if not base:
        return []
    url = f"{base.rstrip('/')}/api/v1/applications/{context.applicationId}/stages?status=complete"
    if not url.startswith(("http://", "https://")):
        return []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (the local Spark UI)
            data = json.loads(response.read())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


# ------------------------------------------------------------------------------------------- processor step timing


def _constant(name: str) -> Callable[[tuple[Any, ...]], str]:
    def label(_args: tuple[Any, ...]) -> str:
        return name

    return label


class StepTimer:
    """Times the steps of `ClaimBatchProcessor` while a stage runs, by wrapping them; everything is restored on exit.

    Why wrapping rather than Spark's own metrics: Spark's stage names inside a Python foreachBatch are py4j call
    sites ("save at NativeMethodAccessorImpl.java:0"), which do not say which write they belong to. The processor's
    methods and its `idempotent_append` calls (keyed by the table's txnAppId suffix: bronze, quarantine, events, ...)
    do. Names that the processor no longer has are skipped and listed under `missing`, so a refactoring of
    libs/streaming never breaks the bench, it only coarsens the breakdown. Times are inclusive; `route (self)` is
    `_route` minus the writes it makes, i.e. the validation and the per-batch aggregates.
    """

    METHODS = ("__call__", "_route", "_apply_to_silver", "_write_topics", "_publish_quality")
    FUNCTIONS = ("idempotent_append",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.missing: list[str] = []
        self._restore: list[tuple[Any, str, Any]] = []

    def _record(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.calls[name] = self.calls.get(name, 0) + 1

    def _wrap(self, owner: Any, attribute: str, label: Callable[[tuple[Any, ...]], str]) -> None:
        original = getattr(owner, attribute, None)
        if not callable(original):
            self.missing.append(attribute)
            return
        timer = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timer._record(label(args), time.perf_counter() - started)

        self._restore.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def __enter__(self) -> StepTimer:
        from libs.streaming import processor  # noqa: PLC0415

        for method in self.METHODS:
            name = "batch (total)" if method == "__call__" else method.lstrip("_")
            self._wrap(processor.ClaimBatchProcessor, method, _constant(name))
        for function in self.FUNCTIONS:
            # idempotent_append(frame, location, app_id, batch_id): app_id is "<pipeline id>-<table>".
            self._wrap(processor, function,
                       lambda args: f"append {str(args[2]).rsplit('-', 1)[-1]}" if len(args) > 2 else "append")
        return self

    def __exit__(self, *_exc: object) -> None:
        for owner, attribute, original in reversed(self._restore):
            setattr(owner, attribute, original)
        self._restore.clear()

    def summary(self) -> dict[str, Any]:
        """Seconds and calls per step, longest first, plus `route (self)` when it can be derived."""
        seconds = dict(self.seconds)
        if "route" in seconds:
            inside = ("append quarantine", "append events", "append supersessions", "apply_to_silver", "write_topics")
            seconds["route (self)"] = seconds["route"] - sum(seconds.get(step, 0.0) for step in inside)
        steps = {name: {"seconds": round(value, 2), "calls": self.calls.get(name)}
                 for name, value in sorted(seconds.items(), key=lambda item: item[1], reverse=True)}
        return {"steps": steps, "missing": self.missing}


# ---------------------------------------------------------------------------------------------------- the stages


@dataclass
class DrainResult:
    """One availableNow drain of the raw topic into a fresh lake."""

    claims: int
    seconds: float  # start_claims_query() called -> query terminated
    setup_seconds: float  # start_claims_query() itself: reference data, empty Delta tables, query start
    batches: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": self.claims,
            "seconds": round(self.seconds, 3),
            "setup_seconds": round(self.setup_seconds, 3),
            "claims_per_second": round(self.claims / self.seconds, 1) if self.seconds else None,
            "batches": self.batches,
            "duration_totals_ms": duration_totals(self.batches),
            "excluding_first_batch": steady_state(self.batches),
            "processor_steps": self.steps,
            "spark_stages": self.stages,
        }


def _raise_if_failed(running: RunningQuery, what: str) -> None:
    error = running.query.exception()
    if error is not None:
        msg = f"{what}: the streaming query failed: {error}"
        raise RuntimeError(msg)


def drain(spark: SparkSession, settings: Settings, as_of: date, on_rows: Callable[[int], None] | None = None
          ) -> DrainResult:
    """Drain the raw topic of `settings` with availableNow into the lake of `settings`; timed from the query start.

    `on_rows` is called about once a second with the messages processed so far (for a progress display).
    """
    with StepTimer() as timer:
        started = time.perf_counter()
        since = time.time()
        running = start_claims_query(spark, settings, available_now=True, as_of=as_of)
        setup = time.perf_counter() - started
        try:
            while not running.query.awaitTermination(1):
                if on_rows is not None:
                    on_rows(processed_offsets(_last_progress(running.query)))
        finally:
            spark.streams.removeListener(running.listener)
        seconds = time.perf_counter() - started
    _raise_if_failed(running, "drain")
    batches = batch_figures(query_progress(running.query))
    stages = stage_breakdown(fetch_stages(spark), since, time.time())
    return DrainResult(sum(batch["input_rows"] for batch in batches), seconds, setup, batches, stages,
                       timer.summary())


def _last_progress(query: StreamingQuery) -> dict[str, Any] | None:
    progress = query.lastProgress
    return json.loads(progress.json) if progress is not None else None


@dataclass
class LatencyResult:
    """Per-claim latency (Kafka record timestamp -> micro-batch committed to the lake) at a steady produce rate."""

    produced: int
    produce_seconds: float
    drained_seconds: float  # first produce -> every produced message processed
    summary: dict[str, float | int]
    batches: list[dict[str, Any]]
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "produce_seconds": round(self.produce_seconds, 3),
            "achieved_rate": round(self.produced / self.produce_seconds, 1) if self.produce_seconds else None,
            "drained_seconds": round(self.drained_seconds, 3),
            "latency": self.summary,
            "batches": len(self.batches),
            "mean_batch_rows": round(sum(b["input_rows"] for b in self.batches) / len(self.batches), 1)
            if self.batches else None,
            "duration_totals_ms": duration_totals(self.batches),
            "processor_steps": self.steps,
        }


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"expected {what} within {timeout:.0f} s, found it still pending"
            raise TimeoutError(msg)
        time.sleep(poll)


def claim_latencies_ms(spark: SparkSession, settings: Settings) -> list[float]:
    """committed_at of the claim's batch minus its Kafka timestamp, in ms, for every valid claim in the lake.

    Both clocks are this machine's: the Kafka timestamp is the producer's CreateTime (set when produce() is called),
    committed_at is written by the processor after the batch's last lake write.
    """
    from libs.streaming.lake import LakeTables  # noqa: PLC0415

    tables = LakeTables.from_settings(settings.lake)
    events = spark.read.format("delta").load(tables.claim_events).select("batch_id", "kafka_timestamp")
    batches = spark.read.format("delta").load(tables.batches).select("batch_id", "committed_at")
    micros = F.unix_micros(F.col("committed_at")) - F.unix_micros(F.col("kafka_timestamp"))
    rows = events.join(batches, "batch_id").select((micros / 1000.0).alias("latency_ms")).collect()
    return [float(row["latency_ms"]) for row in rows]


def steady_latency(
    spark: SparkSession,
    settings: Settings,
    *,
    as_of: date,
    produce: Callable[[], tuple[int, float]],
    drain_timeout: float = 600.0,
) -> LatencyResult:
    """Start the query with a processing-time trigger, run `produce` (returns delivered, seconds), wait for the drain.

    The query has finished its initialisation before the first claim is produced, so the latency is the steady-state
    one, not the start-up. "Drained" means the source's end offsets reached the number of messages produced (the
    topic is fresh, so offsets start at 0).
    """
    with StepTimer() as timer:
        running = start_claims_query(spark, settings, available_now=False, as_of=as_of)
        query = running.query
        try:
            wait_until(lambda: query.status.get("message") == WAITING_FOR_TRIGGER or not query.isActive,
                       120.0, "the latency query to be ready")
            _raise_if_failed(running, "latency")
            started = time.perf_counter()
            delivered, produce_seconds = produce()
            wait_until(lambda: processed_offsets(_last_progress(query)) >= delivered or not query.isActive,
                       drain_timeout, f"the query to process the {delivered:,} produced claims")
            drained = time.perf_counter() - started
            _raise_if_failed(running, "latency")
        finally:
            query.stop()
            spark.streams.removeListener(running.listener)
    summary = latency_summary(claim_latencies_ms(spark, settings))
    return LatencyResult(delivered, produce_seconds, drained, summary, batch_figures(query_progress(query)),
                         timer.summary())
