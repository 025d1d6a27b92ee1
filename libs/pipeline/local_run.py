"""`make run`: the whole pipeline on this machine, from the local broker to a reconciled lake and a loaded warehouse.

Steps: start the local KRaft broker, create the topics, generate and produce N synthetic claims (PHI protected by the
producer), drain the raw topic with the streaming query (availableNow), reconcile produced = bronze = quarantine +
valid and silver = valid - voids, claim id for claim id, then run the daily batch (libs.batch.job) for the run's
date(s) so the warehouse and its marts have data, and write the figures to `.local/run/summary.json`.

One local state: the run writes where every other command reads by default (settings: the lake, checkpoints,
warehouse, keyring and audit log under `.local/`), and its broker is the one of `make kafka-up` (same data directory
and port), so `claims batch`, `claims api`, `claims export`... find what it wrote, and `make kafka-up` afterwards
brings back its topics. A broker already running there is used and left running; one started here is stopped.

Its counts must be its own, so it starts from empty stream state: with earlier state present it refuses in one line
unless `fresh` (`claims run --fresh`, `make run FRESH=1`), which deletes the lake, the checkpoints, the broker's
topic data and the warehouse, says so, and keeps the keyring and the audit log (other commands and earlier exports
rely on them).

What a person sees: one progress line per phase (produce; stream with claims/s; reconcile; batch) and the final
tables. What the engines say goes to log files under `.local/run/logs/` (the summary names them): the Spark JVM's
output and the Python workers' (spark.log), this process's structured log with librdkafka's lines (pipeline.log); the
broker keeps its own logs under `.local/kafka/logs/`.

The Spark session starts in a background thread while the claims are produced, so the JVM's start-up overlaps the
producing; the stream phase is timed from the query's start to its end; the batch runs after the reconciliation.
Everything started here is stopped on the way out, also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from libs.kafka.offsets import topic_message_counts
from libs.preflight import PreflightError, lake_days
from libs.settings import LOCAL_DIR, Settings, WarehouseKind, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from libs.kafka.producer import ProduceReport
    from libs.streaming.metrics import StreamMetrics
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


FRESH_FIX = ("start over with `make run FRESH=1` (claims run --fresh: deletes the lake, checkpoints, broker topics "
             "and warehouse; keeps the keyring and audit log)")


def _local_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("file:")) if "://" not in uri or uri.startswith("file:") else None


def _has_content(path: Path | None) -> bool:
    return path is not None and path.is_dir() and any(path.iterdir())


def earlier_state(settings: Settings) -> list[Path]:
    """What an earlier run (or `claims stream`) left that would mix with this run's counts: a lake or checkpoints."""
    return [path for path in (_local_path(settings.lake.root), _local_path(settings.lake.checkpoint_root))
            if path is not None and _has_content(path)]


def prepare_state(settings: Settings, *, fresh: bool, say: Callable[[str], None]) -> None:
    """Refuse to mix with earlier state, or (fresh) delete the stream state and the warehouse, saying what went.

    Raises PreflightError with the one line. The keyring and the audit log are never deleted: earlier exports and
    the audit trail depend on them, and the new run protects its claims with the same keyring.
    """
    from libs.kafka.broker import local_broker, read_state  # noqa: PLC0415

    broker = local_broker(settings.kafka)
    if not fresh:
        found = earlier_state(settings)
        if found:
            raise PreflightError("no earlier pipeline state (this run's counts must be its own)",
                                 f"{' and '.join(str(path) for path in found)} from an earlier run", FRESH_FIX)
        return
    running = read_state(broker.home)
    if running is not None:
        raise PreflightError("the local broker stopped, so that --fresh can clear its topics",
                             f"it running (pid {running.pid} on {running.bootstrap})",
                             "stop it with `make kafka-down` (claims kafka down), then run again")
    deleted: list[str] = []
    targets = [_local_path(settings.lake.root), _local_path(settings.lake.checkpoint_root), broker.data_dir]
    for target in targets:
        if target is not None and target.exists():
            shutil.rmtree(target)
            deleted.append(str(target))
    if settings.warehouse.kind is WarehouseKind.DUCKDB:
        for suffix in ("", ".wal"):
            file = settings.warehouse.duckdb_path.with_name(settings.warehouse.duckdb_path.name + suffix)
            if file.exists():
                file.unlink()
                deleted.append(str(file))
    kept = [str(settings.security.local_key_file), str(settings.security.audit_log)]
    say(f"--fresh: deleted {', '.join(deleted) or 'nothing (no earlier state)'}; kept {' and '.join(kept)}")


