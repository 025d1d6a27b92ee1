"""The screens find the generator's injected fraud with high recall and few false positives, and leak no PHI."""

from __future__ import annotations

from collections import Counter

import pytest

from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.fraud.rules import Alert, screen_batch
from libs.generator import GeneratorConfig, LabelKind, generate_claims
from libs.model import Claim

CONFIG = GeneratorConfig(count=5000, seed=21, defect_rate=0.0, fraud_rate=0.15)


@pytest.fixture(scope="module")
def screened() -> tuple[list[Claim], dict[str, set[str]], list[Alert]]:
    claims: list[Claim] = []
    labels: dict[str, set[str]] = {}
    for claim, claim_labels in generate_claims(CONFIG):
        claims.append(claim)
        labels[claim.claim_id] = {label.rule for label in claim_labels if label.kind is LabelKind.FRAUD}
    return claims, labels, screen_batch(claims, load_codesets())


def test_every_scenario_is_injected_and_found(screened):
    _, labels, alerts = screened
    alerted = {(alert.claim_id, alert.rule.value) for alert in alerts}
    injected: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for claim_id, rules in labels.items():
        for rule in rules:
            injected[rule] += 1
            found[rule] += (claim_id, rule) in alerted
    assert set(injected) == {code.value for code in FraudCode}
    for rule, count in injected.items():
        assert found[rule] / count >= 0.95, f"{rule}: found {found[rule]} of {count}"


def test_false_positives_are_rare(screened):
    claims, labels, alerts = screened
    false = [alert for alert in alerts if alert.rule.value not in labels[alert.claim_id]]
    assert len(false) <= 0.002 * len(claims), [alert.to_dict() for alert in false[:5]]


def test_alert_details_carry_no_phi(screened):
    claims, _, alerts = screened
    by_id = {claim.claim_id: claim for claim in claims}
    for alert in alerts:
        claim = by_id[alert.claim_id]
        for person in (claim.patient, claim.subscriber):
            if person is None:
                continue
            secrets = [person.member_id, person.last_name, person.first_name, person.phone]
            secrets += [str(d) for d in (person.birth_date, person.death_date) if d is not None]
            assert not [s for s in secrets if s and s in alert.detail], alert.to_dict()
