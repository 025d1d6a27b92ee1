"""The pure transforms of the streaming path on static frames: the checked rows, each output's rows, the readers of
the current claims, lag and the reconciliation identities.

Why static frames: each transform is a DataFrame -> DataFrame function, so its semantics can be pinned row by row
without a broker or a streaming query; the integration tests then only have to show that the query wires them.
"""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.lake import LakeTables, current_claims, removals, silver_claims
from libs.model import Claim
from libs.phi import PhiProtector
from libs.settings import load_settings
from libs.streaming import frames
from libs.streaming.metrics import partition_lag
from libs.streaming.parse import check_messages
from libs.streaming.reconcile import Reconciliation, reconcile
from tests.factories import make_professional_claim
from tests.spark_helpers import kafka_rows

pytestmark = pytest.mark.spark
AS_OF = date(2026, 11, 30)


@pytest.fixture(scope="module")
def protector(tmp_path_factory: pytest.TempPathFactory) -> PhiProtector:
    home = tmp_path_factory.mktemp("transforms-keys")
    settings = load_settings(security={"local_key_file": home / "keyring.json", "audit_log": home / "audit.jsonl"})
    return PhiProtector.from_settings(settings)


def _message(protector: PhiProtector, claim: Claim) -> bytes:
    return orjson.dumps(protector.protect(claim))


@pytest.fixture(scope="module")
def checked(spark: SparkSession, protector: PhiProtector):
    """Checked rows of: a valid claim, its replacement under a new id, a void of a third claim, an invalid claim
    and a message that is not JSON (offsets 0..5 of partition 0)."""
    claims = [
        make_professional_claim(claim_id="A1"),
        make_professional_claim(claim_id="B1", frequency_code="7", original_claim_id="A1"),
        make_professional_claim(claim_id="C1"),
        make_professional_claim(claim_id="V1", frequency_code="8", original_claim_id="C1"),
        make_professional_claim(claim_id="BAD", lines=[]),  # MISSING_LINES
    ]
    values = [*(_message(protector, claim) for claim in claims), b"not json"]
    return check_messages(kafka_rows(spark, values), AS_OF, pipeline_id="P1", batch_id=4).cache()


def test_bronze_keeps_every_message_and_quarantine_every_rejection(checked) -> None:
    bronze = frames.bronze_frame(checked).collect()
    assert [row["kafka_offset"] for row in bronze] == [0, 1, 2, 3, 4, 5]
    assert {(row["pipeline_id"], row["batch_id"]) for row in bronze} == {("P1", 4)}
    quarantine = {row["kafka_offset"]: row for row in frames.quarantine_frame(checked).collect()}
    assert sorted(quarantine) == [4, 5]
    assert quarantine[4]["claim_id"] == "BAD"
    assert quarantine[4]["reason_codes"] == ["MISSING_LINES"]
    assert quarantine[4]["findings"][0]["field"] == "lines"
    assert quarantine[5]["reason_codes"] == ["MESSAGE_NOT_JSON"]


def test_events_record_what_each_accepted_message_supersedes(checked) -> None:
    events = {row["claim_id"]: row for row in frames.events_frame(checked).collect()}
    assert sorted(events) == ["A1", "B1", "C1", "V1"]
    assert events["B1"]["supersedes_claim_id"] == "A1"
    assert events["V1"]["supersedes_claim_id"] == "C1"
    assert events["A1"]["supersedes_claim_id"] is None
    removed = {(row["claim_id"], row["superseded_by"]) for row in removals(frames.events_frame(checked)).collect()}
    assert removed == {("A1", "B1"), ("C1", "V1")}


def test_silver_holds_accepted_versions_with_their_json_and_no_void(checked) -> None:
    silver = {row["claim_id"]: row for row in frames.silver_frame(checked).collect()}
    assert sorted(silver) == ["A1", "B1", "C1"]  # the void is a removal, never a claim version
    row = silver["A1"]
    assert orjson.loads(row["claim_json"])["claim_id"] == "A1"
    assert (row["billing_specialty"], row["line_count"], row["service_month"]) == ("Family Medicine", 2, "2026-06")
    assert row["member_token"].startswith("tok:")
    assert "TESTPATIENT" not in row["claim_json"]  # the factory's plaintext name is sealed away


