# ruff: noqa: S608  (identifiers come from schema.sql, values only through _literal, quoted by sqlglot)
"""Load the batch job's staged Parquet files into the warehouse: DuckDB locally, Redshift (COPY) in AWS.

Why one set of merge statements for both engines: the warehouse must end in the same state whichever engine holds it,
so the merge is generated once, in SQL both DuckDB and Redshift accept (UPDATE ... FROM, INSERT ... WHERE NOT EXISTS,
and a NULL-safe comparison written out, because Redshift lacks IS DISTINCT FROM). Only the staging differs: DuckDB
reads the Parquet files directly, Redshift COPYs them from S3 into temporary tables.

Idempotence: a row is updated only when one of its compared columns differs from the staged row, and inserted only
when its key is absent, so loading the same staged day twice changes no row of claims, claim_lines, providers or
quarantine_summary (the load report counts 0 inserted, 0 updated). Bookkeeping columns (loaded_at, updated_at,
recorded_at, batch_run_id) are written, never compared. quality_metrics rows are keyed by their run and batch_runs
gets one row per run: both are the record of *runs*, not of claims.

Beyond upserts, a load applies what silver expresses by absence: lines a reloaded claim no longer has are deleted,
claims replaced by a frequency-7 claim are deleted, claims voided by a frequency-8 claim are flagged is_voided, the
per-day tables (quarantine_summary, intake_daily, field_quality: DAY_REPLACED) are replaced per staged day, so a
reason code or source format gone from a re-run day leaves no row behind, and provider claim counts are recomputed
over the whole warehouse. Member months (eligibility) merge by member, payer and month.

Redshift statements run through libs.warehouse.redshift (the Data API); this package never imports deploy tooling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from libs.warehouse.dialect import statements, table_columns
from libs.warehouse.migrations import upgrade_duckdb
from libs.warehouse.redshift import RedshiftTarget, execute_sql_batch

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

SUPERSESSIONS = "supersessions"  # staged only: (claim_id, frequency_code) of originals replaced (7) or voided (8)
SUPERSESSION_COLUMNS = ("claim_id", "frequency_code")
STAGE_PREFIX = "stage_"


@dataclass(frozen=True)
class TableSpec:
    """How one warehouse table is merged from its staged rows."""

    table: str
    keys: tuple[str, ...]
    bookkeeping: tuple[str, ...] = ()  # written on insert and update, never compared
    recomputed: tuple[str, ...] = ()  # inserted from the stage, then recomputed by the loader; never compared


TABLE_SPECS: dict[str, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec("claims", ("claim_id",), bookkeeping=("batch_run_id", "loaded_at")),
        TableSpec("claim_lines", ("claim_id", "line_number"), bookkeeping=("loaded_at",)),
        TableSpec("providers", ("npi",), bookkeeping=("updated_at",),
                  recomputed=("first_service_date", "last_service_date", "claim_count")),
        TableSpec("quarantine_summary", ("summary_date", "reason_code", "source_format"), bookkeeping=("updated_at",)),
        TableSpec("quality_metrics", ("pipeline", "batch_run_id", "metric_name", "dimension"),
                  bookkeeping=("recorded_at",)),
        TableSpec("intake_daily", ("intake_date", "source_format"), bookkeeping=("updated_at",)),
        TableSpec("field_quality", ("intake_date", "source_format", "field_name"), bookkeeping=("updated_at",)),
        TableSpec("ref_procedures", ("procedure_code",)),
        TableSpec("ref_specialties", ("taxonomy",)),
        TableSpec("eligibility", ("member_token", "payer_id", "eligibility_month")),
    )
}
LOAD_ORDER = ("claims", "claim_lines", "providers", "quarantine_summary", "quality_metrics", "intake_daily",
              "field_quality", "ref_procedures", "ref_specialties", "eligibility")
# Tables recomputed per day by every batch run: a staged day replaces that day's rows as a whole, so a reason code or
# a source format that no longer occurs on a re-run day leaves no stale row behind (table -> its day column).
DAY_REPLACED = {"quarantine_summary": "summary_date", "intake_daily": "intake_date", "field_quality": "intake_date"}


class WarehouseLoadError(RuntimeError):
    """A load could not complete (missing stage, failed statement); the transaction was rolled back."""


@dataclass(frozen=True)
class Step:
    """One SQL statement of a load, named for counts and error messages."""

    name: str
    sql: str


@dataclass
class LoadReport:
    """Rows changed per step name (e.g. 'claims.insert': 12); a re-run of the same stage reports only zeros."""

    changed: dict[str, int] = field(default_factory=dict)

    def total(self, suffix: str) -> int:
        """Sum over the steps whose name ends with `suffix` ('.insert', '.update', '.delete')."""
        return sum(count for name, count in self.changed.items() if name.endswith(suffix))


@dataclass
class BatchRun:
    """One row of batch_runs (the ledger `claims batch status` reads). error_message is never PHI."""

    batch_run_id: str
    pipeline: str
    status: str
    started_at: datetime
    run_date: date | None = None
    micro_batch_id: int | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    input_rows: int = 0
    valid_rows: int = 0
    quarantined_rows: int = 0
    dead_letter_rows: int = 0
    start_offsets: str | None = None
    end_offsets: str | None = None
    app_version: str | None = None
    error_message: str | None = None

    def values(self) -> dict[str, Any]:
        """Column -> value, in schema order."""
        return {name: getattr(self, name) for name in table_columns()["batch_runs"]}


# ------------------------------------------------------------------------------------------------ SQL generation


def _same(left: str, right: str) -> str:
    """NULL-safe equality both engines accept (Redshift has no IS DISTINCT FROM)."""
    return f"({left} = {right} OR ({left} IS NULL AND {right} IS NULL))"


def merge_steps(spec: TableSpec, columns: Sequence[str], stage: str) -> list[Step]:
    """UPDATE the rows whose compared columns differ, then INSERT the rows whose key is absent."""
    t = spec.table
    on = " AND ".join(f"{t}.{key} = s.{key}" for key in spec.keys)
    compared = [c for c in columns if c not in spec.keys and c not in spec.bookkeeping and c not in spec.recomputed]
    updated = [c for c in columns if c not in spec.keys and c not in spec.recomputed]
    differs = " OR ".join(f"NOT {_same(f'{t}.{c}', f's.{c}')}" for c in compared) or "FALSE"
    column_list = ", ".join(columns)
    return [
        Step(f"{t}.update", f"UPDATE {t} SET {', '.join(f'{c} = s.{c}' for c in updated)} FROM {stage} AS s "
                            f"WHERE {on} AND ({differs})"),
        Step(f"{t}.insert", f"INSERT INTO {t} ({column_list}) SELECT {column_list} FROM {stage} AS s "
                            f"WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {on})"),
    ]


def stage_name(table: str) -> str:
    """Name of the temporary table holding a table's staged rows."""
    return f"{STAGE_PREFIX}{table}"


