"""Schema migrations: how a warehouse created by an earlier schema.sql reaches the current one, in place.

Why: schema.sql is `CREATE TABLE IF NOT EXISTS` only, so a table that already exists is never altered; a warehouse
from before a column was added would fail the next load (`INSERT ... (new_column)`). Each migration is written once in
the DuckDB dialect, like schema.sql, and transpiled to Redshift by sqlglot. `schema_migrations` records what ran.

Two starting points, one result:
* a new warehouse gets the current tables from schema.sql, so every migration is recorded as applied without running
  (baseline);
* an existing warehouse (its `claims` table was there before schema.sql ran) runs the migrations it has not recorded,
  in version order, in one transaction each.
New columns are appended at the end of schema.sql's table, where ALTER TABLE ... ADD COLUMN puts them, so both
starting points end with the same column order.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from libs.warehouse.dialect import WarehouseDuckDB


@dataclass(frozen=True)
class Migration:
    """One schema change: a version, what it does, and its statements in the DuckDB dialect."""

    version: int
    description: str
    statements: tuple[str, ...]

    def redshift_sql(self) -> list[str]:
        """The statements transpiled for Redshift (declared VARCHAR widths kept)."""
        return [sqlglot.transpile(sql, read=WarehouseDuckDB, write="redshift")[0] for sql in self.statements]

    def tables(self) -> frozenset[str]:
        """The tables the migration alters (read from its statements, so the list cannot drift from them)."""
        names: set[str] = set()
        for sql in self.statements:
            parsed = sqlglot.parse_one(sql, read=WarehouseDuckDB)
            table = parsed.find(exp.Table)
            if table is not None:
                names.add(table.name)
        return frozenset(names)

    def record_sql(self, dialect: str = "duckdb") -> str:
        """The `schema_migrations` row saying this version ran (string literals quoted for `dialect`)."""
        description = exp.Literal.string(self.description).sql(dialect=dialect)
        return (f"INSERT INTO schema_migrations (version, description) "  # noqa: S608  (an int and a quoted literal)
                f"VALUES ({int(self.version)}, {description})")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "claims: ingest_date, age_band, billing_specialty, em_level for the analytics marts", (
        "ALTER TABLE claims ADD COLUMN ingest_date DATE",
        "ALTER TABLE claims ADD COLUMN age_band VARCHAR(8)",
        "ALTER TABLE claims ADD COLUMN billing_specialty VARCHAR(64)",
        "ALTER TABLE claims ADD COLUMN em_level INTEGER",
    )),
)


def _tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    return {str(row[0]) for row in rows.fetchall()}


def _applied(connection: duckdb.DuckDBPyConnection) -> set[int]:
    return {int(row[0]) for row in connection.execute("SELECT version FROM schema_migrations").fetchall()}


def _record(connection: duckdb.DuckDBPyConnection, migration: Migration) -> None:
    connection.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                       [migration.version, migration.description])


def upgrade_duckdb(connection: duckdb.DuckDBPyConnection, create_schema: list[str]) -> list[int]:
    """Create missing tables (`create_schema`, schema.sql's statements) and migrate; returns the versions run.

    Whether the warehouse is new is decided by its `claims` table *before* schema.sql runs.
    """
    existing = "claims" in _tables(connection)
    for sql in create_schema:
        connection.execute(sql)
    applied = _applied(connection)
    ran: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        connection.execute("BEGIN TRANSACTION")
        try:
            if existing:
                for sql in migration.statements:
                    connection.execute(sql)
                ran.append(migration.version)
            _record(connection, migration)
            connection.execute("COMMIT")
        except duckdb.Error:
            connection.execute("ROLLBACK")
            raise
    return ran
