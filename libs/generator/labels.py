"""Ground-truth labels for generated claims.

Why labels exist: the generator knows exactly which claims it broke (defects) or made suspicious (fraud scenarios).
Writing that knowledge next to the claims lets tests and benchmarks measure the validation rules (every defect must be
caught by its own reason code) and the fraud screens (recall and false positives) against a known answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class LabelKind(StrEnum):
    """A defect makes a claim invalid (a validation reason code); a fraud label marks a valid but suspicious claim."""

    DEFECT = "defect"
    FRAUD = "fraud"


@dataclass(frozen=True, slots=True)
class Label:
    """One injected condition on one claim: `rule` is a ReasonCode value (defect) or a FraudCode value (fraud)."""

    claim_id: str
    kind: LabelKind
    rule: str

    def to_dict(self) -> dict[str, str]:
        """The labels.ndjson shape: {"claim_id", "kind", "rule"}."""
        return {"claim_id": self.claim_id, "kind": self.kind.value, "rule": self.rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Label:
        """Read one labels.ndjson record back; an unknown kind raises ValueError naming it."""
        try:
            kind = LabelKind(data["kind"])
        except ValueError as exc:
            expected = ", ".join(k.value for k in LabelKind)
            raise ValueError(f"label kind must be one of {expected}, found {data['kind']!r}") from exc
        return cls(claim_id=str(data["claim_id"]), kind=kind, rule=str(data["rule"]))
