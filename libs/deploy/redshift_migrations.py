"""Warehouse schema migrations on Redshift, decided against the deploy ledger and run in one Data API batch.

Why: the Redshift DDL is `CREATE TABLE IF NOT EXISTS`, so a table created by an earlier schema keeps its old columns
and the next COPY into it fails. libs/warehouse/migrations.py holds each change once (DuckDB dialect, transpiled by
sqlglot); DuckDB decides locally which ones run, and this module makes the same decision for Redshift from the
ledger (libs.deploy.state), which knows each table's applied definition and which migration versions were recorded:

* a migration whose tables were never created, or were created from the current definition already, is only
  recorded (baseline: the CREATE gave those columns, an ALTER would fail);
* a migration whose tables were created from an older definition runs (ALTER TABLE ... in one transaction), and
  those tables' new definitions are then recorded instead of blocking the deploy;
* `--schema-migrated` (the operator ran the ALTERs by hand) turns the runs into baselines.

Either way a `schema_migrations` row is written on Redshift too, so both engines keep the same record.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from libs.deploy.plan import Action, Component, PlanItem
from libs.deploy.redshift import RedshiftDdlError
from libs.warehouse.dialect import DdlStatement
from libs.warehouse.migrations import MIGRATIONS, Migration
from libs.warehouse.redshift import RedshiftTarget, execute_sql_batch

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

BATCH_NAME = "claims-migrations"


class MigrationMode(StrEnum):
    """What a deploy does with a migration the ledger has not recorded."""

    RUN = "run"  # the tables predate the change: ALTER them, then record the version
    BASELINE = "baseline"  # the tables already have the change (new, or migrated by hand): record the version only


@dataclass(frozen=True)
class MigrationChange:
    """One pending migration and what the deploy does with it."""

    migration: Migration
    mode: MigrationMode

    def sql(self) -> list[str]:
        """The Redshift statements: the ALTERs when it runs, then its schema_migrations row."""
        alters = self.migration.redshift_sql() if self.mode is MigrationMode.RUN else []
        return [*alters, self.migration.record_sql("redshift")]

    def plan_item(self, statement_id: str | None = None) -> PlanItem:
        """The plan line: which version, what it alters, and the Data API batch id once it ran."""
        tables = ", ".join(sorted(self.migration.tables()))
        if self.mode is MigrationMode.RUN:
            detail = (f"{len(self.migration.statements)} ALTER statement(s) on {tables}: "
                      f"{self.migration.description}")
            action = Action.UPDATE
        else:
            detail = f"recorded as applied ({tables} already current): {self.migration.description}"
            action = Action.CREATE
        if statement_id:
            detail += f"; batch {statement_id} FINISHED"
        return PlanItem(Component.MIGRATION, f"v{self.migration.version}", action, detail)


def plan_migrations(statements: Sequence[DdlStatement], applied_ddl: Mapping[str, str],
                    applied_versions: Collection[int], *, schema_migrated: bool = False,
                    migrations: Sequence[Migration] = MIGRATIONS) -> list[MigrationChange]:
    """The migrations the ledger has not recorded, in version order, each to run or to record. Pure."""
    current = {statement.table: statement.digest for statement in statements}
    changes: list[MigrationChange] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in applied_versions:
            continue
        stale = [table for table in migration.tables()
                 if applied_ddl.get(table) not in (None, current.get(table))]
        mode = MigrationMode.RUN if stale and not schema_migrated else MigrationMode.BASELINE
        changes.append(MigrationChange(migration, mode))
    return changes


def migrated_tables(changes: Sequence[MigrationChange]) -> frozenset[str]:
    """The tables the planned migrations alter: their changed definitions are migrated, not blocked."""
    return frozenset(table for change in changes if change.mode is MigrationMode.RUN
                     for table in change.migration.tables())


def apply_migrations(client: RedshiftDataAPIServiceClient, target: RedshiftTarget,
                     changes: Sequence[MigrationChange], *, poll_seconds: float = 0.25,
                     timeout_seconds: float = 300.0) -> str | None:
    """Run every planned migration (and its record) as one Data API batch; returns the batch id, None if none.

    One transaction: a failed ALTER leaves neither columns nor records behind, and the deploy stops before the
    ledger says otherwise. Runs after the DDL, which creates schema_migrations on a new warehouse.
    """
    sqls = [sql for change in changes for sql in change.sql()]
    if not sqls:
        return None
    return execute_sql_batch(client, target, sqls, name=BATCH_NAME, error=RedshiftDdlError,
                             label="Redshift migrations", poll_seconds=poll_seconds,
                             timeout_seconds=timeout_seconds)
