"""Parity: the Spark validation expressions yield the same reason codes as the Python rules, claim by claim.

The claims are generated with a high defect rate (every reason code injected many times) and protected by the PHI
protector exactly as the producer sends them; Python judges the plaintext claims, Spark the protected messages.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import orjson
import pytest

from libs.codesets import load_codesets
from libs.generator import GeneratorConfig, generate_claims
from libs.phi import PhiProtector
from libs.settings import load_settings
from libs.streaming.parse import parse_messages
from libs.streaming.validation import validate_messages
from libs.validation import validate_claim
from libs.validation.catalog import ReasonCode
from tests.spark_helpers import kafka_rows

pytestmark = pytest.mark.spark
AS_OF = date(2026, 11, 30)


@pytest.fixture(scope="module")
def generated() -> list:
    config = GeneratorConfig(count=3000, seed=11, defect_rate=0.6, fraud_rate=0.05, anchor_date=date(2026, 10, 31))
    return [claim for claim, _labels in generate_claims(config)]


def test_spark_and_python_report_the_same_codes(spark, refdata, generated, tmp_path):
    settings = load_settings(security={"local_key_file": tmp_path / "keyring.json", "audit_log": tmp_path / "a.jsonl"})
    protector = PhiProtector.from_settings(settings)
    codesets = load_codesets()
    python_codes = {
        claim.claim_id: sorted({issue.code.value for issue in validate_claim(claim, AS_OF, codesets).issues})
        for claim in generated
    }
    values = [orjson.dumps(protector.protect(claim)) for claim in generated]
    checked = validate_messages(parse_messages(kafka_rows(spark, values)), refdata, AS_OF)
    spark_codes = {
        row["claim_id"]: sorted(set(row["error_codes"]) | set(row["warning_codes"]))
        for row in checked.select("claim.claim_id", "error_codes", "warning_codes").collect()
    }
    assert set(spark_codes) == set(python_codes)
    differences = {cid: (python_codes[cid], spark_codes[cid]) for cid in python_codes
                   if python_codes[cid] != spark_codes[cid]}
    assert not differences, f"{len(differences)} claims differ, e.g. {list(differences.items())[:5]}"
    fired = Counter(code for codes in python_codes.values() for code in codes)
    # The comparison is only meaningful if the defects exercised (nearly) every rule.
    assert len(fired) >= len(ReasonCode) - 2, f"codes never fired: {set(ReasonCode) - set(fired)}"
