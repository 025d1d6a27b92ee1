"""The daily batch's last run read from the warehouse's `batch_runs` ledger, for the lag exporter in AWS.

Why: locally the batch's entry point writes a small status file beside the exporter (libs.monitoring.lag
`record_batch_run`). On EMR the batch's driver runs on whichever core node YARN picks, so that file never reaches the
exporter on the primary node, and the `claims_batch_*` series (what ClaimsBatchJobFailed and ClaimsBatchJobLate
watch) would be missing. Every run, refused ones included, writes its `batch_runs` row in Redshift; this reads the
newest row and the last success from there, in the status file's shape, so the collector publishes the same series.

Reads are cached for `ttl_seconds` (a scrape every 15 s must not become a Data API statement every 15 s). When
Redshift does not answer, the last good answer is kept and a warning logged: a dead warehouse connection must not
make the batch look like it never ran (that would silence the "late" alert) nor crash the exporter.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from libs.analytics.queries import ReadConnection
from libs.settings import Settings, WarehouseKind
from libs.warehouse.redshift_query import redshift_read_connection

log = logging.getLogger("claims.monitoring.batch_ledger")

# The newest *finished* run (a run still going counts once it ends, as with the status file); refused runs finish
# at once, so they count as failures.
LAST_RUN_SQL = ("SELECT status, started_at, finished_at, run_date FROM batch_runs "
                "WHERE pipeline = 'batch' AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1")
LAST_SUCCESS_SQL = "SELECT MAX(finished_at) FROM batch_runs WHERE pipeline = 'batch' AND status = 'succeeded'"
DEFAULT_TTL_SECONDS = 60.0


def _epoch(value: Any) -> float | None:
    """A ledger timestamp (naive UTC, as the batch writes it) as Unix seconds."""
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def batch_status_from_ledger(connection: ReadConnection) -> dict[str, Any]:
    """The status file's fields (libs.monitoring.lag.read_batch_status) from the ledger; {} before the first run."""
    rows = connection.execute(LAST_RUN_SQL).fetchall()
    if not rows:
        return {}
    status, started, finished, day = rows[0]
    (last_success,) = connection.execute(LAST_SUCCESS_SQL).fetchall()[0]
    return {
        "last_run_started_at": _epoch(started),
        "last_run_finished_at": _epoch(finished),
        "last_run_succeeded": status == "succeeded",
        "last_run_day": day.isoformat() if day else None,
        "last_success_at": _epoch(last_success),
    }


class LedgerBatchStatus:
    """A callable for PipelineLagCollector: the ledger's batch status, cached, the last good answer on errors."""

    def __init__(self, connect: Callable[[], ReadConnection], *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: dict[str, Any] = {}
        self._read_at: float | None = None

    def __call__(self) -> dict[str, Any]:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._ttl:
            return self._cached
        try:
            self._cached = batch_status_from_ledger(self._connect())
        except Exception as exc:  # noqa: BLE001  (any warehouse failure: keep the last answer, say why)
            log.warning("batch ledger not readable, keeping the last answer: %s", exc)
        self._read_at = now
        return self._cached


def ledger_batch_status(settings: Settings) -> LedgerBatchStatus | None:
    """The ledger reader for a Redshift warehouse (one Data API client, made on the first read); None for DuckDB,
    where the batch's status file beside the exporter is the source."""
    if settings.warehouse.kind is not WarehouseKind.REDSHIFT:
        return None
    return LedgerBatchStatus(functools.cache(lambda: redshift_read_connection(settings.warehouse, settings.aws)))
