"""What the rule engine reports: one `Issue` per finding and one `ValidationResult` per claim.

Why plain slotted dataclasses and not pydantic models: the engine builds these for every claim on the hot path
(streaming and `claims validate` aim at tens of thousands of claims per second per core), and the values are already
typed by the canonical model, so re-validating them would only cost time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from libs.validation.catalog import RULES, ReasonCode, Severity

_SEVERITY: dict[ReasonCode, Severity] = {spec.code: spec.severity for spec in RULES}


class ValidationStatus(StrEnum):
    """A claim is invalid when at least one issue is an error; warnings alone leave it valid."""

    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: the reason code, its catalog severity, the concrete field path and a PHI-free message.

    `field` is a concrete path into the canonical claim with 0-based list indexes, e.g. `lines[1].procedure_code`
    (the second line) or `rendering_provider.npi`. Messages may quote codes, amounts and service dates, never names,
    member IDs, birth dates or addresses.
    """

    code: ReasonCode
    severity: Severity
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON shape used on stdout, in the quarantine table and on the quality topic."""
        return {"code": self.code.value, "severity": self.severity.value, "field": self.field, "message": self.message}


def make_issue(code: ReasonCode, field_path: str, message: str) -> Issue:
    """An issue whose severity comes from the catalog, so a rule can never disagree with the documentation."""
    return Issue(code, _SEVERITY[code], field_path, message)


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict on one claim."""

    claim_id: str
    status: ValidationStatus
    issues: list[Issue] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        """True when no issue is an error."""
        return self.status is ValidationStatus.VALID

    @property
    def errors(self) -> list[Issue]:
        """The issues that make the claim invalid."""
        return [issue for issue in self.issues if issue.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        """The issues reported without rejecting the claim."""
        return [issue for issue in self.issues if issue.severity is Severity.WARNING]

    @property
    def codes(self) -> list[ReasonCode]:
        """The reason codes found, in report order (with repeats)."""
        return [issue.code for issue in self.issues]

    def to_dict(self) -> dict[str, Any]:
        """The JSON line `claims validate` prints for this claim."""
        return {
            "claim_id": self.claim_id,
            "status": self.status.value,
            "issues": [issue.to_dict() for issue in self.issues],
        }