WARMUP_BELOW = 20_000  # claims: smaller runs start the stream on a cold JVM (libs.streaming.warmup costs ~15 s)


class SparkStarter:
    """Starts and warms the Spark session in a background thread, so that both overlap the producing.

    Warm-up (libs.streaming.warmup): the real query runs once on scratch topics and a scratch lake, so the drain that
    follows runs on the engine as a long-running stream has it. Runs smaller than WARMUP_BELOW claims skip it: their
    drain is shorter than the warm-up would be.
    """

    def __init__(self, settings: Settings, log_file: Path, *, warm: bool = True) -> None:
        self._settings = settings
        self._log_file = log_file
        self._warm = warm
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
            if self._warm:
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


def _stream(settings: Settings, spark: SparkSession, total: int, progress: Progress,
            metrics: StreamMetrics) -> tuple[Any, float]:
    """Drain the raw topic with the streaming query.

    The progress line shows claims processed, the lag (claims produced and not yet processed), the Spark tasks of the
    running micro-batch, and claims/s at the end.
    """
    from libs.pipeline.console import spark_activity  # noqa: PLC0415
    from libs.streaming.query import start_claims_query  # noqa: PLC0415

    task = progress.add_task("stream", total=total, info="starting the query")
    done = {"rows": 0}

    def on_batch(outcome: BatchOutcome) -> None:
        done["rows"] += outcome.input_rows

    started = time.perf_counter()
    running = start_claims_query(spark, settings, available_now=True, on_batch=on_batch, metrics=metrics)
    while not running.query.awaitTermination(1):
        activity = spark_activity(spark) or "committing"
        progress.update(task, completed=done["rows"], info=f"lag {total - done['rows']:,}, {activity}")
    seconds = time.perf_counter() - started
    running.stop()
    if running.query.exception() is not None:
        msg = f"the streaming query failed: {running.query.exception()}"
        raise RuntimeError(msg)
    rate = done["rows"] / seconds if seconds else 0.0
    progress.update(task, completed=done["rows"], info=f"{rate:,.0f} claims/s, lag {total - done['rows']:,}")
    return running, seconds


def _produce(settings: Settings, count: int, seed: int, progress: Progress,
             log_file: Path) -> tuple[ProduceReport, float]:
    """Generate, protect and produce `count` claims to the raw topic through the ingestion core (libs.ingest).

    Generation stays in this process; validation, protection and producing run in worker processes whose stderr
    (librdkafka's lines) goes to `log_file`.
    """
    from libs.ingest import produce_generated  # noqa: PLC0415

    task = progress.add_task("produce", total=count, info="")
    started = time.perf_counter()
    produced = produce_generated(settings, count, seed, log_file=log_file, on_progress=lambda report: progress.update(
        task, completed=report.sent, info=f"{report.delivered:,} delivered"))
    seconds = time.perf_counter() - started
    progress.update(task, completed=produced.sent, info=f"{produced.delivered / seconds:,.0f} claims/s")
    return produced, seconds


def run_days(settings: Settings, started: datetime) -> list[date]:
    """The UTC days the run's claims were received on (bronze's partitions; the start day if none are visible)."""
    return lake_days(settings.lake) or [started.date()]