def test_current_claims_are_the_newest_versions_minus_removals(spark: SparkSession) -> None:
    silver = spark.createDataFrame(
        [("A", 0, 10), ("A", 0, 12), ("A", 0, 11), ("B", 1, 5), ("D", 2, 1), ("L", 3, 9)],
        "claim_id string, kafka_partition int, kafka_offset long")
    events = spark.createDataFrame(
        [("R", "7", "B", 0, 20), ("V", "8", "D", 2, 3), ("W", "8", "L", 3, 2)],  # W voids L before L arrives
        "claim_id string, frequency_code string, supersedes_claim_id string, kafka_partition int, kafka_offset long"
    ).withColumn("kafka_timestamp", F.lit(None).cast("timestamp"))
    current = {(row["claim_id"], row["kafka_offset"]) for row in current_claims(silver, events).collect()}
    assert current == {("A", 12)}  # newest A; B replaced, D voided, the late original L stays removed


def test_silver_claims_expand_the_json_into_the_model_columns(checked) -> None:
    expanded = silver_claims(frames.silver_frame(checked))
    row = expanded.where("claim_id = 'A1'").first()
    assert row is not None
    assert row["lines"][0]["procedure_code"] == "99213"
    assert row["phi_sealed"].startswith("enc:")
    assert row["patient"]["member_id"].startswith("tok:")
    assert row["billing_specialty"] == "Family Medicine"


def test_topic_messages_route_each_row_once_per_output(checked) -> None:
    class Topics:
        validated, processed, alerts, dead_letter = "v", "p", "a", "d"

    messages = frames.topic_messages(checked, Topics).collect()
    by_topic: dict[str, list] = {}
    for message in messages:
        by_topic.setdefault(message["topic"], []).append(message)
    assert sorted(m["key"] for m in by_topic["v"]) == ["A1", "B1", "C1", "V1"]
    assert sorted(m["key"] for m in by_topic["p"]) == ["A1", "B1", "C1", "V1"]
    assert len(by_topic["d"]) == 2
    assert "a" not in by_topic  # no claim here trips a per-claim screen
    processed = orjson.loads(next(m["value"] for m in by_topic["p"] if m["key"] == "A1"))
    assert processed["claim"]["claim_id"] == "A1"
    assert processed["enrichment"]["em_level"] == 3
    headers = {h["key"]: h["value"] for h in next(m for m in by_topic["d"] if m["value"] == b"not json")["headers"]}
    assert headers == {"reason_codes": b"MESSAGE_NOT_JSON", "source_partition": b"0", "source_offset": b"5"}


# ------------------------------------------------------------------------------------------------------- metrics


def test_partition_lag_from_kafka_source_progress() -> None:
    source = {
        "endOffset": '{"raw": {"0": 100, "1": 40}}',  # Spark reports offsets as JSON text
        "latestOffset": {"raw": {"0": 130, "1": 40, "2": 7}},
    }
    assert partition_lag(source) == {("raw", 0): 30, ("raw", 1): 0, ("raw", 2): 7}
    # Processed beyond the last known latest offset (a race between the two reads) is no lag, never negative.
    assert partition_lag({"endOffset": {"raw": {"0": 9}}, "latestOffset": {"raw": {"0": 5}}}) == {("raw", 0): 0}
    assert partition_lag({"endOffset": "not json", "latestOffset": None}) == {}
    assert partition_lag({}) == {}


# ---------------------------------------------------------------------------------------------------- reconcile


