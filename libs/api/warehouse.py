"""The analytics routes' access to the warehouse: one short read-only DuckDB connection per request.

Why per request and read-only: the daily batch (a child process of the API, or `claims batch`) writes the same DuckDB
file, and DuckDB lets one process write only while no other process holds the file. A connection kept open by the
API would make every batch run fail on the lock; a read-only connection opened for one query and closed at once
leaves the file free between requests, and a request that meets the batch's write lock is answered 503 with
Retry-After instead of waiting. Opening a DuckDB file is a few milliseconds, well inside the analytics latency budget.

A missing warehouse is not a server fault but a pipeline that has not run yet: the 503 names the command that
builds it. Redshift (in AWS) is not served by these routes yet; they say so rather than pretend.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import duckdb

from libs.settings import Settings, WarehouseKind
from libs.warehouse.dialect import table_columns
from libs.warehouse.load import BatchRun

BUILD_COMMAND = "claims batch --date YYYY-MM-DD"
BUSY_RETRY_SECONDS = 5


class WarehouseUnavailableError(RuntimeError):
    """The warehouse cannot be read now (HTTP 503); `retry_after_seconds` is set when waiting helps."""

    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class AnalyticsWarehouse:
    """Opens the configured warehouse for one query at a time."""

    def __init__(self, settings: Settings) -> None:
        self.kind = settings.warehouse.kind
        self.path: Path = settings.warehouse.duckdb_path

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the DuckDB file, closed on exit; WarehouseUnavailableError when there is no
        file, the batch holds the write lock, or the warehouse is Redshift."""
        if self.kind is not WarehouseKind.DUCKDB:
            msg = (f"expected the local DuckDB warehouse, found warehouse.kind {self.kind.value}: the analytics "
                   "routes do not query Redshift yet (use the Redshift query editor on the marts)")
            raise WarehouseUnavailableError(msg)
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


def recent_batch_runs(connection: duckdb.DuckDBPyConnection, *, limit: int = 20) -> list[BatchRun]:
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
