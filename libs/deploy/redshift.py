"""Apply the warehouse DDL to Redshift through the Redshift Data API.

Why the Data API: the cluster sits in private subnets and the deployer has no network path to port 5439. The target,
the statement states and the polling live in libs.warehouse.redshift (the daily batch's load uses them too); this
module adds the deploy's side: which tables' DDL to send, decided against the ledger.

Which statements run is decided against the deploy ledger (libs.deploy.state): a table whose Redshift definition
was applied before (same digest) is not sent again. A table whose definition *changed* is blocked: CREATE TABLE IF
NOT EXISTS would silently keep the old table, so a schema change needs an explicit migration first
(libs.deploy.redshift_migrations runs the warehouse's migrations and unblocks the tables they alter).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from libs.deploy.plan import Action, Component, PlanItem
from libs.warehouse.dialect import DdlStatement
from libs.warehouse.redshift import RedshiftTarget, wait_for_statement

__all__ = ["DdlChange", "RedshiftDdlError", "RedshiftTarget", "apply_ddl", "execute_and_wait", "plan_ddl"]

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


class RedshiftDdlError(RuntimeError):
    """A DDL statement failed, was aborted or did not finish in time."""


@dataclass(frozen=True)
class DdlChange:
    """One table's planned DDL."""

    statement: DdlStatement
    action: Action
    applied_digest: str | None

    def plan_item(self, statement_id: str | None = None) -> PlanItem:
        """The plan line: digests let an operator match a deploy with the ledger, the id a Data API query."""
        short = self.statement.digest[:12]
        before = (self.applied_digest or "")[:12]
        if self.action is Action.CREATE:
            detail = f"CREATE TABLE IF NOT EXISTS (definition {short})"
        elif self.action is Action.UPDATE:
            detail = f"definition changed {before} -> {short}; recorded as migrated"
        elif self.action is Action.BLOCKED:
            detail = (f"definition changed since the last deploy ({before} -> {short}) "
                      f"and CREATE TABLE IF NOT EXISTS will not alter the existing table: apply an ALTER "
                      "migration, then deploy with --schema-migrated")
        else:
            detail = f"definition {short} already applied"
        if statement_id:
            detail += f"; statement {statement_id} FINISHED"
        return PlanItem(Component.DDL, self.statement.table, self.action, detail)


def plan_ddl(statements: Sequence[DdlStatement], applied: Mapping[str, str], *,
             schema_migrated: bool = False, migrated_tables: Collection[str] = ()) -> list[DdlChange]:
    """Compare the schema with the ledger (table -> applied digest). Pure.

    `schema_migrated` is the operator's statement that changed tables were migrated by hand; `migrated_tables` are
    the tables this deploy's schema migrations alter (libs.deploy.redshift_migrations). Either way the changed
    definitions are re-sent (a no-op for existing tables) and recorded instead of blocking the deploy.
    """
    changes: list[DdlChange] = []
    for statement in statements:
        previous = applied.get(statement.table)
        if previous is None:
            action = Action.CREATE
        elif previous == statement.digest:
            action = Action.UNCHANGED
        else:
            migrated = schema_migrated or statement.table in migrated_tables
            action = Action.UPDATE if migrated else Action.BLOCKED
        changes.append(DdlChange(statement=statement, action=action, applied_digest=previous))
    return changes


def execute_and_wait(client: RedshiftDataAPIServiceClient, target: RedshiftTarget, sql: str, *, name: str,
                     poll_seconds: float = 0.25, timeout_seconds: float = 300.0,
                     sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> str:
    """Run one statement and wait for FINISHED; returns the statement id.

    Polls describe_statement with a capped exponential backoff. FAILED, ABORTED or a timeout raise RedshiftDdlError
    naming the statement and its id (DDL errors name objects, not data, so Redshift's message is safe to include).
    """
    response = client.execute_statement(
        ClusterIdentifier=target.cluster_identifier, Database=target.database, SecretArn=target.secret_arn,
        Sql=sql, StatementName=name,
    )
    what = f"Redshift statement {name} (id {response['Id']}) on cluster {target.cluster_identifier}"
    return wait_for_statement(client, response["Id"], what=what, error=RedshiftDdlError, poll_seconds=poll_seconds,
                              timeout_seconds=timeout_seconds, sleep=sleep, clock=clock)


def apply_ddl(client: RedshiftDataAPIServiceClient, target: RedshiftTarget, changes: Sequence[DdlChange], *,
              poll_seconds: float = 0.25, timeout_seconds: float = 300.0) -> dict[str, str]:
    """Execute the CREATE/UPDATE changes in schema order; returns table -> statement id."""
    executed: dict[str, str] = {}
    for change in changes:
        if change.action not in (Action.CREATE, Action.UPDATE):
            continue
        executed[change.statement.table] = execute_and_wait(
            client, target, change.statement.redshift_sql, name=f"claims-ddl-{change.statement.table}",
            poll_seconds=poll_seconds, timeout_seconds=timeout_seconds,
        )
    return executed
