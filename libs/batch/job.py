"""The daily batch job: one day (or all) of silver -> fraud alerts (topic + gold) -> staged Parquet -> warehouse.

Order and why:
1. a `running` row in batch_runs (DuckDB), so a crash leaves a visible trace;
2. fraud screens over the day's claims; alerts new to gold are published to the alerts topic *before* gold is
   merged, so a crash in between re-publishes (at-least-once, consumers key on claim_id + rule) instead of losing;
3. the warehouse frames are written as Parquet under the lake (`warehouse_stage/<run id>/<table>`): DuckDB reads
   them directly, Redshift COPYs them from S3 - the same files either way;
4. one transaction merges them into the warehouse together with the `succeeded` batch_runs row.
Every step is idempotent, so re-running a day (after a failure, or twice) converges to the same warehouse.

Failures: `preflight_batch` checks in seconds, before a JVM starts, that the broker answers, the alerts topic exists
and the stream's tables are there (libs.preflight); a run that fails anyway records one PHI-free line in batch_runs
(`explain_failure`: a dependency that went away is named with its fix, anything else by its structure only) and
raises `BatchRunError` carrying that line, so the CLI, the API and the ledger all say the same thing.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.analytics.marts import rebuild_marts_duckdb
from libs.batch import frames, fraud
from libs.codesets import CodeSets, load_codesets
from libs.kafka.topics import load_topics
from libs.lake import LakeTables, current_claims, removals, silver_claims
from libs.pipeline import signals
from libs.preflight import (
    Needs,
    PreflightError,
    check_day_in_lake,
    check_lake,
    explain_failure,
    one_line,
    preflight,
)
from libs.settings import Settings, WarehouseKind
from libs.warehouse import load

log = logging.getLogger("claims.batch")

# What a batch run needs: the stream's tables, a broker and the alerts topic (the batch publishes its alerts there).
BATCH_NEEDS = Needs(topics=("alerts",), lake=True)
# The alerts write waits at most this long for Kafka metadata (the client's default is 60 s per attempt): the broker
# was checked seconds before, so a longer wait only delays the one-line failure.
PUBLISH_MAX_BLOCK_MS = 15_000


class BatchRunError(RuntimeError):
    """A batch run failed; the message is the PHI-free line recorded in batch_runs (the cause is chained)."""

    phi_safe = True

    def __init__(self, message: str, run: load.BatchRun | None = None) -> None:
        super().__init__(message)
        self.run = run


def preflight_batch(settings: Settings, day: date | None) -> None:
    """Seconds-long checks before a JVM starts (PreflightError with the one line): broker, alerts topic, the stream's
    tables, and, on a local lake, that it holds claims of `day` at all (a run on a day without claims would load
    nothing and say nothing)."""
    check_lake(settings.lake)
    check_day_in_lake(settings.lake, day)  # local and cheap: before the broker's seconds of waiting
    preflight(settings, BATCH_NEEDS)


def check_batch(settings: Settings, day: date | None) -> None:
    """`preflight_batch`, with a refusal recorded in batch_runs (the same line the person or API client reads)
    before the PreflightError is re-raised: `claims batch` and `POST /v1/batches` refuse the same way."""
    try:
        preflight_batch(settings, day)
    except PreflightError as refused:
        record_refused(settings, day, str(refused))
        raise


def record_refused(settings: Settings, day: date | None, reason: str, *, app_version: str | None = None
                   ) -> load.BatchRun:
    """A `failed` batch_runs row for a run refused before it started, with the same line the person saw."""
    now = datetime.now(UTC)
    run = load.BatchRun(batch_run_id=new_run_id(day, now), pipeline=frames.PIPELINE, status="failed",
                        started_at=now, finished_at=now, run_date=day, duration_seconds=0.0, app_version=app_version,
                        error_message=one_line(reason)[:1024])
    if settings.warehouse.kind is WarehouseKind.DUCKDB:
        load.record_run_duckdb(settings.warehouse.duckdb_path, run)
    log.error("batch run %s refused: %s", run.batch_run_id, run.error_message)
    return run


@dataclass
class BatchResult:
    """What one batch run did."""

    run: load.BatchRun
    load: load.LoadReport
    alerts: int = 0
    published_alerts: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def new_run_id(day: date | None, started: datetime) -> str:
    """A unique, sortable, readable run id: batch-<day|all>-<UTC start>-<random>."""
    return f"batch-{day.isoformat() if day else 'all'}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _delta(spark: SparkSession, location: str) -> DataFrame:
    return spark.read.format("delta").load(location)


def _table_exists(spark: SparkSession, location: str) -> bool:
    from delta.tables import DeltaTable  # noqa: PLC0415

    return bool(DeltaTable.isDeltaTable(spark, location))


def _local_path(uri: str) -> Path:
    if "://" in uri and not uri.startswith("file:"):
        msg = f"the DuckDB warehouse reads its stage from a local lake; found lake location {uri}"
        raise load.WarehouseLoadError(msg)
    return Path(uri.removeprefix("file:"))


def _publish(frame: DataFrame, settings: Settings) -> None:
    from libs.kafka.client_config import spark_kafka_options  # noqa: PLC0415  (shares the stream's client options)

    writer = frame.write.format("kafka")
    for key, value in spark_kafka_options(settings.kafka).items():
        writer = writer.option(key, value)
    writer.option("kafka.max.block.ms", str(PUBLISH_MAX_BLOCK_MS)).save()


def screen_day(spark: SparkSession, settings: Settings, silver: DataFrame, *, run_id: str, run_date: date | None,
               created_at: datetime, codesets: CodeSets) -> tuple[DataFrame, int]:
    """Screen the day's claims; publish the new cross-claim alerts; merge all into gold. Returns (alerts, published)."""
    alerts = fraud.screen_day_alerts(silver, codesets, batch_run_id=run_id, created_at=created_at).persist()
    location = LakeTables.from_settings(settings.lake).gold_alerts
    fresh = alerts if not _table_exists(spark, location) else fraud.new_alerts(alerts, _delta(spark, location))
    to_publish = fresh.filter(F.col("screen") == fraud.SCREEN_BATCH)
    published = to_publish.count()
    if published:
        _publish(fraud.alert_messages(to_publish, load_topics(settings.kafka.topics_file).alerts, run_date), settings)
    fraud.merge_into_gold(spark, alerts, location)
    return alerts, published


