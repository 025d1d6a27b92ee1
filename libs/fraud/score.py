"""Precision and recall of every fraud screen on labelled generated claims (`claims fraud score`).

Why measured this way: the generator injects each fraud scenario with a label on the claims it alters
(libs.generator.fraud), so for every rule the alerts can be scored against ground truth: recall = labelled claims
alerted / labelled claims, precision = alerted claims that carry the label / alerted claims. Targets (issue 11):
recall >= 0.95 and precision >= 0.90 per rule at fraud rates of 1 % and 15 %. The screens are the Python reference
(libs.fraud.rules.screen_batch); the Spark screens give the same alerts (tests/fraud/test_spark_screens.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from libs.codesets import CodeSets, load_codesets
from libs.fraud.catalog import FraudCode
from libs.fraud.rules import screen_batch
from libs.generator import GeneratorConfig, LabelKind, generate_claims


@dataclass(frozen=True)
class RuleScore:
    """One rule's confusion counts and rates (None when undefined: nothing injected or nothing alerted)."""

    rule: str
    injected: int
    alerted: int
    true_positives: int

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.injected if self.injected else None

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.alerted if self.alerted else None

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "injected": self.injected, "alerted": self.alerted,
                "true_positives": self.true_positives, "recall": self.recall, "precision": self.precision}


def score(count: int, seed: int, fraud_rate: float, codesets: CodeSets | None = None) -> list[RuleScore]:
    """Generate `count` labelled claims (no data defects), screen them, score every rule."""
    config = GeneratorConfig(count=count, seed=seed, defect_rate=0.0, fraud_rate=fraud_rate)
    claims = []
    labels: dict[str, set[str]] = {}
    for claim, claim_labels in generate_claims(config):
        claims.append(claim)
        labels[claim.claim_id] = {label.rule for label in claim_labels if label.kind is LabelKind.FRAUD}
    alerted = {(alert.claim_id, alert.rule.value) for alert in screen_batch(claims, codesets or load_codesets())}
    injected = Counter(rule for rules in labels.values() for rule in rules)
    alerts = Counter(rule for _, rule in alerted)
    hits = Counter(rule for claim_id, rule in alerted if rule in labels.get(claim_id, set()))
    return [RuleScore(code.value, injected[code.value], alerts[code.value], hits[code.value]) for code in FraudCode]
