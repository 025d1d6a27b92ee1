"""The exporter's `claims_batch_*` series from Redshift's batch_runs ledger (AWS, where the batch's status file stays on
a core node): the newest finished run and the last success, through the Data API (a stand-in answering from a DuckDB
warehouse with real ledger rows), cached between scrapes, and kept when Redshift stops answering."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from libs.kafka.broker import free_port
from libs.monitoring.batch_ledger import LedgerBatchStatus, ledger_batch_status
from libs.monitoring.lag import PipelineLagCollector
from libs.settings import KafkaSettings, Settings, WarehouseKind, WarehouseSettings
from libs.warehouse.load import BatchRun, connect_duckdb, record_run_duckdb
from libs.warehouse.redshift import RedshiftTarget
from libs.warehouse.redshift_query import RedshiftQueryConnection
from tests.warehouse.redshift_data_fake import RedshiftDataFake

TARGET = RedshiftTarget("claims-dev", "claims", "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin")


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 2, 3, hour, minute)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """Feb 1 succeeded (02:00-02:10), Feb 2 failed (02:00-02:05 on the 3rd), a run for Feb 3 still going."""
    path = tmp_path / "warehouse.duckdb"
    connect_duckdb(path).close()
    for run in (
        BatchRun(batch_run_id="b1", pipeline="batch", status="succeeded", run_date=date(2026, 2, 1),
                 started_at=datetime(2026, 2, 2, 2, 0), finished_at=datetime(2026, 2, 2, 2, 10)),
        BatchRun(batch_run_id="b2", pipeline="batch", status="failed", run_date=date(2026, 2, 2),
                 started_at=_at(2), finished_at=_at(2, 5), error_message="expected ..."),
        BatchRun(batch_run_id="b3", pipeline="batch", status="running", run_date=date(2026, 2, 3), started_at=_at(3)),
        BatchRun(batch_run_id="s1", pipeline="streaming", status="succeeded", started_at=_at(4), finished_at=_at(4, 1)),
    ):
        record_run_duckdb(path, run)
    return path


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def test_the_batch_series_come_from_the_newest_finished_run_and_the_last_success(ledger: Path):
    fake = RedshiftDataFake(ledger)
    status = LedgerBatchStatus(lambda: RedshiftQueryConnection(fake.client, TARGET, sleep=lambda _s: None))
    registry = CollectorRegistry()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # no broker: batch series still come
    registry.register(PipelineLagCollector(settings, {"raw": "raw"}, [], status))

    assert registry.get_sample_value("claims_batch_last_run_success") == 0.0  # Feb 2 failed; Feb 3 still running
    assert registry.get_sample_value("claims_batch_last_run_timestamp_seconds") == _epoch(_at(2, 5))
    assert registry.get_sample_value("claims_batch_last_run_duration_seconds") == 300.0
    assert registry.get_sample_value("claims_batch_last_success_timestamp_seconds") == _epoch(
        datetime(2026, 2, 2, 2, 10))


def test_reads_are_cached_and_the_last_answer_outlives_a_failing_warehouse(ledger: Path):
    fake = RedshiftDataFake(ledger)
    now = [0.0]
    status = LedgerBatchStatus(lambda: RedshiftQueryConnection(fake.client, TARGET, sleep=lambda _s: None),
                               ttl_seconds=60, clock=lambda: now[0])
    first = status()
    statements = len([r for r in fake.requests if r["operation"] == "ExecuteStatement"])
    now[0] = 30.0
    assert status() == first
    assert len([r for r in fake.requests if r["operation"] == "ExecuteStatement"]) == statements  # cached
    now[0] = 90.0
    fake.fail_next = "ERROR: could not connect"
    assert status() == first  # kept, not emptied: the "late" alert keeps its clock
    assert first["last_run_succeeded"] is False


def test_an_empty_ledger_publishes_no_batch_series(tmp_path: Path):
    path = tmp_path / "empty.duckdb"
    connect_duckdb(path).close()
    fake = RedshiftDataFake(path)
    assert LedgerBatchStatus(lambda: RedshiftQueryConnection(fake.client, TARGET, sleep=lambda _s: None))() == {}


def test_the_ledger_is_the_source_only_with_a_redshift_warehouse():
    assert ledger_batch_status(Settings()) is None
    redshift = Settings(warehouse=WarehouseSettings(kind=WarehouseKind.REDSHIFT, redshift_cluster_id="c",
                                                    redshift_secret_arn="arn:aws:secretsmanager:x"))
    assert isinstance(ledger_batch_status(redshift), LedgerBatchStatus)