def load_steps(staged: Sequence[str], columns: Mapping[str, Sequence[str]] | None = None) -> list[Step]:
    """Every statement of a load, in order, for the tables present in `staged` (plus `supersessions`)."""
    columns = columns or table_columns()
    steps: list[Step] = []
    for table in LOAD_ORDER:
        if table not in staged:
            continue
        if table == "claim_lines" and "claims" in staged:
            # A reloaded claim's lines are exactly its staged lines: a corrected claim may have fewer.
            steps.append(Step("claim_lines.delete", (
                f"DELETE FROM claim_lines WHERE claim_id IN (SELECT claim_id FROM {stage_name('claims')}) "
                f"AND NOT EXISTS (SELECT 1 FROM {stage_name('claim_lines')} AS s "
                "WHERE s.claim_id = claim_lines.claim_id AND s.line_number = claim_lines.line_number)")))
        if table in DAY_REPLACED:
            steps.append(day_replace_step(TABLE_SPECS[table], DAY_REPLACED[table]))
        steps.extend(merge_steps(TABLE_SPECS[table], columns[table], stage_name(table)))
    if SUPERSESSIONS in staged:
        sup = stage_name(SUPERSESSIONS)
        replaced = f"SELECT claim_id FROM {sup} WHERE frequency_code = '7'"
        steps += [
            Step("claim_lines.delete", f"DELETE FROM claim_lines WHERE claim_id IN ({replaced})"),
            Step("claims.delete", f"DELETE FROM claims WHERE claim_id IN ({replaced})"),
            Step("claims.void", f"UPDATE claims SET is_voided = TRUE WHERE is_voided = FALSE AND claim_id IN "
                                f"(SELECT claim_id FROM {sup} WHERE frequency_code = '8')"),
        ]
    if "providers" in staged:
        steps.append(provider_rollup_step())
    return steps


def day_replace_step(spec: TableSpec, day_column: str) -> Step:
    """Delete the rows of the staged days whose key the stage no longer has (the merge then upserts the rest).

    Deleting only the rows that disappeared, instead of the whole day, keeps a re-run of an unchanged day at zero
    changes in the load report.
    """
    t, stage = spec.table, stage_name(spec.table)
    same_key = " AND ".join(f"s.{key} = {t}.{key}" for key in spec.keys)
    return Step(f"{t}.delete", (
        f"DELETE FROM {t} WHERE {day_column} IN (SELECT DISTINCT {day_column} FROM {stage}) "
        f"AND NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE {same_key})"))


