"""The analytics routes' access to the warehouse: one short read-only DuckDB connection per request locally, the
Redshift Data API in AWS.

Why per request and read-only: the daily batch (a child process of the API, or `claims batch`) writes the same DuckDB
file, and DuckDB lets one process write only while no other process holds the file. A connection kept open by the
API would make every batch run fail on the lock; a read-only connection opened for one query and closed at once
leaves the file free between requests, and a request that meets the batch's write lock is answered 503 with
Retry-After instead of waiting. Opening a DuckDB file is a few milliseconds, well inside the analytics latency budget.

A missing warehouse is not a server fault but a pipeline that has not run yet: the 503 names the command that
builds it.

In AWS (`warehouse.kind: redshift`) the same query functions run on Redshift through
libs.warehouse.redshift_query (the cluster is in private subnets; the Data API is IAM-authorised HTTPS). A failed or
slow statement is a 503 naming the cluster; a table the batch has not created yet names the batch command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from libs.settings import Settings, WarehouseKind
from libs.warehouse.dialect import table_columns
from libs.warehouse.load import BatchRun
from libs.warehouse.redshift_query import (
    RedshiftMissingTableError,
    RedshiftNotConfiguredError,
    RedshiftQueryConnection,
    RedshiftQueryError,
    redshift_read_connection,
)

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

    from libs.analytics.queries import ReadConnection

BUILD_COMMAND = "claims batch --date YYYY-MM-DD"
BUSY_RETRY_SECONDS = 5


class WarehouseUnavailableError(RuntimeError):
    """The warehouse cannot be read now (HTTP 503); `retry_after_seconds` is set when waiting helps."""

    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class AnalyticsWarehouse:
    """Opens the configured warehouse for one query at a time."""

    def __init__(self, settings: Settings, *, redshift_client: RedshiftDataAPIServiceClient | None = None) -> None:
        self.kind = settings.warehouse.kind
        self.path: Path = settings.warehouse.duckdb_path
        self._settings = settings
        self._redshift_client = redshift_client

    @contextmanager
    def connection(self) -> Iterator[ReadConnection]:
        """A read connection, closed on exit; WarehouseUnavailableError when it cannot answer now (no DuckDB file,
        the batch holds DuckDB's write lock, Redshift not configured, a Redshift statement failed or timed out)."""
        if self.kind is WarehouseKind.REDSHIFT:
            with self._redshift() as connection:
                yield connection
            return
        with self._duckdb() as duck:
            yield duck

    @contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.is_file():
            msg = f"no warehouse at {self.path}: build it with `{BUILD_COMMAND}` (or `make run`)"
            raise WarehouseUnavailableError(msg)
        try:
            connection = duckdb.connect(str(self.path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            msg = "the warehouse is being written by a batch run (DuckDB write lock); retry shortly"
            raise WarehouseUnavailableError(msg, retry_after_seconds=BUSY_RETRY_SECONDS) from None
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _redshift(self) -> Iterator[RedshiftQueryConnection]:
        try:
            connection = redshift_read_connection(self._settings.warehouse, self._settings.aws, self._redshift_client)
        except RedshiftNotConfiguredError as exc:
            raise WarehouseUnavailableError(str(exc)) from None
        self._redshift_client = connection.client  # one Data API client for the process
        try:
            yield connection
        except RedshiftMissingTableError:
            raise  # the query functions turn it into "run the batch"
        except RedshiftQueryError as exc:
            raise WarehouseUnavailableError(str(exc), retry_after_seconds=BUSY_RETRY_SECONDS) from None


def recent_batch_runs(connection: ReadConnection, *, limit: int = 20) -> list[BatchRun]:
    """The newest rows of the batch_runs ledger (batch pipeline), on a read-only connection.

    Not libs.warehouse.load.batch_runs_duckdb: that opens the file read-write (and migrates it), which the API must
    not do while its own read-only analytics connections are open (DuckDB refuses two configurations of one file in
    a process) or while a batch writes.
    """
    columns = table_columns()["batch_runs"]
    rows = connection.execute(
        f"SELECT {', '.join(columns)} FROM batch_runs WHERE pipeline = 'batch' "  # noqa: S608  (schema column names)
        "ORDER BY started_at DESC LIMIT ?", [limit]).fetchall()
    known = {f.name for f in fields(BatchRun)}
    return [BatchRun(**{c: v for c, v in zip(columns, row, strict=True) if c in known}) for row in rows]
