"""The batch frames behind the analytics marts, on small hand-made frames: intake per day and source format,
per-field data quality (Tuva's valid / invalid / missing buckets), and the code sets' reference tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from libs.batch import frames
from libs.codesets import load_codesets
from libs.warehouse.dialect import table_columns

DAY = date(2026, 10, 30)
NOW = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)
PRO, INST = "x12-837p", "x12-837i"
TOPIC = "claims-raw"

# Silver (accepted versions of the day): A original and B replacement from 837P, C original from 837I;
# A warns MISSING_PAYER, B warns NPI_CHECK_DIGIT (a warning that is not about a missing value).
SILVER = [("A", "1", PRO, 0, 1, ["MISSING_PAYER"]), ("B", "7", PRO, 0, 2, ["NPI_CHECK_DIGIT"]),
          ("C", "1", INST, 1, 1, [])]
# Quarantine: Q1 (837P) a malformed NPI; Q2 (837P) no billing NPI and a bad place of service; Q3 unreadable (no
# catalogued code, its bronze copy has no format); Q4 (837I) a bad type of bill.
QUARANTINE = [(0, 10, ["NPI_FORMAT"], []), (0, 11, ["MISSING_BILLING_NPI", "POS_INVALID"], []),
              (0, 12, ["JSON_MALFORMED"], []), (1, 10, ["TOB_INVALID"], ["MISSING_PAYER"])]
FORMATS = [(0, 10, PRO), (0, 11, PRO), (1, 10, INST)]
# Events of the day: A voided (counted with A's source format), Z voided (its claim never reached silver today).
EVENTS = [("A", "8"), ("Z", "8")]


@pytest.fixture(scope="module")
def inputs(spark: SparkSession) -> dict[str, DataFrame]:
    silver = spark.createDataFrame(
        [(DAY, claim_id, freq, source, part, offset, warnings) for claim_id, freq, source, part, offset, warnings
         in SILVER],
        "ingest_date date, claim_id string, frequency_code string, source_format string, kafka_partition int, "
        "kafka_offset long, warning_codes array<string>")
    quarantine = spark.createDataFrame(
        [(DAY, TOPIC, part, offset, reasons, warnings, NOW) for part, offset, reasons, warnings in QUARANTINE],
        "ingest_date date, kafka_topic string, kafka_partition int, kafka_offset long, reason_codes array<string>, "
        "warning_codes array<string>, kafka_timestamp timestamp")
    formats = spark.createDataFrame([(TOPIC, part, offset, source) for part, offset, source in FORMATS],
                                    "kafka_topic string, kafka_partition int, kafka_offset long, source_format string")
    events = spark.createDataFrame([(DAY, claim_id, freq) for claim_id, freq in EVENTS],
                                   "ingest_date date, claim_id string, frequency_code string")
    return {"silver": silver, "quarantine": quarantine, "formats": formats, "events": events}


def test_intake_per_day_and_source_format(inputs: dict[str, DataFrame]) -> None:
    frame = frames.intake_daily_frame(inputs["silver"], inputs["quarantine"], inputs["formats"], inputs["events"],
                                      updated_at=NOW)

    assert frame.columns == table_columns()["intake_daily"]
    got = {(r.source_format): (r.valid_claims, r.quarantined_claims, r.replacements, r.voids)
           for r in frame.collect() if r.intake_date == DAY}
    assert got == {PRO: (2, 2, 1, 1), INST: (1, 1, 0, 0), frames.UNKNOWN_SOURCE: (0, 1, 0, 1)}


def test_field_quality_buckets_by_hand(inputs: dict[str, DataFrame]) -> None:
    frame = frames.field_quality_frame(inputs["silver"], inputs["quarantine"], inputs["formats"], updated_at=NOW)

    assert frame.columns == table_columns()["field_quality"]
    rows = {(r.source_format, r.field_name): (r.valid_count, r.invalid_count, r.missing_count)
            for r in frame.collect()}
    # 837P: 4 claims judged (A, B, Q1, Q2); Q3 has no catalogued code and no format, so it is left out.
    assert rows[(PRO, "payer.payer_id")] == (3, 0, 1)  # A's MISSING_PAYER warning: missing
    assert rows[(PRO, "*.npi")] == (3, 1, 0)  # Q1's NPI_FORMAT error: invalid; B's check-digit warning: still valid
    assert rows[(PRO, "billing_provider.npi")] == (3, 0, 1)  # Q2
    assert rows[(PRO, "place_of_service")] == (3, 1, 0)  # Q2
    assert rows[(PRO, "diagnoses")] == (4, 0, 0)
    # 837I: C and Q4; Q4 is rejected for its type of bill and also misses the payer (a warning it carried).
    assert rows[(INST, "type_of_bill")] == (1, 1, 0)
    assert rows[(INST, "payer.payer_id")] == (1, 0, 1)
    assert not [key for key in rows if key[0] == frames.UNKNOWN_SOURCE]
    for (source, _field), (valid, invalid, missing) in rows.items():
        assert valid + invalid + missing == {PRO: 4, INST: 2}[source]  # every field of every judged claim, once


def test_reference_tables_come_from_the_code_sets(spark: SparkSession) -> None:
    codesets = load_codesets()
    tables = frames.reference_frames(spark.createDataFrame([(1,)], "x int"), codesets)

    procedures = {r.procedure_code: r for r in tables["ref_procedures"].collect()}
    specialties = {r.taxonomy: r for r in tables["ref_specialties"].collect()}
    assert tables["ref_procedures"].columns == table_columns()["ref_procedures"]
    assert procedures["99215"].em_level == 5
    assert procedures["99211"].em_level == 1
    not_em = next(code for code, entries in codesets.procedures.entries.items()
                  if not entries[-1].extra.get("em_level"))
    assert procedures[not_em].em_level is None
    assert set(procedures) == set(codesets.procedures.entries)
    assert set(specialties) == {profile.taxonomy for profile in codesets.specialties}
    for profile in codesets.specialties:
        weights = profile.em_level_weights
        expected = weights.get(5, 0.0) / (sum(weights.values()) or 1.0)
        assert specialties[profile.taxonomy].expected_level5_share == pytest.approx(expected)
        assert specialties[profile.taxonomy].specialty == profile.specialty
