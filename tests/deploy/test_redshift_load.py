"""The daily batch's Redshift load: one Data API batch on a moto server that stages, COPYs, merges, records the run and
rebuilds every mart last (each statement parsed back as Redshift SQL by sqlglot); missing settings are named."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from libs.analytics.marts import mart_names
from libs.batch.load_redshift import load_redshift, mart_steps, redshift_batch_sql
from libs.settings import Settings, WarehouseKind, WarehouseSettings
from libs.warehouse.load import BatchRun, WarehouseLoadError
from tests.deploy.conftest import REGION, Stack

RUN = BatchRun("batch-2026-10-30-x", "batch", "succeeded", started_at=datetime(2026, 10, 31, 2),
               run_date=date(2026, 10, 30), valid_rows=5)
STAGED = {table: f"s3a://lake/warehouse_stage/run/{table}"
          for table in ("claims", "claim_lines", "intake_daily", "field_quality", "quarantine_summary")}
ROLE = "arn:aws:iam::123456789012:role/copy"


def _settings(stack: Stack | None = None, **warehouse: str) -> Settings:
    values = {"kind": WarehouseKind.REDSHIFT, "redshift_cluster_id": stack.redshift_cluster if stack else "c",
              "redshift_secret_arn": stack.outputs["redshift_secret_arn"] if stack else "arn:secret",
              "redshift_copy_role_arn": ROLE, **warehouse}
    return Settings(warehouse=WarehouseSettings(**values),  # type: ignore[arg-type]
                    aws={"region": REGION, "endpoint_url": stack.endpoint if stack else None})


def test_the_marts_are_rebuilt_last_in_the_same_transaction_as_the_data() -> None:
    steps = redshift_batch_sql(STAGED, ROLE, RUN)
    names = [step.name for step in steps]

    rebuild = names[names.index("batch_runs.insert") + 1:]
    assert rebuild == [f"{mart}.{kind}" for mart in mart_names() for kind in ("drop", "create")]
    assert all("s3://lake/" in step.sql for step in steps if step.name.endswith(".copy"))  # s3a:// is Spark's


def test_every_mart_rebuild_is_redshift_sql_creating_the_mart_from_a_select() -> None:
    for step in mart_steps():
        parsed = sqlglot.parse_one(step.sql, read="redshift")
        mart = step.name.rsplit(".", 1)[0]
        if step.name.endswith(".drop"):
            assert isinstance(parsed, exp.Drop), step.name
            assert parsed.find(exp.Table).name == mart  # type: ignore[union-attr]
        else:
            assert isinstance(parsed, exp.Create), step.name
            assert parsed.this.name == mart
            assert isinstance(parsed.expression, exp.Query), step.name
            assert "AS DOUBLE)" not in step.sql  # Redshift spells it DOUBLE PRECISION


class BatchIds:
    """The moto client, noting the id of each batch it submits (moto has no ListStatements)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ids: list[str] = []

    def batch_execute_statement(self, **kwargs: Any) -> Any:
        response = self.client.batch_execute_statement(**kwargs)
        self.ids.append(response["Id"])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_the_load_runs_as_one_batch_on_the_cluster(stack: Stack) -> None:
    client = BatchIds(stack.client("redshift-data"))

    report = load_redshift(_settings(stack), STAGED, RUN, client=client)

    assert report.changed == {}
    (batch_id,) = client.ids
    described = client.describe_statement(Id=batch_id)
    queries = [sub["QueryString"] for sub in described["SubStatements"]]
    assert described["Status"] == "FINISHED"
    assert described["ClusterIdentifier"] == stack.redshift_cluster
    assert queries == [step.sql for step in redshift_batch_sql(STAGED, ROLE, RUN)]
    assert queries[-1].startswith("CREATE TABLE mart_data_quality AS ")


def test_missing_redshift_settings_are_named() -> None:
    with pytest.raises(WarehouseLoadError, match="found redshift_copy_role_arn missing"):
        load_redshift(_settings(redshift_copy_role_arn=""), STAGED, RUN)
