"""Run the rules over a stream of adapter output and keep the counts an operator reads at the end.

Why here and not in the CLI: `claims validate`, the benchmark and the batch job all turn a stream of
`Claim | Rejection` into per-claim results plus a summary; keeping that loop pure (results and rejections go to
callbacks) lets it be tested without files and reused without a terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from libs.codesets import CodeSets, load_codesets
from libs.model import Claim, Rejection
from libs.validation.catalog import ReasonCode, Severity
from libs.validation.issues import ValidationResult
from libs.validation.rules import validate_claim


@dataclass
class ValidationSummary:
    """Counts over one run: every input record is either a validated claim or an adapter rejection."""

    claims: int = 0
    valid: int = 0
    invalid: int = 0
    claims_with_warnings: int = 0
    rejections: int = 0
    # Claims affected per reason code (a claim with three bad lines counts once) and issues per code.
    claims_by_code: Counter[ReasonCode] = field(default_factory=Counter)
    issues_by_code: Counter[ReasonCode] = field(default_factory=Counter)
    rejections_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def records(self) -> int:
        """Every input record accounted for: claims plus rejections."""
        return self.claims + self.rejections

    def add_result(self, result: ValidationResult) -> None:
        """Count one validated claim."""
        self.claims += 1
        if result.is_valid:
            self.valid += 1
        else:
            self.invalid += 1
        if not result.issues:
            return
        codes = result.codes
        self.issues_by_code.update(codes)
        self.claims_by_code.update(set(codes))
        if any(issue.severity is Severity.WARNING for issue in result.issues):
            self.claims_with_warnings += 1

    def add_rejection(self, rejection: Rejection) -> None:
        """Count one record the adapters could not turn into a claim."""
        self.rejections += 1
        self.rejections_by_reason[rejection.reason] += 1

    def top_codes(self, limit: int = 10) -> list[tuple[ReasonCode, int, int]]:
        """(code, claims affected, issues) for the most frequent codes, most claims first."""
        return [(code, claims, self.issues_by_code[code]) for code, claims in self.claims_by_code.most_common(limit)]


def validate_records(
    records: Iterable[Claim | Rejection],
    as_of: date,
    on_result: Callable[[ValidationResult], None],
    on_rejection: Callable[[Rejection], None],
    codesets: CodeSets | None = None,
) -> ValidationSummary:
    """Validate every claim in `records`, pass each result and rejection on, and return the counts."""
    sets = codesets if codesets is not None else load_codesets()
    summary = ValidationSummary()
    for record in records:
        if isinstance(record, Rejection):
            summary.add_rejection(record)
            on_rejection(record)
        else:
            result = validate_claim(record, as_of, sets)
            summary.add_result(result)
            on_result(result)
    return summary
