"""Kill the streaming query mid-stream with SIGKILL, restart it from the same checkpoint: nothing lost, nothing doubled.

The first run is a separate process (its own driver JVM) reading 50 offsets per micro-batch; once two batches are
committed it is killed with SIGKILL - no stop(), no flush, typically in the middle of the third batch, whose offsets
are already logged and some of whose Delta writes may have landed. The restart runs in the test process from the same
checkpoint with availableNow: Spark replays the logged batch (Delta's txnAppId/txnVersion make its writes no-ops
where they had landed) and then drains the rest. Every table must then count each Kafka offset exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F  # noqa: N812

from libs.generator import GeneratorConfig, generate_claims
from libs.settings import REPO_ROOT
from libs.streaming.reconcile import reconcile
from tests.streaming.pipeline_helpers import (
    AS_OF,
    expected_outcome,
    make_pipeline,
    message_count,
    produce_claims,
    read_messages,
    run_available_now,
    table,
    wait_until,
)

pytestmark = [pytest.mark.spark, pytest.mark.kafka]

COUNT = 400
PER_BATCH = 50
KILL_AFTER_COMMITS = 2


def _committed(checkpoint: Path) -> int:
    commits = checkpoint / "commits"
    return sum(1 for entry in commits.iterdir() if entry.name.isdigit()) if commits.exists() else 0


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(spark, kafka_broker, tmp_path):
    config = GeneratorConfig(count=COUNT, seed=31, defect_rate=0.1, replacement_rate=0.05, void_rate=0.03)
    claims = [claim for claim, _labels in generate_claims(config)]
    expected = expected_outcome(claims, AS_OF)
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, trigger_seconds=1.0,
                             max_offsets_per_trigger=PER_BATCH)
    report = produce_claims(pipeline, claims)
    assert report.delivered == COUNT

    settings_file = tmp_path / "settings.json"
    settings_file.write_text(pipeline.settings.model_dump_json(), encoding="utf-8")
    log = tmp_path / "first-run.log"
    with log.open("wb") as output:
        # A new session makes the child the leader of its own process group: the kill reaches its JVM as well.
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.streaming.pipeline_helpers", str(settings_file), AS_OF.isoformat()],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_until(lambda: _committed(pipeline.checkpoint) >= KILL_AFTER_COMMITS or child.poll() is not None,
                       f"{KILL_AFTER_COMMITS} committed micro-batches in the first run", timeout=400, every=0.2)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, log.read_text(errors="replace")[-3000:]

    tables = pipeline.tables
    before_restart = table(spark, tables.bronze).count()
    # maxOffsetsPerTrigger is split across partitions by their backlog (rounded), so a batch holds about 50 rows.
    assert KILL_AFTER_COMMITS * PER_BATCH * 0.9 <= before_restart < COUNT, "expected the kill to land mid-stream"

    # Restart from the same checkpoint; without the per-batch cap the rest is one batch after the replayed one.
    uncapped = pipeline.settings.model_copy(
        update={"spark": pipeline.settings.spark.model_copy(update={"max_offsets_per_trigger": None})})
    run_available_now(spark, pipeline, settings=uncapped)

    dead_letter = message_count(pipeline.settings.kafka, pipeline.topics.dead_letter)
    result = reconcile(spark, tables, produced=COUNT, dead_letter=dead_letter)
    assert result.reconciled, result.problems
    assert (result.bronze, result.bronze_distinct_offsets) == (COUNT, COUNT)
    quarantine = table(spark, tables.quarantine)
    assert quarantine.count() == quarantine.select("kafka_partition", "kafka_offset").distinct().count()
    assert sorted(row["claim_id"] for row in quarantine.select("claim_id").collect()) == sorted(expected.invalid_ids)
    events = table(spark, tables.claim_events)
    assert sorted(row["claim_id"] for row in events.select("claim_id").collect()) == sorted(expected.valid_ids)
    silver = {row["claim_id"] for row in table(spark, tables.silver).select("claim_id").collect()}
    assert silver == expected.silver_ids

    # One batches row per batch id: the killed first run's batches, the replayed one and the rest.
    batch_ids = [row["batch_id"] for row in table(spark, tables.batches).select("batch_id").collect()]
    assert len(batch_ids) == len(set(batch_ids)) >= KILL_AFTER_COMMITS + 1
    totals = table(spark, tables.batches).agg(F.sum("input_rows").alias("rows")).first()
    assert totals is not None
    assert totals["rows"] == COUNT

    # Kafka outputs are at-least-once: a replayed batch may repeat messages, but every valid claim is there.
    validated = read_messages(pipeline.settings.kafka, pipeline.topics.validated, expected=len(expected.valid_ids))
    assert len(validated) >= len(expected.valid_ids)
    assert {m.key.decode() for m in validated if m.key} == set(expected.valid_ids)
