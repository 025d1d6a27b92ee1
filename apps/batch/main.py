"""Entry point of the daily batch job (spark-submit script on EMR, `claims batch` locally).

    spark-submit apps/batch/main.py --date 2026-05-01     one day of claims (received that UTC day)
    spark-submit apps/batch/main.py                        yesterday (UTC): what the daily schedule runs
    spark-submit apps/batch/main.py --all                  every claim in silver (backfill, rebuild)

Thin on purpose: the job lives in libs.batch.job. Exit code 0 on success, 1 when the run failed (the failure is
recorded in batch_runs and logged without PHI), 2 on bad arguments or a missing dependency (no broker, no alerts
topic, no silver table: checked in seconds before Spark starts, one line on stderr and in batch_runs).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from libs.monitoring.assets import BATCH_STATUS_FILE
from libs.monitoring.lag import record_batch_run
from libs.phi.logging import LogFormat, configure_logging, default_log_format, safe_exception_message
from libs.preflight import EXIT_PREFLIGHT, PreflightError
from libs.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from libs.batch.job import BatchResult

log = logging.getLogger("claims.batch")


def yesterday_utc(now: datetime | None = None) -> date:
    """The default day: the last complete UTC day."""
    return ((now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=1)).date()


def parse_day(text: str) -> date:
    """A --date value (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"--date: expected YYYY-MM-DD, found {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def check(settings: Settings, day: date | None) -> None:
    """The batch's preflight (libs.batch.job.check_batch: a refusal is recorded in batch_runs) and, on a refusal, the
    monitoring status file; then re-raised."""
    from libs.batch.job import check_batch  # noqa: PLC0415  (PySpark only when a job runs)

    try:
        check_batch(settings, day)
    except PreflightError:
        record_batch_run(BATCH_STATUS_FILE, succeeded=False, day=day, started_at=time.time())
        raise


def execute(settings: Settings, day: date | None, *, spark: SparkSession | None = None) -> BatchResult:
    """Run the batch for `day` (None: all) on `spark`, or on a session started and stopped here; the monitoring
    status file records the outcome (alerts ClaimsBatchJobFailed / ClaimsBatchJobLate). Raises on failure
    (libs.batch.job.BatchRunError: its message is the ledger's PHI-free line)."""
    from libs.batch.job import run_batch  # noqa: PLC0415  (PySpark only when a job runs)
    from libs.spark.session import build_spark_session  # noqa: PLC0415

    started = time.time()
    own = spark is None
    session = build_spark_session(settings.spark, app_name="claims-batch") if spark is None else spark
    try:
        result = run_batch(session, settings, day)
    except BaseException:
        record_batch_run(BATCH_STATUS_FILE, succeeded=False, day=day, started_at=started)
        raise
    finally:
        if own:
            session.stop()
    record_batch_run(BATCH_STATUS_FILE, succeeded=True, day=day, started_at=started)
    log.info("batch %s: %s", result.run.batch_run_id, result.counts)
    return result


def run(settings: Settings, day: date | None) -> int:
    """Check, build the Spark session, run the batch for `day` (None: all), stop the session; 0 when it succeeded."""
    try:
        check(settings, day)
    except PreflightError as refused:
        sys.stderr.write(f"error: {refused}\n")
        return EXIT_PREFLIGHT
    try:
        execute(settings, day)
    except Exception as exc:  # noqa: BLE001  (recorded in batch_runs by run_batch; the exit code carries it)
        log.error("batch failed: %s", safe_exception_message(exc))
        sys.stderr.write(f"error: {safe_exception_message(exc)}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse --date / --all and run."""
    parser = argparse.ArgumentParser(description="Claims daily batch: silver -> warehouse, batch fraud screens")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--date", type=parse_day, help="day of claims to process, YYYY-MM-DD (default: yesterday UTC)")
    group.add_argument("--all", action="store_true", help="process every claim in silver")
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat], default=None,
                        help="file: .local/logs/batch.log; json: stderr (default: file locally, json elsewhere)")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(process="batch", log_format=args.log_format or default_log_format(settings.environment))
    day = None if args.all else (args.date or yesterday_utc())
    return run(settings, day)


if __name__ == "__main__":
    sys.exit(main())
