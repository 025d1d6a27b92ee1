"""The Spark screens (grouped by the keys they compare, no collect) raise the same (claim, rule) alerts as the Python
reference screens of libs.fraud.rules on the same claims, with the same facts in their details."""

from __future__ import annotations

from collections import Counter

import pytest
from pyspark.sql import SparkSession

from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.fraud.rules import screen_batch
from libs.fraud.spark import claims_frame, screen_batch_spark
from libs.generator import GeneratorConfig, generate_claims
from libs.model import Claim

# Few providers and a high fraud rate: 400 claims on which every rule fires, with replacements and voids in the mix.
CONFIG = GeneratorConfig(count=400, seed=7, defect_rate=0.0, fraud_rate=0.3, replacement_rate=0.03, void_rate=0.02,
                         providers=12)


@pytest.fixture(scope="module")
def claims() -> list[Claim]:
    return [claim for claim, _labels in generate_claims(CONFIG)]


@pytest.fixture(scope="module")
def both(spark: SparkSession, claims: list[Claim]) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    python = {(alert.claim_id, alert.rule.value) for alert in screen_batch(claims, load_codesets())}
    # Arrival order is the list order, as the batch reads silver by Kafka coordinates.
    rows = [(claim.model_dump_json(exclude_none=True), index) for index, claim in enumerate(claims)]
    frame = claims_frame(spark.createDataFrame(rows, "claim_json string, kafka_offset long"))
    spark_alerts = {(row["claim_id"], row["rule"]): row["detail"]
                    for row in screen_batch_spark(frame, load_codesets()).collect()}
    return python, spark_alerts


def test_every_rule_fires_on_the_fixture(both):
    python, _ = both
    assert {rule for _, rule in python} == {code.value for code in FraudCode}


def test_spark_and_python_raise_the_same_alerts(both):
    python, spark_alerts = both
    assert set(spark_alerts) == python, (
        f"only Python: {sorted(python - set(spark_alerts))[:5]}, only Spark: {sorted(set(spark_alerts) - python)[:5]}")
    assert Counter(rule for _, rule in spark_alerts) == Counter(rule for _, rule in python)


def test_spark_details_name_the_compared_facts(both, claims):
    _, spark_alerts = both
    by_id = {claim.claim_id: claim for claim in claims}
    for (claim_id, rule), detail in spark_alerts.items():
        claim = by_id[claim_id]
        if rule == FraudCode.EXACT_DUPLICATE.value:
            assert claim.billing_provider is not None
            assert f"billing NPI {claim.billing_provider.npi}" in detail
            assert "as claim " in detail
        elif rule == FraudCode.IMPOSSIBLE_DAY.value:
            assert "timed minutes on" in detail
        elif rule == FraudCode.UPCODING.value:
            assert claim.rendering_provider is not None
            assert f"rendering NPI {claim.rendering_provider.npi}" in detail
        elif rule == FraudCode.UNBUNDLING.value:
            assert "is bundled into" in detail
        member = claim.member_key()
        assert member is None or member not in detail  # never the member ID