def stage_frames(frames_by_table: dict[str, DataFrame], root: str) -> dict[str, str]:
    """Write each frame as Parquet under `root/<table>`; returns table -> location.

    An empty frame still writes one file carrying the schema, so the loaders never meet a missing stage.
    """
    staged: dict[str, str] = {}
    for table, frame in frames_by_table.items():
        location = f"{root.rstrip('/')}/{table}"
        frame.coalesce(1).write.mode("overwrite").parquet(location)
        staged[table] = location
    return staged


def run_batch(spark: SparkSession, settings: Settings, day: date | None, *, codesets: CodeSets | None = None,
              app_version: str | None = None) -> BatchResult:
    """Run the batch for `day` (claims received that UTC day) or for all of silver when `day` is None."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    run = load.BatchRun(batch_run_id=new_run_id(day, started), pipeline=frames.PIPELINE, status="running",
                        started_at=started, run_date=day, app_version=app_version)
    duckdb_path = settings.warehouse.duckdb_path
    local = settings.warehouse.kind is WarehouseKind.DUCKDB
    if local:
        load.record_run_duckdb(duckdb_path, run)
    log.info("batch run %s started for %s", run.batch_run_id, day.isoformat() if day else "all days")
    try:
        result = _run(spark, settings, run, day=day, codesets=codesets or load_codesets(), started=started,
                      clock=clock)
    except (Exception, KeyboardInterrupt) as exc:
        run.status, run.finished_at = "failed", datetime.now(UTC)
        run.duration_seconds = round(time.perf_counter() - clock, 3)
        # An interrupt that landed inside a call into the JVM comes back as a Py4JError: still an interrupt.
        interrupted = isinstance(exc, KeyboardInterrupt) or signals.interrupted()
        reason = ("interrupted (Ctrl-C or SIGTERM) before it finished; run it again, every step is idempotent"
                  if interrupted else explain_failure(exc, settings, BATCH_NEEDS))
        run.error_message = one_line(reason)[:1024]
        if local:
            load.record_run_duckdb(duckdb_path, run)
        log.error("batch run %s failed: %s", run.batch_run_id, run.error_message)
        if interrupted or isinstance(exc, PreflightError):
            raise
        raise BatchRunError(run.error_message, run) from exc
    log.info("batch run %s succeeded: %s", run.batch_run_id, result.counts)
    return result


def _run(spark: SparkSession, settings: Settings, run: load.BatchRun, *, day: date | None, codesets: CodeSets,
         started: datetime, clock: float) -> BatchResult:
    # Parquet INT96 timestamps are deprecated; Redshift COPY and DuckDB both read TIMESTAMP_MICROS exactly.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    tables = LakeTables.from_settings(settings.lake)
    topics = load_topics(settings.kafka.topics_file)
    events = _delta(spark, tables.claim_events)
    day_silver = frames.for_day(_delta(spark, tables.silver), day)
    silver = silver_claims(current_claims(day_silver, events)).persist()
    quarantine = frames.for_day(_delta(spark, tables.quarantine), day).persist()
    try:
        alerts, published = screen_day(spark, settings, silver, run_id=run.batch_run_id, run_date=day,
                                       created_at=started, codesets=codesets)
        bronze = _delta(spark, tables.bronze)
        if day is not None:
            bronze = bronze.filter(F.col("ingest_date") == F.lit(day))
        valid, quarantined = silver.count(), quarantine.count()
        metrics = frames.daily_metrics(silver, quarantine, alerts)
        metrics.append(("duplicate_line_numbers", "", frames.duplicate_line_count(silver)))
        window = (datetime.combine(day, datetime.min.time(), UTC), None) if day else (None, None)
        to_stage: dict[str, Any] = {
            "claims": frames.claims_frame(silver, alerts=alerts, batch_run_id=run.batch_run_id,
                                          raw_topic=topics.raw, loaded_at=started),
            "claim_lines": frames.claim_lines_frame(silver, loaded_at=started),
            "providers": frames.providers_frame(silver, updated_at=started),
            "quarantine_summary": frames.quarantine_summary_frame(quarantine, frames.source_formats(bronze),
                                                                  updated_at=started),
            "quality_metrics": frames.quality_metrics_frame(metrics, spark_frame=silver,
                                                            batch_run_id=run.batch_run_id, window=window,
                                                            recorded_at=started),
            load.SUPERSESSIONS: removals(events).select(*load.SUPERSESSION_COLUMNS).distinct(),
            "intake_daily": frames.intake_daily_frame(day_silver, quarantine, frames.source_formats(bronze),
                                                      frames.for_day(events, day), updated_at=started),
            "field_quality": frames.field_quality_frame(day_silver, quarantine, frames.source_formats(bronze),
                                                        updated_at=started),
            **frames.reference_frames(silver, codesets),
        }
        root = f"{tables.warehouse_stage}/{run.batch_run_id}"
        staged = stage_frames(to_stage, root)
        alert_count = alerts.count()
    finally:
        silver.unpersist()
        quarantine.unpersist()
    run.status, run.finished_at = "succeeded", datetime.now(UTC)
    run.input_rows, run.valid_rows, run.quarantined_rows = valid + quarantined, valid, quarantined
    run.duration_seconds = round(time.perf_counter() - clock, 3)
    if settings.warehouse.kind is WarehouseKind.DUCKDB:
        report = load.load_duckdb(settings.warehouse.duckdb_path,
                                  {table: _local_path(location) for table, location in staged.items()}, run)
        shutil.rmtree(_local_path(root), ignore_errors=True)  # loaded: the stage has served its purpose
        rebuild_marts_duckdb(settings.warehouse.duckdb_path)  # recomputed from the warehouse: idempotent
    else:
        report = _load_redshift(settings, staged, run)
    # Rows of claims, lines, providers and summaries; quality_metrics and batch_runs grow by design on every run.
    data = load.LoadReport({name: n for name, n in report.changed.items()
                            if not name.startswith(("quality_metrics.", "batch_runs."))})
    counts = {"silver_claims": valid, "quarantined": quarantined, "alerts": alert_count, "published": published,
              "inserted": data.total(".insert"), "updated": data.total(".update") + data.total(".void"),
              "deleted": data.total(".delete")}
    return BatchResult(run=run, load=report, alerts=alert_count, published_alerts=published, counts=counts)


def _load_redshift(settings: Settings, staged: dict[str, str], run: load.BatchRun) -> load.LoadReport:
    # issue 11: COPY + merge + batch_runs + the marts' rebuild, one Data API batch (libs/batch/load_redshift.py).
    from libs.batch.load_redshift import load_redshift  # noqa: PLC0415  (boto3 only on the Redshift path)

    return load_redshift(settings, staged, run)  # the Data API reports no per-statement row counts for a batch
