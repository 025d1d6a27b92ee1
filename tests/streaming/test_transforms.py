"""The pure transforms of the streaming path on static frames: parse, enrich, alerts, upserts, supersessions, lag and
the reconciliation identities.

Why static frames: each transform is a DataFrame -> DataFrame function, so its semantics can be pinned row by row
without a broker or a streaming query; the integration tests then only have to show that the query wires them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.fraud.catalog import FraudCode
from libs.model import Claim, ServiceLine
from libs.phi import PhiProtector
from libs.settings import load_settings
from libs.streaming.enrich import enrich_claims, stateless_alerts
from libs.streaming.lake import LakeTables
from libs.streaming.metrics import partition_lag
from libs.streaming.parse import MAX_PARSE_BYTES, MessageReason, parse_messages
from libs.streaming.processor import latest_upserts, supersession_frame
from libs.streaming.reconcile import Reconciliation, reconcile
from tests.factories import SERVICE_DATE, make_person, make_professional_claim
from tests.spark_helpers import kafka_rows

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def protector(tmp_path_factory: pytest.TempPathFactory) -> PhiProtector:
    home = tmp_path_factory.mktemp("transforms-keys")
    settings = load_settings(security={"local_key_file": home / "keyring.json", "audit_log": home / "audit.jsonl"})
    return PhiProtector.from_settings(settings)


def _message(protector: PhiProtector, claim: Claim) -> bytes:
    return orjson.dumps(protector.protect(claim), default=str)


def _good(claim_id: str = "PCLM0001") -> dict:
    """A minimal message that parses into a claim (field values are not validated by parse_messages)."""
    return {"claim_id": claim_id, "claim_type": "professional", "total_charge": "10.00", "lines": []}


# --------------------------------------------------------------------------------------------------- parse_messages

POISON_CASES: list[tuple[str, bytes | None, MessageReason | None]] = [
    ("null value", None, MessageReason.EMPTY),
    ("empty value", b"", MessageReason.EMPTY),
    ("oversize", b'{"claim_id": "BIG", "pad": "' + b"x" * MAX_PARSE_BYTES + b'"}', MessageReason.TOO_LARGE),
    ("plain text", b"this is not json", MessageReason.NOT_JSON),
    ("truncated json", b'{"claim_id": "T1", "claim_ty', MessageReason.NOT_JSON),
    ("json array", b'[{"claim_id": "A1"}]', MessageReason.NOT_JSON),
    ("json number", b"42", MessageReason.NOT_JSON),
    ("amount not a number", orjson.dumps({**_good("W1"), "total_charge": "abc"}), MessageReason.SCHEMA_MISMATCH),
    ("lines not an array", orjson.dumps({**_good("W2"), "lines": "x"}), MessageReason.SCHEMA_MISMATCH),
    ("claim id missing", orjson.dumps({k: v for k, v in _good().items() if k != "claim_id"}),
     MessageReason.MISSING_CLAIM_ID),
    ("claim id blank", orjson.dumps({**_good("   ")}), MessageReason.MISSING_CLAIM_ID),
    ("claim type unknown", orjson.dumps({**_good("D1"), "claim_type": "dental"}), MessageReason.BAD_CLAIM_TYPE),
    ("claim type missing", orjson.dumps({k: v for k, v in _good("D2").items() if k != "claim_type"}),
     MessageReason.BAD_CLAIM_TYPE),
    ("good", orjson.dumps(_good("G1")), None),
    ("good with leading whitespace", b"  \n" + orjson.dumps(_good("G2")), None),
]


def test_parse_messages_tags_every_poison_with_its_reason_and_keeps_coordinates(spark: SparkSession) -> None:
    frame = kafka_rows(spark, [value for _name, value, _reason in POISON_CASES], partition=2)
    rows = parse_messages(frame).select("kafka_partition", "kafka_offset", "value_size", "message_reason",
                                        "claim.claim_id").orderBy("kafka_offset").collect()
    found = {POISON_CASES[row["kafka_offset"]][0]: row["message_reason"] for row in rows}
    assert found == {name: (reason.value if reason else None) for name, _value, reason in POISON_CASES}
    assert {row["kafka_partition"] for row in rows} == {2}
    sizes = [row["value_size"] for row in rows]
    assert sizes == [len(value or b"") for _name, value, _reason in POISON_CASES]
    # The oversize value is never parsed; a good one keeps its claim id.
    by_name = {POISON_CASES[row["kafka_offset"]][0]: row for row in rows}
    assert by_name["oversize"]["claim_id"] is None
    assert by_name["good"]["claim_id"] == "G1"


# ---------------------------------------------------------------------------------------------------- enrichment


def test_enrich_claims_derives_the_analytics_columns(spark: SparkSession, refdata, protector) -> None:
    claim = make_professional_claim(claim_id="E1")
    odd = {**_good("E2"), "billing_provider": {"npi": "1234567893", "taxonomy": "999X00000X"},
           "lines": [{"line_number": 1, "procedure_code": "83036", "units": "3", "charge": "1.00"}]}
    parsed = parse_messages(kafka_rows(spark, [_message(protector, claim), orjson.dumps(odd)]))
    # enrich_claims runs on validated rows; the validation columns themselves are not its concern.
    enriched = enrich_claims(parsed.withColumn("warning_codes", F.array().cast("array<string>")), refdata)
    assert "_corrupt_record" not in enriched.columns
    rows = {row["claim_id"]: row for row in enriched.collect()}
    row = rows["E1"]
    assert row["billing_specialty"] == "Family Medicine"  # taxonomy 207Q00000X
    assert row["principal_diagnosis"] == "E119"
    assert row["line_count"] == 2
    assert row["total_units"] == Decimal("2.0000")
    assert row["em_level"] == 3  # 99213; the lab line has no E/M level
    assert row["age_band"] == "65-79"  # born 1958-03-14, served 2026-06-15: 68
    assert row["first_service_date"] == SERVICE_DATE
    assert row["service_month"] == "2026-06"
    assert row["processed_at"] is not None
    assert row["kafka_offset"] == 0
    # PHI columns hold what the producer put there: tokens or ciphertext, never the plaintext.
    assert row["patient"]["last_name"] != claim.patient.last_name  # type: ignore[union-attr]
    # Unknown taxonomy, no dates, no age, no E/M line: defaults rather than failures.
    odd_row = rows["E2"]
    assert (odd_row["billing_specialty"], odd_row["age_band"], odd_row["em_level"], odd_row["line_count"]) == (
        "unknown", "unknown", None, 1)
    assert odd_row["total_units"] == Decimal("3.0000")


# -------------------------------------------------------------------------------------------------------- alerts


def _line(number: int, code: str, units: str, charge: str) -> ServiceLine:
    return ServiceLine(line_number=number, procedure_code=code, procedure_system="HCPCS", units=Decimal(units),
                       unit_type="UN", charge=Decimal(charge), service_date_from=SERVICE_DATE,
                       service_date_to=SERVICE_DATE, diagnosis_pointers=[1])


def test_stateless_alerts_fire_per_rule_and_never_for_voids_or_clean_claims(spark: SparkSession, refdata,
                                                                           protector) -> None:
    excluded_npi = "1290554124"  # on the synthetic exclusion list since 2012
    clean = make_professional_claim(claim_id="CLEAN")
    outlier = make_professional_claim(claim_id="OUTLIER", lines=[_line(1, "99213", "1", "5000.00")],
                                      total_charge=Decimal("5000.00"))
    excess = make_professional_claim(claim_id="EXCESS", lines=[_line(1, "83036", "4", "160.00")],
                                     total_charge=Decimal("160.00"))
    dead = make_professional_claim(claim_id="DEAD", patient=make_person(death_date=date(2026, 1, 1)))
    assert clean.billing_provider is not None
    excluded = make_professional_claim(
        claim_id="EXCLUDED", billing_provider=clean.billing_provider.model_copy(update={"npi": excluded_npi}))
    void = make_professional_claim(claim_id="VOID", frequency_code="8", original_claim_id="OUTLIER",
                                   lines=outlier.lines, total_charge=outlier.total_charge)
    claims = [clean, outlier, excess, dead, excluded, void]
    parsed = parse_messages(kafka_rows(spark, [_message(protector, c) for c in claims]))
    alerts = stateless_alerts(parsed, refdata).collect()
    found = sorted((row["claim_id"], row["rule"]) for row in alerts)
    assert found == sorted([
        ("OUTLIER", FraudCode.OUTLIER_CHARGE.value),
        ("EXCESS", FraudCode.EXCESS_UNITS.value),
        ("DEAD", FraudCode.SERVICE_AFTER_DEATH.value),
        ("EXCLUDED", FraudCode.EXCLUDED_PROVIDER.value),
    ])
    assert {row["kafka_offset"] for row in alerts if row["claim_id"] == "EXCESS"} == {2}
    # Details name rules and thresholds, never member data.
    assert all("TESTPATIENT" not in row["detail"] and row["detail"] for row in alerts)


# ------------------------------------------------------------------------------------ upserts and supersessions

EVENT_COLUMNS = "claim_id string, frequency_code string, original_claim_id string, kafka_partition int, " \
                "kafka_offset long, batch_id long"


def test_latest_upserts_keep_the_last_offset_per_claim_and_drop_voids(spark: SparkSession) -> None:
    rows = [
        ("A", "1", None, 0, 10, 0), ("A", "7", "A", 0, 12, 0), ("A", "1", None, 0, 11, 0),  # A: offset 12 wins
        ("B", "1", None, 1, 5, 0),
        ("V", "8", "B", 1, 6, 0),  # a void is never upserted itself
    ]
    result = latest_upserts(spark.createDataFrame(rows, EVENT_COLUMNS)).collect()
    assert sorted((row["claim_id"], row["kafka_offset"]) for row in result) == [("A", 12), ("B", 5)]


def test_a_void_newer_than_its_claim_id_leaves_nothing_to_upsert(spark: SparkSession) -> None:
    rows = [("C", "1", None, 2, 0, 0), ("C", "8", "C", 2, 1, 0)]  # original C, then C voided under its own id
    assert latest_upserts(spark.createDataFrame(rows, EVENT_COLUMNS)).count() == 0


def test_supersession_frame_lists_originals_removed_by_replacements_and_voids(spark: SparkSession) -> None:
    rows = [
        ("B", "7", "A", 0, 1, 3),  # replacement of A
        ("C", "8", "D", 1, 2, 3),  # void of D
        ("E", "7", "E", 0, 3, 3),  # same id as its original: an update, not a removal
        ("F", "7", None, 0, 4, 3),  # no original named
        ("G", "1", "X", 0, 5, 3),  # an original that names another claim removes nothing
    ]
    result = supersession_frame(spark.createDataFrame(rows, EVENT_COLUMNS)).collect()
    assert sorted((r["claim_id"], r["superseded_by"], r["frequency_code"], r["batch_id"]) for r in result) == [
        ("A", "B", "7", 3), ("D", "C", "8", 3)]


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
              "silver": 5, "superseded": 1, "repeated_ids": 1, "voids": 1, "silver_missing": 0,
              "silver_unexpected": 0, "dead_letter": 2}
    values.update(changes)
    return Reconciliation(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"dead_letter": None}, None),  # dead-letter count not supplied: not checked
        ({"dead_letter": 3}, None),  # at-least-once: a replayed batch may repeat dead letters
        ({"bronze": 9, "bronze_distinct_offsets": 9, "valid_events": 7, "silver": 4}, "produced 10 != bronze 9"),
        ({"bronze_distinct_offsets": 9}, "bronze holds 1 duplicate Kafka offsets"),
        ({"quarantine": 3, "dead_letter": 3}, "bronze 10 != quarantine 3 + valid 8"),
        ({"silver": 6}, "valid 8 != silver 6 + superseded 1 + repeated ids 1 + voids 1"),
        ({"silver_missing": 2}, "2 claim ids missing from silver"),
        ({"silver_unexpected": 1}, "1 unexpected claim ids in silver"),
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
    tables = LakeTables(bronze=str(tmp_path / "bronze"), silver=str(tmp_path / "silver"),
                        quarantine=str(tmp_path / "quarantine"), claim_events=str(tmp_path / "events"),
                        supersessions=str(tmp_path / "supersessions"), batches=str(tmp_path / "batches"))

    def write(location: str, rows: list, schema: str) -> None:
        spark.createDataFrame(rows, schema).write.format("delta").save(location)

    # Six messages: one quarantined; A1 replaced by B1, C1 sent twice (a later version), V1 voids D1. Two faults:
    # offset 5 is in bronze twice (a replayed, non-idempotent write) and silver still holds the replaced A1.
    # (A healthy lake reconciling is shown by the integration tests.)
    write(tables.bronze, [(0, offset) for offset in (0, 1, 2, 3, 4, 5, 5)], "kafka_partition int, kafka_offset long")
    write(tables.quarantine, [(["NPI_INVALID"],)], "reason_codes array<string>")
    write(tables.claim_events, [("A1", "1"), ("B1", "7"), ("C1", "1"), ("C1", "7"), ("V1", "8")],
          "claim_id string, frequency_code string")
    write(tables.supersessions, [("A1",), ("D1",)], "claim_id string")
    write(tables.silver, [("B1",), ("C1",), ("A1",)], "claim_id string")

    result = reconcile(spark, tables, produced=6, dead_letter=1)
    assert (result.bronze, result.bronze_distinct_offsets, result.silver) == (7, 6, 3)
    assert (result.superseded, result.repeated_ids, result.voids, result.top_reasons) == (1, 1, 1, [("NPI_INVALID", 1)])
    assert (result.silver_missing, result.silver_unexpected) == (0, 1)
    assert result.problems == [
        "produced 6 != bronze 7",
        "bronze holds 1 duplicate Kafka offsets",
        "bronze 7 != quarantine 1 + valid 5",
        "valid 5 != silver 3 + superseded 1 + repeated ids 1 + voids 1",
        "1 unexpected claim ids in silver",
    ]
