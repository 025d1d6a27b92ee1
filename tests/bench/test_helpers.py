"""Smoke tests of the bench's pure helpers (no broker, no Spark, no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from libs.bench.baseline import strip_protected_phi
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
from libs.bench.runner import BenchConfig, prefixed_topics_file
from libs.bench.streaming import batch_figures, duration_totals, parse_ui_time, stage_breakdown, steady_state
from libs.model import Claim
from libs.phi import PhiProtector
from libs.settings import SecuritySettings, load_settings
from tests.factories import make_professional_claim


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


def test_strip_protected_phi_keeps_tokens_and_validates_as_a_claim(tmp_path: Path) -> None:
    settings = load_settings(security=SecuritySettings(local_key_file=tmp_path / "keyring.json",
                                                       audit_log=tmp_path / "audit.jsonl"))
    claim = make_professional_claim()
    record = PhiProtector.from_settings(settings).protect(claim)
    stripped = strip_protected_phi(json.loads(json.dumps(record)))
    assert "phi_derived" not in stripped
    assert "phi_envelope" not in stripped
    rebuilt = Claim.model_validate(stripped)
    assert rebuilt.claim_id == claim.claim_id
    for person in (rebuilt.subscriber, rebuilt.patient):
        if person is None:
            continue
        assert person.last_name is None
        assert person.birth_date is None
        assert person.member_id is None or person.member_id.startswith("tok:")
    assert rebuilt.lines == claim.lines


def test_batch_figures_count_messages_from_offsets() -> None:
    progress = [
        {"batchId": 0, "numInputRows": 0, "sources": [{"startOffset": None, "endOffset": {"t": {"0": 0}}}]},
        {"batchId": 1, "numInputRows": 30, "durationMs": {"addBatch": 900, "triggerExecution": 1000},
         "sources": [{"startOffset": None, "endOffset": json.dumps({"t": {"0": 4, "1": 6}})}]},
        {"batchId": 2, "numInputRows": 5, "durationMs": {"addBatch": 400, "triggerExecution": 500},
         "sources": [{"startOffset": {"t": {"0": 4, "1": 6}}, "endOffset": {"t": {"0": 6, "1": 9}}}]},
    ]
    batches = batch_figures(progress)
    assert [(b["batch_id"], b["input_rows"], b["num_input_rows_reported"]) for b in batches] == [(1, 10, 30), (2, 5, 5)]
    assert duration_totals(batches) == {"addBatch": 1300, "triggerExecution": 1500}
    steady = steady_state(batches)
    assert steady is not None
    assert steady["claims"] == 5
    assert steady["claims_per_second"] == pytest.approx(10.0)
    assert steady_state(batches[:1]) is None


def test_stage_breakdown_groups_by_call_site_within_the_window() -> None:
    assert parse_ui_time("2026-11-30T05:40:01.500GMT") == pytest.approx(1796017201.5)
    assert parse_ui_time("not a time") is None
    stages: list[dict[str, Any]] = [
        {"name": "save at X", "submissionTime": "2026-11-30T05:40:00.000GMT",
         "completionTime": "2026-11-30T05:40:03.000GMT", "executorRunTime": 4000, "numTasks": 2},
        {"name": "save at X", "submissionTime": "2026-11-30T05:40:05.000GMT",
         "completionTime": "2026-11-30T05:40:06.000GMT", "executorRunTime": 1000, "numTasks": 1},
        {"name": "count at Y", "submissionTime": "2026-11-30T05:40:07.000GMT",
         "completionTime": "2026-11-30T05:40:08.000GMT", "executorRunTime": 500, "numTasks": 1},
        {"name": "before the window", "submissionTime": "2026-11-30T05:30:00.000GMT",
         "completionTime": "2026-11-30T05:39:00.000GMT"},
    ]
    since = parse_ui_time("2026-11-30T05:39:30.000GMT") or 0.0
    groups = stage_breakdown(stages, since, since + 60)
    assert [(g["call_site"], g["stages"], g["wall_seconds"], g["task_seconds"]) for g in groups] == [
        ("save at X", 2, 4.0, 5.0), ("count at Y", 1, 1.0, 0.5)]


def test_prefixed_topics_file_renames_every_topic_and_keeps_the_rest(tmp_path: Path) -> None:
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    original = load_topics(load_settings().kafka.topics_file)
    topics = load_topics(prefixed_topics_file(tmp_path / "topics.json", "bench-x"))
    assert topics.raw == f"bench-x-{original.raw}"
    assert {spec.name for spec in topics.all()}.isdisjoint({spec.name for spec in original.all()})
    assert topics.spec("raw").partitions == original.spec("raw").partitions


def test_bench_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="count must be > 0"):
        BenchConfig(count=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        BenchConfig(warmup=-1)