def _batch(spark: SparkSession, settings: Settings, days: list[date], progress: Progress, *, count: int,
           seed: int) -> dict[str, Any]:
    """The daily batch for each of the run's days (usually one), on the run's session: warehouse, marts, alerts.

    A failure is recorded in batch_runs by the job and returned as the summary's `failed` line (PHI-free).
    """
    from libs.batch.job import BatchRunError, run_batch  # noqa: PLC0415
    from libs.monitoring.assets import BATCH_STATUS_FILE  # noqa: PLC0415
    from libs.monitoring.lag import record_batch_run  # noqa: PLC0415

    label = ", ".join(day.isoformat() for day in days)
    task = progress.add_task("batch", total=len(days), info=f"daily batch for {label}")
    started = time.perf_counter()
    batch: dict[str, Any] = {"dates": [day.isoformat() for day in days], "batch_run_ids": [], "claims_loaded": 0,
                             "quarantined": 0, "alerts": 0, "published_alerts": 0,
                             "warehouse": str(settings.warehouse.duckdb_path), "failed": None}
    for number, day in enumerate(days, start=1):
        clock = time.time()
        try:
            result = run_batch(spark, settings, day)
        except BatchRunError as failed:
            record_batch_run(BATCH_STATUS_FILE, succeeded=False, day=day, started_at=clock)
            batch["failed"] = str(failed)
            progress.update(task, info="[red]failed[/red]")
            break
        record_batch_run(BATCH_STATUS_FILE, succeeded=True, day=day, started_at=clock)
        batch["batch_run_ids"].append(result.run.batch_run_id)
        batch["claims_loaded"] += result.run.valid_rows
        batch["quarantined"] += result.run.quarantined_rows
        batch["alerts"] += result.alerts
        batch["published_alerts"] += result.published_alerts
        progress.update(task, completed=number, info=f"{batch['claims_loaded']:,} claims loaded, "
                                                     f"{batch['alerts']:,} alerts")
    if not batch.get("failed"):
        # The generated population's member months: the PMPM and per-1,000 denominators (the marts are rebuilt).
        from libs.analytics.eligibility import load_generated_eligibility  # noqa: PLC0415

        batch["member_months"] = load_generated_eligibility(settings, count, seed)
    batch["seconds"] = round(time.perf_counter() - started, 2)
    return batch


def _summary(reconciliation: Reconciliation, counts: dict[str, int], report: RunReport, *, produced: int,
             logs: RunLogs, broker_logs: Path) -> dict[str, Any]:
    summary = reconciliation.as_dict()
    summary["topics"] = counts
    summary["timings_seconds"] = report.timings
    produce_seconds, stream_seconds = report.timings.get("produce"), report.timings.get("stream")
    summary["throughput_claims_per_second"] = {
        "produce": round(produced / produce_seconds) if produce_seconds else None,
        "stream": round(reconciliation.bronze / stream_seconds) if stream_seconds else None,
    }
    summary["logs"] = {"spark": str(logs.spark), "pipeline": str(logs.pipeline), "kafka": str(broker_logs)}
    return summary


def _open_broker(stack: contextlib.ExitStack, settings: Settings, *, fresh: bool, say: Callable[[str], None],
                 logs: RunLogs) -> tuple[Settings, Path]:
    """Use the local broker if it runs (left running), else start it (stopped by `stack`); create the topics; refuse
    a raw topic that already holds messages (unless fresh, which emptied it). Returns the settings that reach it and
    the broker's log directory."""
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.kafka.broker import local_broker, read_state  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    broker = local_broker(settings.kafka)
    running = read_state(broker.home)
    if running is None:
        say(f"starting the local Kafka broker (KRaft, {broker.bootstrap}, data in {broker.data_dir}, the one "
            f"`make kafka-up` starts); engine logs go to {logs.directory}")
        stack.callback(say, f"stopped the broker; its topics stay in {broker.data_dir} (`make kafka-up` starts it "
                            "again)")
        stack.enter_context(broker)
        bootstrap = broker.bootstrap
    else:
        say(f"using the broker already running from {broker.home} (pid {running.pid} on {running.bootstrap}); it "
            "keeps running afterwards")
        bootstrap = running.bootstrap
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})})
    ensure_topics(settings.kafka, settings.kafka.topics_file)
    if not fresh:
        raw = load_topics(settings.kafka.topics_file).raw
        held = topic_message_counts(settings.kafka, [raw])[raw]
        if held:
            raise PreflightError(f"an empty {raw} topic (this run's counts must be its own)",
                                 f"{held:,} messages from earlier producing on {bootstrap}", FRESH_FIX)
    return settings, broker.logs_dir


