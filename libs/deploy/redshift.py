"""Apply the warehouse DDL to Redshift through the Redshift Data API.

Why the Data API: the cluster sits in private subnets and the deployer has no network path to port 5439; the Data
API is an HTTPS control-plane call authorised by IAM and the admin secret in Secrets Manager, and it is asynchronous,
so every statement is polled until it finishes.

Which statements run is decided against the deploy ledger (libs.deploy.state): a table whose Redshift definition
was applied before (same digest) is not sent again. A table whose definition *changed* is blocked: CREATE TABLE IF
NOT EXISTS would silently keep the old table, so a schema change needs an explicit migration first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from libs.deploy.plan import Action, Component, PlanItem
from libs.warehouse.dialect import DdlStatement

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


class StatementStatus(StrEnum):
    """Redshift Data API statement states."""

    SUBMITTED = "SUBMITTED"
    PICKED = "PICKED"
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    ALL = "ALL"


TERMINAL = frozenset({StatementStatus.FINISHED, StatementStatus.FAILED, StatementStatus.ABORTED})


class RedshiftDdlError(RuntimeError):
    """A DDL statement failed, was aborted or did not finish in time."""


@dataclass(frozen=True)
class RedshiftTarget:
    """Which cluster and database, and the secret the Data API authenticates with."""

    cluster_identifier: str
    database: str
    secret_arn: str


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
             schema_migrated: bool = False) -> list[DdlChange]:
    """Compare the schema with the ledger (table -> applied digest). Pure.

    `schema_migrated` is the operator's statement that changed tables were migrated by hand: the changed definitions
    are then re-sent (a no-op for existing tables) and recorded.
    """
    changes: list[DdlChange] = []
    for statement in statements:
        previous = applied.get(statement.table)
        if previous is None:
            action = Action.CREATE
        elif previous == statement.digest:
            action = Action.UNCHANGED
        else:
            action = Action.UPDATE if schema_migrated else Action.BLOCKED
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


def wait_for_statement(client: RedshiftDataAPIServiceClient, statement_id: str, *, what: str,
                       error: type[Exception], poll_seconds: float, timeout_seconds: float,
                       max_delay: float = 10.0, sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> str:
    """Poll a Data API statement until FINISHED (capped exponential backoff); returns its id.

    FAILED, ABORTED or the timeout raise `error` with `what` (which names the statement, its id and the cluster)
    and Redshift's message, which names objects, never data.
    """
    deadline = clock() + timeout_seconds
    delay = poll_seconds
    while True:
        described = client.describe_statement(Id=statement_id)
        status = StatementStatus(described["Status"])
        if status is StatementStatus.FINISHED:
            return statement_id
        if status in TERMINAL:
            raise error(f"{what}: {status}: {described.get('Error', 'no error message')}")
        if clock() >= deadline:
            raise error(f"{what}: expected FINISHED within {timeout_seconds:.0f} s, still {status}")
        sleep(delay)
        delay = min(delay * 2, max_delay)


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
