"""The marts: one SQL source (sql/marts.sql, DuckDB dialect), rebuilt in DuckDB, transpiled for Redshift and Spark.

Why one source: the local warehouse, the Redshift warehouse and the bench's Spark run must compute the same figures;
sqlglot carries each SELECT to the other dialects, and tests parse the Redshift text back. A mart is a table rebuilt
from the warehouse by every batch run (after the load), never updated in place, so re-running a day gives the same
marts: the idempotence comes from recomputation, not from merge keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import sqlglot

from libs.warehouse.dialect import WarehouseDuckDB

MARTS_PATH = Path(__file__).with_name("sql") / "marts.sql"
_HEADER = re.compile(r"^-- mart: (\w+)\s*$", re.MULTILINE)


class MartError(ValueError):
    """sql/marts.sql breaks its rules (a statement without a `-- mart:` name, or not a SELECT)."""


@dataclass(frozen=True)
class Mart:
    """One mart: its table name and its SELECT in the DuckDB dialect."""

    name: str
    select_sql: str

    def sql(self, dialect: str) -> str:
        """The SELECT in `dialect` ('duckdb', 'redshift', 'spark')."""
        return sqlglot.transpile(self.select_sql, read=WarehouseDuckDB, write=dialect)[0]

    def redshift_rebuild(self) -> list[str]:
        """Redshift has no CREATE OR REPLACE TABLE: drop, then create from the SELECT (one transaction in a batch)."""
        return [f"DROP TABLE IF EXISTS {self.name}", f"CREATE TABLE {self.name} AS {self.sql('redshift')}"]


@cache
def marts(path: Path = MARTS_PATH) -> tuple[Mart, ...]:
    """Every mart of the SQL source, in file order."""
    text = path.read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    found: list[Mart] = []
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = body.strip().rstrip(";").strip()
        parsed = sqlglot.parse_one(statement, read=WarehouseDuckDB)
        if not isinstance(parsed, sqlglot.exp.Query):
            msg = f"{path.name} mart {name}: expected a SELECT (or WITH ... SELECT), found {parsed.key.upper()}"
            raise MartError(msg)
        found.append(Mart(name, statement))
    if not found:
        msg = f"{path.name}: expected statements headed by '-- mart: <name>', found none"
        raise MartError(msg)
    return tuple(found)


def mart_names() -> tuple[str, ...]:
    """The mart table names."""
    return tuple(mart.name for mart in marts())


def redshift_rebuild_sql() -> list[tuple[str, str]]:
    """(mart name, statement) for rebuilding every mart on Redshift, in file order (run in one transaction)."""
    return [(mart.name, sql) for mart in marts() for sql in mart.redshift_rebuild()]


def rebuild_marts(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Recompute every mart table in one transaction; returns rows per mart."""
    counts: dict[str, int] = {}
    connection.execute("BEGIN TRANSACTION")
    try:
        for mart in marts():
            connection.execute(f"CREATE OR REPLACE TABLE {mart.name} AS {mart.select_sql}")
            row = connection.execute(f"SELECT COUNT(*) FROM {mart.name}").fetchone()  # noqa: S608  (a mart name)
            counts[mart.name] = int(row[0]) if row else 0
        connection.execute("COMMIT")
    except duckdb.Error:
        connection.execute("ROLLBACK")
        raise
    return counts


def rebuild_marts_duckdb(path: Path) -> dict[str, int]:
    """Open the warehouse file (creating and migrating its schema) and rebuild the marts."""
    from libs.warehouse.load import connect_duckdb  # noqa: PLC0415  (load imports the batch-side helpers)

    connection = connect_duckdb(path)
    try:
        return rebuild_marts(connection)
    finally:
        connection.close()
