"""Running warehouse SQL on Redshift through the Data API: the target, statement polling, one-transaction batches.

Why here and not in libs/deploy: the daily batch's load (libs.warehouse.load) and the deploy's DDL (libs.deploy)
both run SQL on the same cluster the same way. The warehouse owns that; deploy tooling builds on it, never the
other way round (libs/warehouse used to import libs/deploy/redshift, which imported libs/warehouse/dialect).

Why the Data API: the cluster sits in private subnets and neither the deployer nor an EMR step has a network path to
port 5439; the Data API is an HTTPS call authorised by IAM and the admin secret, and it is asynchronous, so every
statement is polled until it finishes. `batch_execute_statement` runs its statements in one transaction: a failed
statement rolls the whole batch back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

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


class RedshiftStatementError(RuntimeError):
    """A Data API statement or batch failed, was aborted or did not finish in time."""


@dataclass(frozen=True)
class RedshiftTarget:
    """Which cluster and database, and the secret the Data API authenticates with."""

    cluster_identifier: str
    database: str
    secret_arn: str


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


def execute_sql_batch(client: RedshiftDataAPIServiceClient, target: RedshiftTarget, sqls: Sequence[str], *,
                      name: str, error: type[Exception] = RedshiftStatementError, label: str = "Redshift batch",
                      poll_seconds: float = 0.5,
                      timeout_seconds: float = 1800.0, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> str:
    """Run the statements as one Data API batch (a single transaction) and wait until it FINISHED; returns its id.

    A failed batch is rolled back by Redshift as a whole; `error` names it (`label`, name, id) and the cluster.
    """
    if not sqls:
        msg = f"{label} {name}: expected at least one statement, found none"
        raise error(msg)
    response = client.batch_execute_statement(
        ClusterIdentifier=target.cluster_identifier, Database=target.database, SecretArn=target.secret_arn,
        Sqls=list(sqls), StatementName=name,
    )
    what = f"{label} {name} (id {response['Id']}) on cluster {target.cluster_identifier}"
    return wait_for_statement(client, response["Id"], what=what, error=error, poll_seconds=poll_seconds,
                              timeout_seconds=timeout_seconds, max_delay=15.0, sleep=sleep, clock=clock)
