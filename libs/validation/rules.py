"""The rule set: every validation rule, in report order, and the engine that runs them over a claim.

Why one assembly point: the rule groups live in small modules (required fields, NPIs, diagnoses, line codes, header,
dates, amounts); this module is the single list the engine, the coverage test and `claims rules` read. A claim is
*invalid* when at least one issue is an error; warnings are reported and the claim flows on.

Rules are pure functions of the claim, the as-of date and the code sets: no I/O, no clock, no globals that change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from libs.codesets import CodeSets, load_codesets
from libs.model import Claim
from libs.phi.derived import PhiDerived
from libs.validation import amounts, dates, diagnoses, header, lines, npi, required
from libs.validation.catalog import ReasonCode, Severity
from libs.validation.context import build_context
from libs.validation.issues import Issue, ValidationResult, ValidationStatus
from libs.validation.profiles import PROFILE_BY_FORMAT, SUBMISSION, apply_profile
from libs.validation.registry import Rule

RULES: tuple[Rule, ...] = (
    *required.RULES,
    *npi.RULES,
    *diagnoses.RULES,
    *lines.RULES,
    *header.RULES,
    *dates.RULES,
    *amounts.RULES,
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

# The bare check functions, bound once: the engine loop is the hot path of streaming validation.
_CHECKS = tuple(rule.check for rule in RULES)


def rules_for(code: ReasonCode) -> list[Rule]:
    """The rules that may report `code`."""
    return [rule for rule in RULES if code in rule.codes]


def validate_claim(
    claim: Claim, as_of: date, codesets: CodeSets | None = None, derived: PhiDerived | None = None
) -> ValidationResult:
    """Run every rule over `claim` as of `as_of`; the claim is invalid when any issue is an error.

    `derived` is the `phi_derived` block of a protected record (whose claim has no PHI left, see libs.phi.view);
    omit it for a plaintext claim. The claim's source format selects its rule profile (libs.validation.profiles):
    submissions take the fast path below unchanged; extracts have some rules reported as warnings or skipped.
    """
    profile = PROFILE_BY_FORMAT.get(claim.source.format, SUBMISSION)
    context = build_context(claim, as_of, codesets if codesets is not None else load_codesets(), derived,
                            own_period=profile.own_period)
    issues: list[Issue] = []
    for check in _CHECKS:
        issues.extend(check(claim, context))
    if not profile.is_submission:
        issues = apply_profile(profile, issues)
    invalid = any(issue.severity is Severity.ERROR for issue in issues)
    return ValidationResult(claim.claim_id, ValidationStatus.INVALID if invalid else ValidationStatus.VALID, issues)


def validate_claims(
    claims: Iterable[Claim], as_of: date, codesets: CodeSets | None = None
) -> Iterator[ValidationResult]:
    """Validate a stream of claims lazily, loading the code sets once."""
    sets = codesets if codesets is not None else load_codesets()
    for claim in claims:
        yield validate_claim(claim, as_of, sets)