def provider_rollup_step() -> Step:
    """Recompute every provider's claim count and service range over the warehouse's claims (any role, any line)."""
    roles = ["billing_npi", "rendering_npi", "attending_npi", "referring_npi", "facility_npi"]
    mentions = " UNION ".join(
        [f"SELECT {role} AS npi, claim_id, service_date_from AS d_from, "
         f"COALESCE(service_date_to, service_date_from) AS d_to FROM claims WHERE {role} IS NOT NULL"
         for role in roles]
        + ["SELECT l.rendering_npi AS npi, l.claim_id, c.service_date_from AS d_from, "
           "COALESCE(c.service_date_to, c.service_date_from) AS d_to FROM claim_lines AS l "
           "JOIN claims AS c ON c.claim_id = l.claim_id WHERE l.rendering_npi IS NOT NULL"]
    )
    rollup = (f"SELECT npi, COUNT(DISTINCT claim_id) AS claim_count, MIN(d_from) AS first_service_date, "
              f"MAX(d_to) AS last_service_date FROM ({mentions}) AS m GROUP BY npi")
    differs = " OR ".join(f"NOT {_same(f'providers.{c}', f'r.{c}')}"
                          for c in ("claim_count", "first_service_date", "last_service_date"))
    return Step("providers.rollup", (
        "UPDATE providers SET claim_count = r.claim_count, first_service_date = r.first_service_date, "
        f"last_service_date = r.last_service_date FROM ({rollup}) AS r WHERE providers.npi = r.npi AND ({differs})"))


def _literal(value: Any, dialect: str = "duckdb") -> str:
    """A SQL literal for a ledger value (ids, counts, dates, PHI-free messages), quoted by sqlglot for `dialect`.

    The dialect matters for strings: Redshift treats a backslash in a literal as an escape, DuckDB does not.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return exp.Literal.number(value).sql()
    if isinstance(value, datetime):
        return f"CAST({exp.Literal.string(value.replace(tzinfo=None).isoformat(sep=' ')).sql()} AS TIMESTAMP)"
    if isinstance(value, date):
        return f"CAST({exp.Literal.string(value.isoformat()).sql()} AS DATE)"
    return exp.Literal.string(str(value)).sql(dialect=dialect)


def batch_run_steps(run: BatchRun, dialect: str = "duckdb") -> list[Step]:
    """Upsert one batch_runs row: delete the run's row (if any), insert it again (both engines, one transaction)."""
    values = run.values()
    return [
        Step("batch_runs.delete", f"DELETE FROM batch_runs WHERE batch_run_id = {_literal(run.batch_run_id, dialect)}"),
        Step("batch_runs.insert", f"INSERT INTO batch_runs ({', '.join(values)}) "
                                  f"VALUES ({', '.join(_literal(v, dialect) for v in values.values())})"),
    ]


def redshift_copy_steps(staged: Mapping[str, str], iam_role_arn: str,
                        columns: Mapping[str, Sequence[str]] | None = None) -> list[Step]:
    """Temporary stage tables and `COPY ... FORMAT AS PARQUET` from S3; `staged` maps table -> S3 prefix."""
    columns = columns or table_columns()
    steps: list[Step] = []
    for table, prefix in staged.items():
        if not prefix.startswith("s3://"):
            msg = f"Redshift stage of table {table}: expected an s3:// prefix, found {prefix!r}"
            raise WarehouseLoadError(msg)
        stage = stage_name(table)
        if table == SUPERSESSIONS:
            create = f"CREATE TEMP TABLE {stage} (claim_id VARCHAR(64), frequency_code VARCHAR(1))"
            stage_columns: Sequence[str] = SUPERSESSION_COLUMNS
        else:
            create = f"CREATE TEMP TABLE {stage} (LIKE {table})"
            stage_columns = columns[table]
        steps += [
            Step(f"{table}.stage", create),
            Step(f"{table}.copy", f"COPY {stage} ({', '.join(stage_columns)}) FROM "
                                  f"{_literal(prefix.rstrip('/') + '/', 'redshift')} "
                                  f"IAM_ROLE {_literal(iam_role_arn, 'redshift')} FORMAT AS PARQUET"),
        ]
    return steps


