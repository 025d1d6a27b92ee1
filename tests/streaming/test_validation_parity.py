"""Parity: the stream judges protected messages exactly as the Python rules judge the plaintext claims.

The stream runs the Python rules and per-claim screens inside Spark (libs.streaming.check, in Arrow batches) on the
protected messages; `claims validate` and the daily batch run them on plaintext claims and on silver's records. The
claims are generated with a high defect rate (every reason code injected many times) and a high fraud rate, and
protected exactly as the producer sends them.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import orjson
import pytest
from pyspark.sql import functions as F  # noqa: N812

from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.fraud.rules import BATCH_SCREENS, screen_claim
from libs.fraud.spark import screen_claims_per_claim
from libs.generator import GeneratorConfig, generate_claims
from libs.lake.readers import claim_struct
from libs.lake.schema import CORRUPT_RECORD_COLUMN
from libs.phi import PhiProtector
from libs.settings import load_settings
from libs.streaming.parse import check_messages
from libs.validation import validate_claim
from libs.validation.catalog import ReasonCode
from tests.spark_helpers import kafka_rows

pytestmark = pytest.mark.spark
AS_OF = date(2026, 11, 30)
PER_CLAIM_SCREENS = {code for code in FraudCode if code not in BATCH_SCREENS}


@pytest.fixture(scope="module")
def generated() -> list:
    config = GeneratorConfig(count=3000, seed=11, defect_rate=0.6, fraud_rate=0.15, anchor_date=date(2026, 10, 31))
    return [claim for claim, _labels in generate_claims(config)]


@pytest.fixture(scope="module")
def protected(generated, tmp_path_factory) -> list[bytes]:
    home = tmp_path_factory.mktemp("parity-keys")
    settings = load_settings(security={"local_key_file": home / "keyring.json", "audit_log": home / "audit.jsonl"})
    protector = PhiProtector.from_settings(settings)
    return [orjson.dumps(protector.protect(claim)) for claim in generated]


@pytest.fixture(scope="module")
def checked(spark, protected):
    """The stream's checked rows of the protected messages (the real mapInArrow checker), collected once."""
    frame = check_messages(kafka_rows(spark, protected), AS_OF)
    return frame.select("claim_id", "is_valid", "error_codes", "warning_codes", "alerts").collect()


def test_stream_reports_the_codes_of_the_python_rules_claim_by_claim(generated, checked):
    codesets = load_codesets()
    python_codes = {
        claim.claim_id: sorted({issue.code.value for issue in validate_claim(claim, AS_OF, codesets).issues})
        for claim in generated
    }
    stream_codes = {row["claim_id"]: sorted({*row["error_codes"], *row["warning_codes"]}) for row in checked}
    assert set(stream_codes) == set(python_codes)
    differences = {cid: (python_codes[cid], stream_codes[cid]) for cid in python_codes
                   if python_codes[cid] != stream_codes[cid]}
    assert not differences, f"{len(differences)} claims differ, e.g. {list(differences.items())[:5]}"
    fired = Counter(code for codes in python_codes.values() for code in codes)
    # The comparison is only meaningful if the defects exercised every rule.
    assert set(fired) == {code.value for code in ReasonCode}, f"never fired: {set(ReasonCode) - set(fired)}"


def test_per_claim_screens_agree_between_stream_batch_and_plaintext(spark, generated, protected, checked):
    codesets = load_codesets()
    valid_ids = {row["claim_id"] for row in checked if row["is_valid"]}
    stream = {(row["claim_id"], alert["rule"], alert["detail"]) for row in checked for alert in row["alerts"]}
    # The daily batch's path (libs.fraud.spark, as screen_day_alerts runs it) on silver's claim_json: the same
    # protected messages, as silver keeps them.
    silver = spark.createDataFrame(
        [(value.decode(),) for value in protected if orjson.loads(value)["claim_id"] in valid_ids], "claim_json string")
    batch = {(row["claim_id"], row["rule"], row["detail"])
             for row in screen_claims_per_claim(silver, codesets).collect()}
    plaintext = {(a.claim_id, a.rule.value, a.detail) for claim in generated if claim.claim_id in valid_ids
                 for a in screen_claim(claim, codesets)}
    assert stream == batch == plaintext
    assert {rule for _cid, rule, _detail in stream} == {code.value for code in PER_CLAIM_SCREENS}


def test_every_message_the_stream_accepts_is_readable_by_the_lake_schema(spark, protected):
    # Silver keeps the accepted claim's JSON; readers parse it with the schema derived from the same model. Values
    # at the edges of what the strict parser accepts must parse too, or silver would hold claims nobody can read.
    base = orjson.loads(protected[0])
    edges = [
        {**base, "claim_id": "EDGE-EXP", "total_charge": "1.5e2"},
        {**base, "claim_id": "EDGE-NUMBER", "total_charge": 150.25},
        {**base, "claim_id": "EDGE-SPACE", "total_charge": " 150.25 "},
        {**base, "claim_id": "EDGE-INT", "total_charge": 150},
    ]
    values = [*protected[:500], *(orjson.dumps(edge) for edge in edges)]
    frame = check_messages(kafka_rows(spark, values), AS_OF).where(F.col("message_reason").isNull())
    parsed = frame.select("claim_id", claim_struct(F.col("value").cast("string")).alias("claim"))
    unreadable = parsed.where(F.col(f"claim.{CORRUPT_RECORD_COLUMN}").isNotNull()).select("claim_id").collect()
    assert parsed.count() >= 500
    assert [row["claim_id"] for row in unreadable] == []
