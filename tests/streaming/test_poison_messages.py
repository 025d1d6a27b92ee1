"""Poison messages on the raw topic never stop the query: each is quarantined with its reason and Kafka coordinates,
dead-lettered with its original bytes, and good claims around it still reach silver.

The query runs with a 1 s processing-time trigger (as in production, not availableNow): a second batch of good claims
produced after the poison must still be processed by the same, still running query.
"""

from __future__ import annotations

import orjson
import pytest

from libs.lake import current_claims
from libs.streaming.check import MessageReason
from tests.factories import make_institutional_claim, make_professional_claim
from tests.streaming.pipeline_helpers import (
    AS_OF,
    make_pipeline,
    produce_raw,
    read_messages,
    stop_query,
    table,
    wait_until,
)

pytestmark = [pytest.mark.spark, pytest.mark.kafka]

FIVE_MB = 5 * 1024 * 1024


def _rows(running, outcome: str) -> int:
    value = running.metrics.registry.get_sample_value("claims_stream_rows_total", {"outcome": outcome})
    return int(value or 0)


def test_poison_is_quarantined_and_dead_lettered_while_good_claims_flow(spark, kafka_broker, tmp_path):
    pipeline = make_pipeline(tmp_path, kafka_broker.bootstrap, trigger_seconds=1.0)
    protector = pipeline.protector()
    good = [make_professional_claim(claim_id=f"GOOD-{i}") for i in range(4)] + [make_institutional_claim(
        claim_id="GOOD-I")]
    protected = {c.claim_id: protector.protect(c) for c in good}

    def encoded(document: dict) -> bytes:
        return orjson.dumps(document, default=str)

    template = protected["GOOD-0"]
    poison: list[tuple[str, bytes | None, bytes | None, MessageReason, str | None]] = [
        ("not json", b"poison-1", b"this is not json", MessageReason.NOT_JSON, None),
        ("total_charge abc", b"W-1", encoded({**template, "claim_id": "W-1", "total_charge": "abc"}),
         MessageReason.SCHEMA_MISMATCH, "W-1"),
        ("lines x", b"W-2", encoded({**template, "claim_id": "W-2", "lines": "x"}),
         MessageReason.SCHEMA_MISMATCH, "W-2"),
        ("no claim_id", b"poison-4", encoded({k: v for k, v in template.items() if k != "claim_id"}),
         MessageReason.MISSING_CLAIM_ID, None),
        ("bad claim_type", b"T-1", encoded({**template, "claim_id": "T-1", "claim_type": "dental"}),
         MessageReason.BAD_CLAIM_TYPE, "T-1"),
        ("5 MB", b"BIG-1", encoded({**template, "claim_id": "BIG-1", "padding": "x" * FIVE_MB}),
         MessageReason.TOO_LARGE, None),
        ("null key, not json", None, b"{broken", MessageReason.NOT_JSON, None),
        ("empty value", b"poison-8", b"", MessageReason.EMPTY, None),
        ("tombstone", b"poison-9", None, MessageReason.EMPTY, None),
    ]
    first_good: list[tuple[bytes | None, bytes | None]] = [
        (c.encode(), encoded(protected[c])) for c in ("GOOD-0", "GOOD-1", "GOOD-I")]
    # A null key is not poison by itself: the claim id comes from the value.
    first_good.append((None, encoded(protected["GOOD-2"])))
    messages = [(key, value) for _name, key, value, _reason, _cid in poison]
    # Interleave good and poison messages so that they share partitions and micro-batches.
    mixed = [first_good[0], *messages[:4], first_good[1], *messages[4:], *first_good[2:]]
    coordinates = dict(zip(range(len(mixed)), produce_raw(pipeline, mixed), strict=True))
    poison_at = {coordinates[mixed.index(item)]: spec for item, spec in zip(messages, poison, strict=True)}
    assert len(poison_at) == len(poison)

    from libs.streaming.query import start_claims_query  # noqa: PLC0415

    running = start_claims_query(spark, pipeline.settings, as_of=AS_OF)
    try:
        wait_until(lambda: _rows(running, "valid") == len(first_good) and _rows(running, "quarantined") == len(poison),
                   "the first good claims in silver and the poison in quarantine")
        # Still running: a second batch of good claims is processed by the same query.
        produce_raw(pipeline, [(b"GOOD-3", encoded(protected["GOOD-3"]))])
        wait_until(lambda: _rows(running, "valid") == len(first_good) + 1, "the second batch of good claims")
        assert running.query.isActive
        assert running.query.exception() is None
    finally:
        stop_query(spark, running)

    tables = running.tables
    quarantine = table(spark, tables.quarantine).collect()
    found = {(row["kafka_partition"], row["kafka_offset"]): (row["reason_codes"], row["claim_id"], row["value_size"])
             for row in quarantine}
    assert len(quarantine) == len(found) == len(poison)
    assert found == {
        at: ([reason.value], claim_id, len(mixed[mixed.index((key, value))][1] or b""))
        for at, (_name, key, value, reason, claim_id) in poison_at.items()
    }

    silver = {row["claim_id"] for row in current_claims(table(spark, tables.silver), table(spark, tables.claim_events)
                                                         ).select("claim_id").collect()}
    assert silver == {"GOOD-0", "GOOD-1", "GOOD-2", "GOOD-3", "GOOD-I"}

    # The dead-letter topic carries every poison message's original key and bytes, and why and where it came from.
    dead = read_messages(pipeline.settings.kafka, pipeline.topics.dead_letter, expected=len(poison))
    assert len(dead) == len(poison)
    by_source = {(int(m.headers["source_partition"]), int(m.headers["source_offset"])): m for m in dead}
    assert set(by_source) == set(poison_at)
    for at, (name, key, value, reason, _claim_id) in poison_at.items():
        message = by_source[at]
        assert message.headers["reason_codes"] == reason.value.encode(), name
        assert message.key == key, name
        assert (message.value or b"") == (value or b""), name
