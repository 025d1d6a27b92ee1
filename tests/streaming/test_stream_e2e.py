"""Produce -> stream -> lake with the real broker and the real Spark query: exact counts, end to end.

Generated claims (defects, replacements and voids included) are protected by the PHI protector and produced with the
ClaimProducer, exactly as the producer app does; one availableNow run of the claims query drains them. The lake and
the output topics must then hold exactly what the Python validation rules predict, and reconcile() must agree.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import orjson
import pytest

from libs.generator import GeneratorConfig, generate_claims
from libs.lake import current_claims, silver_claims
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
)

pytestmark = [pytest.mark.spark, pytest.mark.kafka]

COUNT = 300


@pytest.fixture(scope="module")
def claims() -> list:
    config = GeneratorConfig(count=COUNT, seed=23, defect_rate=0.15, fraud_rate=0.02, replacement_rate=0.06,
                             void_rate=0.04)
    return [claim for claim, _labels in generate_claims(config)]


def test_lake_and_topics_hold_exactly_what_the_rules_predict(spark, kafka_broker, claims, tmp_path):
    expected = expected_outcome(claims, AS_OF)
    # The run is only meaningful if it exercises every route: quarantine, replacement, void.
    assert expected.invalid_ids
    assert expected.voids > 0
    assert len(expected.superseded) > expected.voids, "expected some replacements as well as voids"

    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap)
    report = produce_claims(pipeline, claims)
    assert report.delivered == COUNT

    running = run_available_now(spark, pipeline, as_of=AS_OF)
    tables = running.tables
    topics = pipeline.topics
    kafka = pipeline.settings.kafka
    dead_letter = message_count(kafka, topics.dead_letter)

    result = reconcile(spark, tables, produced=report.delivered, dead_letter=dead_letter)
    assert result.reconciled, result.problems
    assert (result.bronze, result.bronze_distinct_offsets) == (COUNT, COUNT)
    assert result.quarantine == len(expected.invalid_ids)
    assert result.valid_events == len(expected.valid_ids)
    assert result.voids == expected.voids
    assert result.superseded == len(expected.superseded)

    # Claim for claim, not only in number (one read of each table).
    quarantine = table(spark, tables.quarantine).select("claim_id", "reason_codes").collect()
    assert sorted(row["claim_id"] for row in quarantine) == sorted(expected.invalid_ids)
    lake_reasons = Counter(code for row in quarantine for code in row["reason_codes"])
    assert dict(lake_reasons) == expected.reason_counts
    assert all(expected.reason_counts[code] == n for code, n in result.top_reasons)
    current = silver_claims(current_claims(table(spark, tables.silver), table(spark, tables.claim_events)))
    silver = current.select("claim_id", "total_charge", "patient.last_name", "phi_sealed").collect()
    assert len(silver) == len(expected.silver_ids)
    assert {row["claim_id"] for row in silver} == expected.silver_ids

    # A replacement's content is what silver holds (the generator changes one line charge and the total).
    replacements = {c.claim_id: c for c in claims if c.frequency_code == "7" and c.claim_id in expected.silver_ids}
    assert replacements
    charges = {row["claim_id"]: row["total_charge"] for row in silver if row["claim_id"] in replacements}
    assert charges == {cid: Decimal(c.total_charge).quantize(Decimal("0.0001")) for cid, c in replacements.items()}

    # PHI never reaches silver in the clear: names are sealed in the record's ciphertext, not in the claim.
    assert {row["last_name"] for row in silver} == {None}
    assert all(row["phi_sealed"].startswith("enc:") for row in silver)

    # Output topics: validated == valid, dead-letter == quarantine, processed == valid.
    assert message_count(kafka, topics.validated) == len(expected.valid_ids)
    assert dead_letter == len(expected.invalid_ids)
    assert message_count(kafka, topics.processed) == len(expected.valid_ids)

    # Quality topic: one JSON document per micro-batch, adding up to the run's totals.
    # The processor reports every micro-batch it ran to the metrics (no Spark job needed to count them).
    batches = int(running.metrics.registry.get_sample_value("claims_stream_batches_total") or 0)
    quality = [orjson.loads(m.value or b"") for m in read_messages(kafka, topics.quality, expected=batches)]
    assert len(quality) == batches >= 1
    assert sum(q["input_rows"] for q in quality) == COUNT
    assert sum(q["valid"] for q in quality) == len(expected.valid_ids)
    assert sum(q["quarantined"] for q in quality) == len(expected.invalid_ids)
    for q in quality:
        assert 0.0 <= q["valid_ratio"] <= 1.0
        if q["input_rows"]:
            assert q["valid_ratio"] == pytest.approx(q["valid"] / q["input_rows"], abs=1e-6)
