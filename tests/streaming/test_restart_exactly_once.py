"""Kill the streaming query at six points of a micro-batch, restart it from the same checkpoint: nothing lost, nothing
doubled.

The first run is a separate process (its own driver JVM) reading ~100 offsets per micro-batch; it SIGKILLs itself and
its JVM at one point of its second micro-batch (batch id 1): before any write, right after bronze, after the event
ledger, after silver is committed, while the Kafka sink is sending, or after every output but before Spark records the
batch as done. The restart runs in the test process from the same checkpoint with availableNow: Spark replays the
logged batch, which finds some of its tables written and must write only the others (libs.lake.writes), then drains
the rest. Every table must then hold each Kafka offset exactly once and the lake must reconcile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libs.generator import GeneratorConfig, generate_claims
from libs.lake import current_claims
from libs.settings import REPO_ROOT
from libs.streaming.reconcile import reconcile
from tests.streaming.pipeline_helpers import (
    AS_OF,
    KILL_POINTS,
    expected_outcome,
    make_pipeline,
    message_count,
    produce_claims,
    read_messages,
    run_available_now,
    table,
)

pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.slow]

COUNT = 300
PER_BATCH = 100
KILLED_BATCH = 1


@pytest.fixture(scope="module")
def claims() -> list:
    config = GeneratorConfig(count=COUNT, seed=31, defect_rate=0.1, replacement_rate=0.05, void_rate=0.03)
    return [claim for claim, _labels in generate_claims(config)]


def _committed(checkpoint: Path) -> set[int]:
    commits = checkpoint / "commits"
    return {int(entry.name) for entry in commits.iterdir() if entry.name.isdigit()} if commits.exists() else set()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_batch_killed_at_any_point_is_completed_exactly_once_on_restart(spark, kafka_broker, claims, tmp_path,
                                                                         point):
    expected = expected_outcome(claims, AS_OF)
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, trigger_seconds=0.5, max_offsets_per_trigger=PER_BATCH)
    assert produce_claims(pipeline, claims).delivered == COUNT

    settings_file = tmp_path / "settings.json"
    settings_file.write_text(pipeline.settings.model_dump_json(), encoding="utf-8")
    log = tmp_path / "first-run.log"
    with log.open("wb") as output:
        # Its own session: the kill takes the child's process group, its JVM included, and nothing of the test's.
        child = subprocess.run(
            [sys.executable, "-m", "tests.streaming.pipeline_helpers", str(settings_file), AS_OF.isoformat(), point,
             str(KILLED_BATCH)],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, timeout=600, check=False)
    assert child.returncode == -9, log.read_text(errors="replace")[-3000:]
    # The killed batch never reached the checkpoint's commit log: the restart must replay it.
    assert _committed(pipeline.checkpoint) == set(range(KILLED_BATCH))

    uncapped = pipeline.settings.model_copy(
        update={"spark": pipeline.settings.spark.model_copy(update={"max_offsets_per_trigger": None})})
    run_available_now(spark, pipeline, settings=uncapped)

    tables = pipeline.tables
    dead_letter = message_count(pipeline.settings.kafka, pipeline.topics.dead_letter)
    result = reconcile(spark, tables, produced=COUNT, dead_letter=dead_letter)
    assert result.reconciled, result.problems
    assert (result.bronze, result.bronze_distinct_offsets) == (COUNT, COUNT)
    quarantine = table(spark, tables.quarantine)
    assert quarantine.count() == quarantine.select("kafka_partition", "kafka_offset").distinct().count()
    assert sorted(row["claim_id"] for row in quarantine.select("claim_id").collect()) == sorted(expected.invalid_ids)
    events = table(spark, tables.claim_events)
    assert sorted(row["claim_id"] for row in events.select("claim_id").collect()) == sorted(expected.valid_ids)
    silver = table(spark, tables.silver)
    assert silver.count() == silver.select("kafka_partition", "kafka_offset").distinct().count()
    current = {row["claim_id"] for row in current_claims(silver, events).select("claim_id").collect()}
    assert current == expected.silver_ids

    # Kafka outputs are at-least-once: a replayed batch may repeat messages, but every valid claim is there.
    validated = read_messages(pipeline.settings.kafka, pipeline.topics.validated, expected=len(expected.valid_ids))
    assert len(validated) >= len(expected.valid_ids)
    assert {m.key.decode() for m in validated if m.key} == set(expected.valid_ids)
