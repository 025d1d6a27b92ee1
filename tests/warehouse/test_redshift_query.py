"""The analytics query functions on Redshift (through the Data API) answer exactly what they answer on DuckDB.

Every query function the CLI and the API use runs twice over one generated warehouse: on the DuckDB file, and through
RedshiftQueryConnection against a Data API stand-in (tests/warehouse/redshift_data_fake.py) that runs the transpiled
Redshift statement on the same file. The pages must be equal, row for row and type for type.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from libs.analytics import queries
from libs.analytics.marts import rebuild_marts, rebuild_marts_duckdb
from libs.api.sample_warehouse import SampleWarehouse, build_sample_warehouse
from libs.api.warehouse import recent_batch_runs
from libs.warehouse.load import connect_duckdb
from libs.warehouse.redshift import RedshiftTarget
from libs.warehouse.redshift_query import (
    RedshiftMissingTableError,
    RedshiftQueryConnection,
    RedshiftQueryError,
    redshift_statement,
)
from tests.analytics.test_marts import fill_hand_warehouse
from tests.warehouse.redshift_data_fake import RedshiftDataFake

TARGET = RedshiftTarget("claims-dev", "claims", "arn:aws:secretsmanager:us-east-1:123456789012:secret:claims-admin")
QUERY_FUNCTIONS: list[Callable[..., queries.Page[Any]]] = [
    queries.claims_summary, queries.billing_providers, queries.quality_by_day, queries.fraud_alerts_by_rule,
    queries.daily_kpis, queries.pmpm, queries.top_diagnoses, queries.top_procedures, queries.provider_profiles,
    queries.quarantine_trend, queries.data_quality,
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWarehouse:
    """Generated claims over four intake days (every API table; the marts built from them)."""
    built = build_sample_warehouse(tmp_path_factory.mktemp("redshift") / "warehouse.duckdb", count=3000, days=4)
    rebuild_marts_duckdb(built.path)
    return built


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/analytics' hand-computed warehouse: claim lines, eligibility and field quality the sample lacks."""
    path = tmp_path_factory.mktemp("redshift-hand") / "warehouse.duckdb"
    connection = connect_duckdb(path)
    fill_hand_warehouse(connection)
    rebuild_marts(connection)
    connection.close()
    return path


@pytest.fixture
def fake(sample: SampleWarehouse) -> RedshiftDataFake:
    return RedshiftDataFake(sample.path, page_size=7)


@pytest.fixture
def duck(sample: SampleWarehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(sample.path), read_only=True)
    yield connection
    connection.close()


def _redshift(fake: RedshiftDataFake, **kwargs: Any) -> RedshiftQueryConnection:
    return RedshiftQueryConnection(fake.client, TARGET, sleep=lambda _seconds: None, **kwargs)


def _filters(function: Callable[..., Any], sample: SampleWarehouse) -> dict[str, Any]:
    """Every filter a function takes, set to a value that keeps some rows (so a wrong binding shows)."""
    chosen: dict[str, Any] = {"date_from": sample.first_day, "date_to": sample.last_day,
                              "month_from": sample.first_day.replace(day=1), "month_to": sample.last_day,
                              "month": sample.last_day.replace(day=1), "source_format": "x12-837p", "limit": 50}
    return {name: chosen[name] for name in inspect.signature(function).parameters if name in chosen}


@pytest.mark.parametrize("function", QUERY_FUNCTIONS, ids=lambda function: function.__name__)
def test_every_query_answers_the_same_on_redshift_and_duckdb(function, sample, hand):
    answered = 0
    for path, filters in ((sample.path, _filters(function, sample)), (hand, {})):
        duck = duckdb.connect(str(path), read_only=True)
        try:
            for arguments in ({}, filters):
                on_duckdb = function(duck, **arguments)
                on_redshift = function(_redshift(RedshiftDataFake(path, page_size=3)), **arguments)
                assert on_redshift == on_duckdb, f"{function.__name__}({arguments}) on {path.parent.name}"
                answered += len(on_duckdb.rows)
        finally:
            duck.close()
    assert answered, f"{function.__name__} returned no rows on either warehouse: the comparison shows nothing"


def test_pages_follow_next_tokens_and_walk_every_row_once(sample, fake, duck):
    walked, offset = [], 0
    while True:
        page = queries.claims_summary(_redshift(fake), limit=10, offset=offset)
        walked += page.rows
        if not page.has_more:
            break
        offset += 10
    assert walked == queries.claims_summary(duck, limit=queries.MAX_LIMIT).rows
    assert any(request.get("NextToken") for request in fake.requests)  # results came in several Data API pages


def test_values_are_bound_as_parameters_never_written_into_the_sql(fake):
    hostile = "P1' OR '1'='1"
    page = queries.claims_summary(_redshift(fake), payer_id=hostile, date_from=date(2026, 1, 1))
    assert page.rows == []
    (execute,) = [request for request in fake.requests if request["operation"] == "ExecuteStatement"]
    assert hostile not in execute["Sql"]
    assert "2026-01-01" not in execute["Sql"]
    assert {"name": "p1", "value": "2026-01-01"} in execute["Parameters"]
    assert {"name": "p2", "value": hostile} in execute["Parameters"]
    assert (execute["ClusterIdentifier"], execute["Database"], execute["SecretArn"]) == (
        TARGET.cluster_identifier, TARGET.database, TARGET.secret_arn)


def test_statement_text_names_parameters_in_order_and_casts_dates():
    text, bound = redshift_statement("SELECT a FROM t WHERE d >= ? AND s = ? ORDER BY a LIMIT ? OFFSET ?",
                                     [date(2026, 2, 1), "x12-837p", 11, 0])
    assert text == "SELECT a FROM t WHERE d >= CAST(:p1 AS DATE) AND s = :p2 ORDER BY a LIMIT 11 OFFSET 0"
    assert bound == [{"name": "p1", "value": "2026-02-01"}, {"name": "p2", "value": "x12-837p"}]
    with pytest.raises(ValueError, match="expected 2 parameters"):
        redshift_statement("SELECT 1 WHERE ? = ?", ["a"])


def test_a_table_the_batch_has_not_built_says_run_the_batch(tmp_path: Path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    fake = RedshiftDataFake(empty)
    with pytest.raises(RedshiftMissingTableError, match="no table claims"):
        _redshift(fake).execute("SELECT COUNT(*) FROM claims")
    with pytest.raises(queries.AnalyticsError, match="run the daily batch"):
        queries.daily_kpis(_redshift(fake))


def test_a_failed_or_slow_statement_names_the_cluster(fake):
    fake.fail_next = "ERROR: permission denied for schema public"
    with pytest.raises(RedshiftQueryError, match=r"claims-dev.*permission denied"):
        queries.daily_kpis(_redshift(fake))
    fake.running = True
    ticks = iter(range(0, 1000, 2))
    slow = _redshift(fake, timeout_seconds=5, clock=lambda: next(ticks))
    with pytest.raises(RedshiftQueryError, match=r"claims-dev: expected FINISHED within 5 s, still STARTED"):
        slow.execute("SELECT 1")


def test_the_batch_ledger_reads_the_same(sample, fake, duck):
    assert recent_batch_runs(_redshift(fake)) == recent_batch_runs(duck) != []
