"""The warehouse DDL: one DuckDB-dialect source (schema.sql), transpiled to Redshift with sqlglot.

Why one source: the local warehouse (DuckDB) and the AWS warehouse (Redshift) must have the same tables and columns,
or the batch job that loads them works in one place and fails in the other. Writing the DDL twice invites drift, so
schema.sql is the only copy and this module derives the Redshift statements from it.

Two things the DuckDB dialect cannot carry are added here:

* declared VARCHAR widths: DuckDB ignores `VARCHAR(64)` and sqlglot's DuckDB reader drops the width (every string
  would become Redshift `VARCHAR(MAX)`, which wastes memory in every query), so the source is read with a DuckDB
  dialect that keeps widths;
* Redshift distribution and sort keys (`REDSHIFT_LAYOUT`): claims and their lines are distributed on claim_id so that
  the claim-to-line join never moves data between nodes; small dimension tables are copied to every node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

SCHEMA_PATH = Path(__file__).with_name("schema.sql")


class SchemaError(ValueError):
    """schema.sql breaks one of its rules (see the header of schema.sql)."""


class WarehouseDuckDB(DuckDB):
    """DuckDB, except that VARCHAR(n) / CHAR(n) keep their declared width through transpilation."""

    class Tokenizer(DuckDB.Tokenizer):
        KEYWORDS = {**DuckDB.Tokenizer.KEYWORDS, "VARCHAR": TokenType.VARCHAR, "CHAR": TokenType.CHAR}


class DistStyle(StrEnum):
    """Redshift distribution styles used by the warehouse."""

    KEY = "KEY"  # rows with the same distribution key live on the same node slice
    ALL = "ALL"  # a full copy on every node: small dimensions joined to everything
    EVEN = "EVEN"  # round-robin: append-only facts never joined on a key


@dataclass(frozen=True)
class RedshiftLayout:
    """How a table is distributed and sorted in Redshift."""

    diststyle: DistStyle
    distkey: str | None = None
    sortkey: tuple[str, ...] = field(default_factory=tuple)


REDSHIFT_LAYOUT: dict[str, RedshiftLayout] = {
    # Facts are queried by service period, and joined to their lines on claim_id.
    "claims": RedshiftLayout(DistStyle.KEY, distkey="claim_id", sortkey=("service_date_from", "claim_id")),
    "claim_lines": RedshiftLayout(DistStyle.KEY, distkey="claim_id", sortkey=("claim_id", "line_number")),
    "providers": RedshiftLayout(DistStyle.ALL, sortkey=("npi",)),
    "quality_metrics": RedshiftLayout(DistStyle.EVEN, sortkey=("recorded_at",)),
    "quarantine_summary": RedshiftLayout(DistStyle.ALL, sortkey=("summary_date",)),
    "batch_runs": RedshiftLayout(DistStyle.EVEN, sortkey=("started_at",)),
    "intake_daily": RedshiftLayout(DistStyle.ALL, sortkey=("intake_date",)),
    "field_quality": RedshiftLayout(DistStyle.ALL, sortkey=("intake_date", "source_format")),
    # Member months join claims on the member token; small dimensions and reference tables go to every node.
    "eligibility": RedshiftLayout(DistStyle.KEY, distkey="member_token", sortkey=("eligibility_month",)),
    "ref_procedures": RedshiftLayout(DistStyle.ALL, sortkey=("procedure_code",)),
    "ref_specialties": RedshiftLayout(DistStyle.ALL, sortkey=("taxonomy",)),
    "schema_migrations": RedshiftLayout(DistStyle.ALL, sortkey=("version",)),
}


@dataclass(frozen=True)
class DdlStatement:
    """One CREATE statement of the schema, in both dialects, with the digest of its Redshift text."""

    table: str
    duckdb_sql: str
    redshift_sql: str

    @property
    def digest(self) -> str:
        """sha256 of the Redshift statement: the deploy ledger compares it to decide whether the table changed."""
        return hashlib.sha256(self.redshift_sql.encode("utf-8")).hexdigest()


def load_schema(path: Path = SCHEMA_PATH) -> str:
    """The schema source text."""
    return path.read_text(encoding="utf-8")


def _parse(sql: str, source: str) -> list[exp.Create]:
    try:
        parsed = [statement for statement in sqlglot.parse(sql, read=WarehouseDuckDB) if statement is not None]
    except ParseError as error:
        msg = f"{source}: not valid DuckDB SQL: {error}"
        raise SchemaError(msg) from error
    creates: list[exp.Create] = []
    for index, statement in enumerate(parsed, start=1):
        if not isinstance(statement, exp.Create) or str(statement.args.get("kind", "")).upper() != "TABLE":
            msg = f"{source} statement {index}: expected CREATE TABLE IF NOT EXISTS, found {statement.key.upper()}"
            raise SchemaError(msg)
        if not statement.args.get("exists"):
            msg = (f"{source} statement {index} (table {_table_name(statement)}): expected CREATE TABLE IF NOT EXISTS "
                   "so that applying the schema twice changes nothing, found CREATE TABLE without IF NOT EXISTS")
            raise SchemaError(msg)
        creates.append(statement)
    return creates


def _table_name(create: exp.Create) -> str:
    table = create.find(exp.Table)
    return table.name if table is not None else "?"


def _column_names(create: exp.Create) -> list[str]:
    return [column.name for column in create.find_all(exp.ColumnDef)]


def _with_layout(create: exp.Create, layout: RedshiftLayout, source: str) -> exp.Create:
    table = _table_name(create)
    columns = set(_column_names(create))
    for column in (layout.distkey, *layout.sortkey):
        if column is not None and column not in columns:
            msg = f"{source}: REDSHIFT_LAYOUT of table {table} names column {column!r}, which the table does not have"
            raise SchemaError(msg)
    properties: list[exp.Expression] = [exp.DistStyleProperty(this=exp.var(layout.diststyle.value))]
    if layout.distkey is not None:
        properties.append(exp.DistKeyProperty(this=exp.to_identifier(layout.distkey)))
    if layout.sortkey:
        properties.append(exp.SortKeyProperty(this=[exp.to_identifier(c) for c in layout.sortkey], compound=True))
    redshift = create.copy()
    redshift.set("properties", exp.Properties(expressions=properties))
    return redshift


def statements(sql: str | None = None, *, source: str = "schema.sql") -> tuple[DdlStatement, ...]:
    """Every table of the schema as a DuckDB and a Redshift statement, in file order.

    Raises SchemaError if a statement is not `CREATE TABLE IF NOT EXISTS`, or if a table has no Redshift layout (every
    table must decide how it is distributed: the Redshift default, AUTO, changes under load).
    """
    creates = _parse(load_schema() if sql is None else sql, source)
    result: list[DdlStatement] = []
    for create in creates:
        table = _table_name(create)
        layout = REDSHIFT_LAYOUT.get(table)
        if layout is None:
            msg = f"{source}: table {table} has no entry in REDSHIFT_LAYOUT (libs/warehouse/dialect.py)"
            raise SchemaError(msg)
        result.append(DdlStatement(
            table=table,
            duckdb_sql=create.sql(dialect="duckdb", comments=False),
            redshift_sql=_with_layout(create, layout, source).sql(dialect="redshift", comments=False),
        ))
    return tuple(result)


@cache
def redshift_statements() -> tuple[DdlStatement, ...]:
    """The packaged schema's statements (parsed once per process)."""
    return statements()


def table_columns(sql: str | None = None) -> dict[str, list[str]]:
    """Column names per table, in declaration order (tests and loaders compare against it)."""
    return {_table_name(c): _column_names(c) for c in _parse(load_schema() if sql is None else sql, "schema.sql")}