def _reconcile(settings: Settings, spark: SparkSession, running: Any, produced: int, *, progress: Progress,
               report: RunReport) -> tuple[Reconciliation, dict[str, int]]:
    """The reconciliation phase: messages per topic, then the lake's identities against what was produced."""
    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.streaming.reconcile import reconcile  # noqa: PLC0415

    topics = load_topics(settings.kafka.topics_file)
    task = progress.add_task("reconcile", total=None, info="reading the lake")
    started = time.perf_counter()
    counts = topic_message_counts(settings.kafka, [spec.name for spec in topics.all()])
    reconciliation = reconcile(spark, running.tables, produced=produced, dead_letter=counts[topics.dead_letter])
    report.timings["reconcile"] = round(time.perf_counter() - started, 2)
    progress.update(task, total=1, completed=1, info="reconciled" if reconciliation.reconciled else "NOT reconciled")
    return reconciliation, counts


def run_pipeline(
    count: int,
    seed: int,
    *,
    fresh: bool = False,
    run_dir: Path = LOCAL_DIR / "run",
    say: Callable[[str], None] = print,
    show_progress: bool = True,
    console: Console | None = None,
    settings: Settings | None = None,
) -> RunReport:
    """Run everything; returns the report (summary["reconciled"] tells whether the counts add up, summary["batch"]
    what the daily batch loaded). Raises PreflightError (one line) when earlier state is in the way."""
    from libs.kafka.topics import load_topics  # noqa: PLC0415
    from libs.monitoring.serve import serve_metrics  # noqa: PLC0415
    from libs.phi.logging import configure_logging  # noqa: PLC0415
    from libs.pipeline.console import logs_on_terminal  # noqa: PLC0415
    from libs.streaming.metrics import StreamMetrics  # noqa: PLC0415

    console = console or Console(stderr=True)
    settings = settings or load_settings()
    report = RunReport()
    prepare_state(settings, fresh=fresh, say=say)
    started_at = datetime.now(UTC)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)  # the run's own logs; its data lives in the shared state
    logs = RunLogs(run_dir / "logs")
    logs.directory.mkdir(parents=True, exist_ok=True)
    if not logs_on_terminal():  # `claims --log-format json run` keeps its JSON lines on stderr, as a service would
        # Left open on purpose: the JVM gateway still logs as the interpreter exits.
        configure_logging(logging.INFO, stream=logs.pipeline.open("a", encoding="utf-8"))
    with contextlib.ExitStack() as stack:
        settings, broker_logs = _open_broker(stack, settings, fresh=fresh, say=say, logs=logs)
        topics = load_topics(settings.kafka.topics_file)
        # Scraped by `make monitor-up`'s Prometheus when it runs (a port in use only costs the endpoint).
        stream_metrics = StreamMetrics()
        servers = [serve_metrics(settings.monitoring.producer_metrics_port),
                   serve_metrics(settings.monitoring.streaming_metrics_port, stream_metrics.registry)]
        # Said before Spark starts: while the JVM launches, this process's stdout and stderr point at spark.log.
        say(f"producing {count:,} synthetic claims (seed {seed}) to {topics.raw}, streaming them into "
            f"{settings.lake.root}, then the daily batch into {settings.warehouse.duckdb_path}")
        warm = count >= WARMUP_BELOW
        starter = SparkStarter(settings, logs.spark, warm=warm)
        with _progress(console, show_progress) as progress:
            produced, seconds = _produce(settings, count, seed, progress, logs.pipeline)
            report.timings["produce"] = round(seconds, 2)
            if not produced.ok:
                say(f"producer: {produced.failed} claims not delivered")
            spark = starter.session()
            report.timings[f"spark start{' and warm-up' if warm else ''} (during produce)"] = round(starter.seconds, 2)
            try:
                running, seconds = _stream(settings, spark, produced.delivered, progress, stream_metrics)
                report.timings["stream"] = round(seconds, 2)
                reconciliation, counts = _reconcile(settings, spark, running, produced.delivered,
                                                    progress=progress, report=report)
                if reconciliation.reconciled:
                    batch = _batch(spark, settings, run_days(settings, started_at), progress, count=count,
                                   seed=seed)
                    report.timings["batch"] = batch["seconds"]
                else:
                    batch = {"failed": "skipped: the reconciliation failed, the warehouse was not loaded"}
            finally:
                spark.stop()
                for served in servers:
                    if served is not None:
                        served[0].shutdown()
    report.summary = _summary(reconciliation, counts, report, produced=produced.delivered, logs=logs,
                              broker_logs=broker_logs)
    report.summary["batch"] = batch
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_bytes(orjson.dumps(report.summary, option=orjson.OPT_INDENT_2))
    return report
