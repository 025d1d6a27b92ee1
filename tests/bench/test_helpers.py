"""Smoke tests of the bench's pure helpers (no broker, no Spark, no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.bench.cpu import classify, difference, snapshot
from libs.bench.results import (
    BASELINE_STAGE,
    PARSE_STAGE,
    BenchReport,
    StageResult,
    latency_summary,
    percentile,
    ratio,
    render_table,
)
from libs.bench.runner import BenchConfig
from libs.bench.streaming import cpu_profile, step_totals
from libs.kafka.topics import prefixed_topics_file
from libs.settings import KafkaSettings, load_settings
from libs.streaming.processor import BatchOutcome


def test_stage_rate_and_ratios() -> None:
    baseline = StageResult(BASELINE_STAGE, 1000, 2.0)
    parse = StageResult(PARSE_STAGE, 1000, 0.1)
    streaming = StageResult("streaming end to end", 1000, 1.0)
    assert streaming.rate == 1000.0
    assert ratio(streaming, baseline) == pytest.approx(2.0)
    assert ratio(streaming, parse) == pytest.approx(0.1)
    assert ratio(streaming, None) is None
    assert StageResult("empty", 0, 0.0).rate is None
    with pytest.raises(ValueError, match="expected claims >= 0"):
        StageResult("bad", -1, 1.0)


def test_report_rows_carry_both_ratios_and_render() -> None:
    report = BenchReport()
    report.add(StageResult(PARSE_STAGE, 100, 0.01))
    report.add(StageResult(BASELINE_STAGE, 100, 0.1))
    report.add(StageResult("streaming end to end", 100, 0.05, "note"))
    rows = {row["stage"]: row for row in report.rows()}
    assert rows["streaming end to end"]["vs_baseline"] == pytest.approx(2.0)
    assert rows["streaming end to end"]["vs_orjson_parse"] == pytest.approx(0.2)
    assert rows[BASELINE_STAGE]["vs_baseline"] == pytest.approx(1.0)
    assert json.loads(json.dumps(report.to_dict()))["stages"][2]["note"] == "note"
    assert render_table(report.rows()).row_count == 3


def test_percentile_interpolates_like_numpy() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 40.0
    assert percentile(values, 0.5) == pytest.approx(25.0)
    assert percentile([5.0], 0.95) == 5.0
    with pytest.raises(ValueError, match="at least one value"):
        percentile([], 0.5)
    summary = latency_summary([float(v) for v in range(1, 101)])
    assert summary["count"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["max_ms"] == 100.0
    assert latency_summary([]) == {"count": 0}


def test_cpu_snapshot_counts_this_process_and_classifies_command_lines() -> None:
    assert classify("java -cp /x/.cache/jars/kafka/* kafka.Kafka server.properties") == "kafka broker"
    assert classify("java -cp /venv/pyspark/jars/* org.apache.spark.deploy.SparkSubmit pyspark-shell") == "spark jvm"
    assert classify("/venv/bin/python -m pyspark.daemon") == "spark python workers"
    assert classify("/venv/bin/python -m libs.spark.worker_daemon pyspark.worker") == "spark python workers"
    assert classify("/venv/bin/python -m libs.bench.baseline --topic t") == "baseline consumer"
    before = snapshot()
    sum(i * i for i in range(2_000_000))  # burn a little CPU in this process
    spent = difference(before, snapshot())
    assert spent.get("bench driver", 0.0) > 0.0
    assert all(seconds >= 0.05 for seconds in spent.values())


def test_step_totals_and_cpu_profile_add_up() -> None:
    first, second = BatchOutcome(batch_id=0), BatchOutcome(batch_id=1)
    first.step_seconds = {"check": 1.0, "silver": 0.5}
    second.step_seconds = {"check": 2.0}
    assert step_totals([first, second]) == {"check": 3.0, "silver": 0.5}
    profile = cpu_profile({"spark jvm": 3.0, "kafka broker": 1.0}, claims=1000)
    assert list(profile) == ["spark jvm", "kafka broker"]
    assert profile["spark jvm"] == {"cpu_seconds": 3.0, "share": 0.75, "us_per_claim": 3000.0}


def test_prefixed_topics_file_renames_every_topic_and_keeps_the_rest(tmp_path: Path) -> None:
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    original = load_topics(load_settings().kafka.topics_file)
    topics = load_topics(prefixed_topics_file(tmp_path / "topics.json", "bench-x", KafkaSettings().topics_file))
    assert topics.raw == f"bench-x-{original.raw}"
    assert {spec.name for spec in topics.all()}.isdisjoint({spec.name for spec in original.all()})
    assert topics.spec("raw").partitions == original.spec("raw").partitions


def test_bench_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="count must be > 0"):
        BenchConfig(count=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        BenchConfig(warmup=-1)