def _reconciliation(**changes: int) -> Reconciliation:
    values = {"produced": 10, "bronze": 10, "bronze_distinct_offsets": 10, "quarantine": 2, "valid_events": 8,
              "voids": 1, "silver": 7, "silver_missing": 0, "silver_unexpected": 0, "upserted_ids": 6,
              "superseded": 2, "current": 4, "repeated_ids": 1, "dead_letter": 2}
    values.update(changes)
    return Reconciliation(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"dead_letter": None}, None),  # dead-letter count not supplied: not checked
        ({"dead_letter": 3}, None),  # at-least-once: a replayed batch may repeat dead letters
        ({"bronze": 9, "bronze_distinct_offsets": 9, "valid_events": 7, "silver": 6}, "produced 10 != bronze 9"),
        ({"bronze_distinct_offsets": 9}, "bronze holds 1 duplicate Kafka offsets"),
        ({"quarantine": 3, "dead_letter": 3}, "bronze 10 != quarantine 3 + valid 8"),
        ({"silver": 6}, "silver 6 != valid 8 - voids 1"),
        ({"silver_missing": 2}, "2 accepted claim versions missing from silver"),
        ({"silver_unexpected": 1}, "1 silver rows without an accepted message"),
        ({"current": 5}, "current claims 5 != upserted ids 6 - superseded 2"),
        ({"dead_letter": 1}, "dead-letter topic holds 1 messages, fewer than quarantine 2"),
    ],
)
def test_reconciliation_identities(changes: dict, problem: str | None) -> None:
    from libs.streaming.reconcile import _problems  # noqa: PLC0415  (the identities themselves)

    result = _reconciliation(**changes)
    result.problems = _problems(result)
    assert result.problems == ([problem] if problem else [])
    assert result.reconciled is (problem is None)
    assert result.as_dict()["reconciled"] is (problem is None)


def test_reconcile_reads_the_lake_and_finds_duplicates_and_strays(spark: SparkSession, tmp_path) -> None:
    tables = LakeTables.from_settings(load_settings(lake={"root": str(tmp_path)}).lake)

    def write(location: str, rows: list, schema: str) -> None:
        spark.createDataFrame(rows, schema).write.format("delta").save(location)

    coordinates = "kafka_partition int, kafka_offset long"
    # Six messages: offset 0 quarantined; A1 (1) replaced by B1 (2), C1 sent twice (3, 4), V1 (5) voids D1. Two
    # faults: offset 5 is in bronze twice (a replayed, non-idempotent write) and silver holds a row for offset 9 that
    # no accepted message has. (A healthy lake reconciling is shown by the integration tests.)
    write(tables.bronze, [(0, offset) for offset in (0, 1, 2, 3, 4, 5, 5)], coordinates)
    write(tables.quarantine, [(["NPI_INVALID"],)], "reason_codes array<string>")
    events = spark.createDataFrame(
        [("A1", "1", None, 0, 1), ("B1", "7", "A1", 0, 2), ("C1", "1", None, 0, 3), ("C1", "7", None, 0, 4),
         ("V1", "8", "D1", 0, 5)], f"claim_id string, frequency_code string, supersedes_claim_id string, {coordinates}")
    events.withColumn("kafka_timestamp", F.lit(None).cast("timestamp")).write.format("delta").save(
        tables.claim_events)
    write(tables.silver, [("A1", 0, 1), ("B1", 0, 2), ("C1", 0, 3), ("C1", 0, 4), ("X1", 0, 9)],
          f"claim_id string, {coordinates}")

    result = reconcile(spark, tables, produced=6, dead_letter=1)
    assert (result.bronze, result.bronze_distinct_offsets, result.silver, result.voids) == (7, 6, 5, 1)
    assert (result.upserted_ids, result.superseded, result.current, result.repeated_ids) == (3, 1, 3, 1)
    assert (result.silver_missing, result.silver_unexpected, result.top_reasons) == (0, 1, [("NPI_INVALID", 1)])
    assert result.problems == [
        "produced 6 != bronze 7",
        "bronze holds 1 duplicate Kafka offsets",
        "bronze 7 != quarantine 1 + valid 5",
        "silver 5 != valid 5 - voids 1",
        "1 silver rows without an accepted message",
        "current claims 3 != upserted ids 3 - superseded 1",
    ]
