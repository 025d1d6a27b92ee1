"""Redshift DDL through the Data API: planning against the ledger, polling, failures."""

from __future__ import annotations

from typing import Any

import pytest

from libs.deploy.plan import Action
from libs.deploy.redshift import RedshiftDdlError, RedshiftTarget, execute_and_wait, plan_ddl
from libs.warehouse.dialect import redshift_statements

TARGET = RedshiftTarget("claims-dev", "claims", "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin")


class FakeDataApi:
    """Answers describe_statement with a scripted sequence of statuses."""

    def __init__(self, statuses: list[str], error: str | None = None) -> None:
        self.statuses = statuses
        self.error = error
        self.executed: list[dict[str, Any]] = []

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.executed.append(kwargs)
        return {"Id": "st-1"}

    def describe_statement(self, Id: str) -> dict[str, Any]:  # noqa: N803  (boto3 parameter name)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Id": Id, "Status": status, **({"Error": self.error} if self.error else {})}


def test_execute_polls_until_finished_with_backoff() -> None:
    api = FakeDataApi(["SUBMITTED", "PICKED", "STARTED", "FINISHED"])
    sleeps: list[float] = []

    statement_id = execute_and_wait(api, TARGET, "CREATE TABLE IF NOT EXISTS t (a INT)", name="claims-ddl-t",  # type: ignore[arg-type]
                                    poll_seconds=0.5, sleep=sleeps.append)

    assert statement_id == "st-1"
    assert sleeps == [0.5, 1.0, 2.0]
    assert api.executed == [{"ClusterIdentifier": "claims-dev", "Database": "claims", "SecretArn": TARGET.secret_arn,
                             "Sql": "CREATE TABLE IF NOT EXISTS t (a INT)", "StatementName": "claims-ddl-t"}]


def test_failed_statement_raises_with_name_id_and_redshift_error() -> None:
    api = FakeDataApi(["STARTED", "FAILED"], error='syntax error at or near "DISTKEY"')

    with pytest.raises(RedshiftDdlError, match=r"claims-ddl-claims \(id st-1\) on cluster claims-dev: FAILED: syntax"):
        execute_and_wait(api, TARGET, "CREATE ...", name="claims-ddl-claims", sleep=lambda _: None)  # type: ignore[arg-type]


def test_statement_that_never_finishes_times_out() -> None:
    api = FakeDataApi(["STARTED"])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(RedshiftDdlError, match=r"expected FINISHED within 30 s, still STARTED"):
        execute_and_wait(api, TARGET, "CREATE ...", name="x", timeout_seconds=30,  # type: ignore[arg-type]
                         sleep=sleep, clock=lambda: now[0])


def test_plan_creates_new_tables_and_skips_applied_ones() -> None:
    statements = redshift_statements()
    applied = {statements[0].table: statements[0].digest}

    changes = plan_ddl(statements, applied)

    assert changes[0].action is Action.UNCHANGED
    assert {c.action for c in changes[1:]} == {Action.CREATE}


def test_plan_blocks_a_changed_table_unless_the_migration_is_declared() -> None:
    statements = redshift_statements()
    applied = {s.table: s.digest for s in statements} | {"claims": "f" * 64}

    blocked = plan_ddl(statements, applied)
    migrated = plan_ddl(statements, applied, schema_migrated=True)

    assert [c.statement.table for c in blocked if c.action is Action.BLOCKED] == ["claims"]
    assert "ALTER migration" in next(c for c in blocked if c.action is Action.BLOCKED).plan_item().detail
    assert [c.statement.table for c in migrated if c.action is Action.UPDATE] == ["claims"]


class FakeBatchDataApi(FakeDataApi):
    """The same fake, answering batch_execute_statement as the warehouse load uses it."""

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.executed.append(kwargs)
        return {"Id": "batch-1"}


def test_warehouse_batch_runs_as_one_transaction_and_waits_for_it() -> None:
    from libs.warehouse.load import Step, execute_batch  # noqa: PLC0415

    api = FakeBatchDataApi(["STARTED", "FINISHED"])
    steps = [Step("claims.copy", "COPY claims_stage FROM 's3://b/p' FORMAT AS PARQUET"),
             Step("claims.merge", "SELECT 1")]

    assert execute_batch(api, TARGET, steps, name="claims-load", sleep=lambda _: None) == "batch-1"  # type: ignore[arg-type]
    assert api.executed[0]["Sqls"] == [step.sql for step in steps]


def test_a_failed_warehouse_batch_names_itself_and_its_id() -> None:
    from libs.warehouse.load import Step, WarehouseLoadError, execute_batch  # noqa: PLC0415

    api = FakeBatchDataApi(["FAILED"], error="column x does not exist")
    with pytest.raises(WarehouseLoadError, match=r"Redshift load claims-load \(id batch-1\) on cluster claims-dev: "
                                                 r"FAILED: column x does not exist"):
        execute_batch(api, TARGET, [Step("s", "SELECT 1")], name="claims-load", sleep=lambda _: None)  # type: ignore[arg-type]
