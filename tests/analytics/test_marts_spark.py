"""The marts' SQL, transpiled by sqlglot, gives the same rows in Spark as in DuckDB on the same Parquet (the bench's
generated inputs at a small scale), and the bench stage reports both engines' figures."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyspark.sql import SparkSession

from libs.analytics.marts import mart_names, marts
from libs.bench.batch import SPARK_MART_CONF, TABLES, batch_vs_duckdb, write_inputs


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal | float):
        return None if math.isnan(float(value)) else round(float(value), 6)
    return value


def _rows(rows: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bench-marts")
    rows = write_inputs(directory, count=400, seed=3)
    assert rows["claims"] == 400
    assert min(rows["eligibility"], rows["providers"], rows["intake_daily"]) > 0
    return directory


def test_every_mart_gives_the_same_rows_in_spark_and_duckdb(spark: SparkSession, inputs: Path) -> None:
    connection = duckdb.connect()
    for table in TABLES:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{inputs / table}.parquet')")
        spark.read.parquet(str(inputs / f"{table}.parquet")).createOrReplaceTempView(table)
    for mart in marts():
        expected = _rows(connection.execute(mart.select_sql).fetchall())
        found = _rows([tuple(row) for row in spark.sql(mart.sql("spark")).collect()])
        assert found == expected, mart.name
        if mart.name in {"mart_pmpm", "mart_top_procedures", "mart_provider_profiles", "mart_daily_kpis"}:
            assert expected, f"{mart.name} is empty on the bench inputs: the comparison would prove nothing"
    connection.close()


def test_pmpm_on_the_bench_inputs_divides_by_the_populations_member_months(inputs: Path) -> None:
    connection = duckdb.connect()
    months = connection.execute(f"SELECT COUNT(*) FROM read_parquet('{inputs / 'eligibility'}.parquet')").fetchone()
    for table in TABLES:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{inputs / table}.parquet')")
    pmpm = next(mart for mart in marts() if mart.name == "mart_pmpm")
    total = connection.execute(f"SELECT SUM(member_months), MIN(month) FROM ({pmpm.select_sql})").fetchone()
    connection.close()
    assert months is not None
    assert total is not None
    assert total[0] == months[0]
    assert isinstance(total[1], date)


def test_the_bench_stage_reports_both_engines_and_restores_the_session(spark: SparkSession, tmp_path: Path) -> None:
    before = {key: spark.conf.get(key, None) for key in SPARK_MART_CONF}

    figures = batch_vs_duckdb(spark, tmp_path, count=150, seed=2)

    assert figures["count"] == 150
    assert set(figures["spark_marts"]) == set(figures["duckdb_marts"]) == set(mart_names())
    assert figures["ratio"] == pytest.approx(figures["spark_seconds"] / figures["duckdb_seconds"], rel=0.02)
    assert figures["met"] is (figures["ratio"] <= figures["target_ratio"])
    assert {key: spark.conf.get(key, None) for key in SPARK_MART_CONF} == before
