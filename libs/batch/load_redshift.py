"""The daily batch's Redshift load: COPY the staged Parquet, merge, record the run and rebuild the marts, all in
one Data API batch.

Why one batch: `batch_execute_statement` is one transaction, so analysts (and the API) see the day's rows, its
batch_runs row and the marts recomputed from them together, or none of it after a failure. The marts are the same
SELECTs the local DuckDB warehouse rebuilds (libs/analytics/sql/marts.sql), transpiled by sqlglot; Redshift has no
CREATE OR REPLACE TABLE, so each is dropped and re-created from its SELECT.

The schema itself (tables and migrations) is the deploy's job (libs.deploy.redshift, redshift_migrations): a load
into a warehouse the deploy has not migrated fails at its first COPY, naming the table and column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from libs.analytics.marts import redshift_rebuild_sql
from libs.settings import Settings
from libs.warehouse import load
from libs.warehouse.redshift import RedshiftTarget

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


def mart_steps() -> list[load.Step]:
    """Drop and re-create every mart from the warehouse tables (named `<mart>.drop` / `<mart>.create`)."""
    steps: list[load.Step] = []
    for name, sql in redshift_rebuild_sql():
        kind = "drop" if sql.startswith("DROP") else "create"
        steps.append(load.Step(f"{name}.{kind}", sql))
    return steps


def redshift_batch_sql(staged: Mapping[str, str], iam_role_arn: str, run: load.BatchRun) -> list[load.Step]:
    """Every statement of the batch's Redshift load: stage, COPY, merge, batch_runs row, marts."""
    s3_staged = {table: location.replace("s3a://", "s3://", 1) for table, location in staged.items()}
    return load.redshift_load_sql(s3_staged, iam_role_arn, run, after=mart_steps())


def redshift_target(settings: Settings) -> tuple[RedshiftTarget, str]:
    """The cluster, database and secret of the settings, and the COPY role; WarehouseLoadError names what is missing."""
    warehouse = settings.warehouse
    missing = [name for name in ("redshift_cluster_id", "redshift_secret_arn", "redshift_copy_role_arn")
               if not getattr(warehouse, name)]
    if missing:
        msg = (f"Redshift warehouse: expected warehouse.redshift_cluster_id, redshift_secret_arn and "
               f"redshift_copy_role_arn in the settings, found {', '.join(missing)} missing")
        raise load.WarehouseLoadError(msg)
    target = RedshiftTarget(str(warehouse.redshift_cluster_id), warehouse.redshift_database,
                            str(warehouse.redshift_secret_arn))
    return target, str(warehouse.redshift_copy_role_arn)


def load_redshift(settings: Settings, staged: Mapping[str, str], run: load.BatchRun, *,
                  client: RedshiftDataAPIServiceClient | None = None) -> load.LoadReport:
    """Run the load as one Data API batch and wait for it; the report is empty (a batch gives no row counts)."""
    target, role = redshift_target(settings)
    if client is None:
        import boto3  # noqa: PLC0415  (only the Redshift path needs boto3 at run time)

        client = boto3.client("redshift-data", region_name=settings.aws.region,
                              endpoint_url=settings.aws.endpoint_url)
    load.execute_batch(client, target, redshift_batch_sql(staged, role, run), name=f"claims-{run.batch_run_id}")
    return load.LoadReport()