def redshift_load_sql(staged: Mapping[str, str], iam_role_arn: str, run: BatchRun, *,
                      after: Sequence[Step] = ()) -> list[Step]:
    """Every statement of a Redshift load, to run as one Data API batch (one transaction, one session).

    `after` runs in the same transaction once the data and the batch_runs row are in (the batch passes the marts'
    rebuild), so readers see the new data and the marts computed from it together or not at all.
    """
    return [*redshift_copy_steps(staged, iam_role_arn), *load_steps(list(staged)), *batch_run_steps(run, 'redshift'),
            *after]


# ---------------------------------------------------------------------------------------------------------- DuckDB


def _parquet_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.parquet")) if directory.is_dir() else []


def connect_duckdb(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file, with the schema created when missing (every statement IF NOT EXISTS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    upgrade_duckdb(connection, [statement.duckdb_sql for statement in statements()])
    return connection


def _stage_duckdb(connection: duckdb.DuckDBPyConnection, table: str, directory: Path) -> None:
    stage = stage_name(table)
    files = _parquet_files(directory)
    if not files:
        msg = f"warehouse stage of table {table}: expected Parquet files under {directory}, found none"
        raise WarehouseLoadError(msg)
    listing = "[" + ", ".join(_literal(str(f)) for f in files) + "]"
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM read_parquet({listing})")


def load_duckdb(path: Path, staged: Mapping[str, Path], run: BatchRun | None = None) -> LoadReport:
    """Merge the staged Parquet directories (table -> directory) into the DuckDB file, in one transaction.

    When `run` is given its batch_runs row is written in the same transaction, so a succeeded run and its data
    appear together or not at all.
    """
    report = LoadReport()
    unknown = sorted(set(staged) - set(TABLE_SPECS) - {SUPERSESSIONS})
    if unknown:
        msg = f"warehouse load: expected staged tables among {[*LOAD_ORDER, SUPERSESSIONS]}, found {unknown}"
        raise WarehouseLoadError(msg)
    connection = connect_duckdb(path)
    try:
        for table, directory in staged.items():
            _stage_duckdb(connection, table, directory)
        steps = load_steps(list(staged)) + (batch_run_steps(run) if run is not None else [])
        connection.execute("BEGIN TRANSACTION")
        try:
            for step in steps:
                row = connection.execute(step.sql).fetchone()
                report.changed[step.name] = report.changed.get(step.name, 0) + (int(row[0]) if row else 0)
            connection.execute("COMMIT")
        except duckdb.Error as exc:
            connection.execute("ROLLBACK")
            msg = f"warehouse load into {path} failed at step {step.name}: {type(exc).__name__}"
            raise WarehouseLoadError(msg) from exc
    finally:
        connection.close()
    return report


def record_run_duckdb(path: Path, run: BatchRun) -> None:
    """Write (or overwrite) one batch_runs row, e.g. 'running' at the start or 'failed' after an error."""
    connection = connect_duckdb(path)
    try:
        connection.execute("BEGIN TRANSACTION")
        for step in batch_run_steps(run):
            connection.execute(step.sql)
        connection.execute("COMMIT")
    finally:
        connection.close()


def batch_runs_duckdb(path: Path, *, pipeline: str | None = "batch", limit: int = 20) -> list[BatchRun]:
    """The most recent batch_runs rows, newest first (what `claims batch status` prints); none without a warehouse."""
    if not path.exists():
        return []  # reading the ledger must not create an empty warehouse as a side effect
    connection = connect_duckdb(path)
    try:
        columns = table_columns()["batch_runs"]
        where = "WHERE pipeline = ?" if pipeline else ""
        params: list[Any] = [pipeline] if pipeline else []
        rows = connection.execute(
            f"SELECT {', '.join(columns)} FROM batch_runs {where} ORDER BY started_at DESC LIMIT {int(limit)}",
            params).fetchall()
    finally:
        connection.close()
    known = {f.name for f in fields(BatchRun)}
    return [BatchRun(**{c: v for c, v in zip(columns, row, strict=True) if c in known}) for row in rows]


# -------------------------------------------------------------------------------------------------------- Redshift


def execute_batch(client: RedshiftDataAPIServiceClient, target: RedshiftTarget, steps: Sequence[Step], *,
                  name: str, poll_seconds: float = 0.5, timeout_seconds: float = 1800.0,
                  sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> str:
    """Run the load's statements as one Data API batch (a single transaction) and wait until it FINISHED.

    A failed batch is rolled back by Redshift as a whole; the error names the batch and the statement id. Redshift's
    message on a failed COPY or merge names tables and columns, not values, so it is safe to include.
    """
    return execute_sql_batch(client, target, [step.sql for step in steps], name=name, error=WarehouseLoadError,
                             label="Redshift load", poll_seconds=poll_seconds, timeout_seconds=timeout_seconds,
                             sleep=sleep, clock=clock)
