"""Warehouse schema migrations on Redshift: which run and which are only recorded (pure planning against the
ledger), the SQL Redshift gets (parsed back with sqlglot), one Data API batch on a moto server, and a deploy whose
ledger predates a migration running it instead of being blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from libs.deploy.deployer import deploy
from libs.deploy.emr_steps import JobKind
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Action, Component
from libs.deploy.redshift import plan_ddl
from libs.deploy.redshift_migrations import (
    MigrationMode,
    apply_migrations,
    migrated_tables,
    plan_migrations,
)
from libs.deploy.state import DeployState, state_key
from libs.warehouse.dialect import redshift_statements
from libs.warehouse.migrations import MIGRATIONS, Migration
from libs.warehouse.redshift import RedshiftTarget
from tests.deploy.conftest import Stack
from tests.deploy.test_deploy_e2e import _options

CURRENT = {statement.table: statement.digest for statement in redshift_statements()}
OLD_CLAIMS = {**CURRENT, "claims": "0" * 64}  # the claims table was created from a definition before migration 1
EXTRA = Migration(2, "providers: npi_source", ("ALTER TABLE providers ADD COLUMN npi_source VARCHAR(16)",))


def test_a_new_warehouse_records_every_migration_without_running_it() -> None:
    changes = plan_migrations(redshift_statements(), {}, [])

    assert [(c.migration.version, c.mode) for c in changes] == [(m.version, MigrationMode.BASELINE)
                                                                 for m in MIGRATIONS]
    assert all(sql.startswith("INSERT INTO schema_migrations") for c in changes for sql in c.sql())


def test_a_table_created_before_the_migration_runs_it_and_its_new_definition_is_not_blocked() -> None:
    changes = plan_migrations(redshift_statements(), OLD_CLAIMS, [])
    ddl = plan_ddl(redshift_statements(), OLD_CLAIMS, migrated_tables=migrated_tables(changes))

    assert [(c.migration.version, c.mode) for c in changes] == [(1, MigrationMode.RUN)]
    assert changes[0].sql()[:4] == MIGRATIONS[0].redshift_sql()
    assert {c.statement.table: c.action for c in ddl}["claims"] is Action.UPDATE
    assert {c.action for c in ddl if c.statement.table != "claims"} == {Action.UNCHANGED}


def test_recorded_versions_are_skipped_and_the_changed_table_stays_blocked_without_a_migration() -> None:
    changes = plan_migrations(redshift_statements(), OLD_CLAIMS, [1])
    ddl = plan_ddl(redshift_statements(), OLD_CLAIMS, migrated_tables=migrated_tables(changes))

    assert changes == []
    assert {c.statement.table: c.action for c in ddl}["claims"] is Action.BLOCKED


def test_a_table_already_current_or_migrated_by_hand_is_only_recorded() -> None:
    current = plan_migrations(redshift_statements(), CURRENT, [])
    by_hand = plan_migrations(redshift_statements(), OLD_CLAIMS, [], schema_migrated=True)

    assert {c.mode for c in current} == {c.mode for c in by_hand} == {MigrationMode.BASELINE}


def test_only_the_migrations_whose_tables_are_stale_run() -> None:
    changes = plan_migrations(redshift_statements(), OLD_CLAIMS, [], migrations=(*MIGRATIONS, EXTRA))

    assert [(c.migration.version, c.mode) for c in changes] == [(1, MigrationMode.RUN), (2, MigrationMode.BASELINE)]
    assert migrated_tables(changes) == frozenset({"claims"})


def test_the_migration_sql_is_redshift_sql() -> None:
    for migration in (*MIGRATIONS, EXTRA):
        assert migration.tables() <= set(CURRENT)
        for sql in migration.redshift_sql():
            assert isinstance(sqlglot.parse_one(sql, read="redshift"), exp.Alter), sql
        record = sqlglot.parse_one(migration.record_sql("redshift"), read="redshift")
        assert isinstance(record, exp.Insert)
        assert record.find(exp.Table).name == "schema_migrations"  # type: ignore[union-attr]
    assert "VARCHAR(8)" in " ".join(MIGRATIONS[0].redshift_sql())


def test_the_record_quotes_a_description_for_redshift() -> None:
    quoted = Migration(3, r"it's a C:\path", ()).record_sql("redshift")

    strings = [lit.this for lit in sqlglot.parse_one(quoted, read="redshift").find_all(exp.Literal) if lit.is_string]
    assert strings == [r"it's a C:\path"]


def test_migrations_run_as_one_data_api_batch(stack: Stack) -> None:
    target = RedshiftTarget(stack.redshift_cluster, "claims", stack.outputs["redshift_secret_arn"])
    changes = plan_migrations(redshift_statements(), OLD_CLAIMS, [])
    client = stack.client("redshift-data")

    batch_id = apply_migrations(client, target, changes, poll_seconds=0.001)

    assert batch_id is not None
    described = client.describe_statement(Id=batch_id)
    assert described["Status"] == "FINISHED"
    assert [sub["QueryString"] for sub in described["SubStatements"]] == [*MIGRATIONS[0].redshift_sql(),
                                                                          MIGRATIONS[0].record_sql("redshift")]
    assert apply_migrations(client, target, [], poll_seconds=0.001) is None


@pytest.mark.slow
def test_a_deploy_over_a_ledger_from_before_the_migration_runs_it_and_records_it(
    stack: Stack, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path], spark_jars: Path,
) -> None:
    outputs = read_outputs_file(stack.outputs_file)
    first = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))
    assert {item.name: item.action for item in first.by_component(Component.MIGRATION)} == {"v1": Action.CREATE}
    s3 = stack.client("s3")
    ledger = DeployState.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    assert ledger.migrations == [1]
    # As a ledger written before migrations existed: the claims table from the older definition, nothing recorded.
    old = ledger.model_dump(mode="json", exclude={"migrations"})
    old["ddl"]["claims"] = "0" * 64
    s3.put_object(Bucket=stack.bucket, Key=state_key("dev"), Body=DeployState.model_validate(old).model_dump_json(
        exclude={"migrations"}).encode())

    second = deploy(outputs, _options(prebuilt_wheel_dir, job_scripts, spark_jars))

    (item,) = second.by_component(Component.MIGRATION)
    assert (item.name, item.action) == ("v1", Action.UPDATE)
    assert "FINISHED" in item.detail
    assert {i.name: i.action for i in second.by_component(Component.DDL)}["claims"] is Action.UPDATE
    batch_id = item.detail.rsplit("batch ", 1)[1].split()[0]
    queries = [sub["QueryString"] for sub in stack.client("redshift-data").describe_statement(Id=batch_id)[
        "SubStatements"]]
    assert queries[:-1] == MIGRATIONS[0].redshift_sql()
    after = DeployState.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=state_key("dev"))["Body"].read())
    assert after.migrations == [1]
    assert after.ddl["claims"] == CURRENT["claims"]
