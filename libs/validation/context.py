"""Per-claim facts the rules share, computed once per claim instead of once per rule.

Why: several rules need the same derived dates (first and last service date, the date that decides ICD-9 versus
ICD-10, the date a line's codes are judged on). Deriving them once keeps each rule a short pure function and keeps the
engine fast enough for the streaming path.

Facts that come from PHI (the patient's age at the first service) are read from the non-identifying derived block
(libs.phi.derived): the producer computes it from plaintext before protecting the record, and for a plaintext claim it
is computed here the same way. So one rule gives the same verdict on a plaintext claim and on its protected record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from libs.codesets import CodeSets
from libs.model import Claim, ServiceLine
from libs.phi.derived import PhiDerived, derive_phi

# Claims older than this many years (before the as-of date) are out of scope for adjudication.
MAX_CLAIM_AGE_YEARS = 10


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything a rule may consult besides the claim itself."""

    as_of: date
    codesets: CodeSets
    oldest_allowed: date
    first_service_date: date | None
    last_service_date: date | None
    # The date that decides which diagnosis code set applies: the statement 'through' date (service_date_to),
    # else the latest line date, else the statement 'from' date.
    diagnosis_date: date | None
    # Whole years from the patient's (or subscriber-patient's) birth to the first service date; negative exactly when
    # the birth date is later. None when either date is unknown.
    patient_age_years: int | None


@lru_cache(maxsize=64)
def years_before(as_of: date, years: int) -> date:
    """`as_of` moved back `years` calendar years; 29 February falls back to the 28th."""
    try:
        return as_of.replace(year=as_of.year - years)
    except ValueError:
        return as_of.replace(year=as_of.year - years, day=28)


def line_service_date(claim: Claim, line: ServiceLine) -> date | None:
    """The date a line's codes are judged on: its own from date, else the claim's statement from date."""
    return line.service_date_from or claim.service_date_from


def build_context(claim: Claim, as_of: date, codesets: CodeSets, derived: PhiDerived | None = None, *,
                  own_period: bool = False) -> RuleContext:
    """Derive the shared per-claim dates in one pass over the header and the lines.

    `derived` is the protected record's `phi_derived` block; without it (a plaintext claim) it is derived here.
    With `own_period` (extract profiles, libs.validation.profiles) the ten-year window ends at the claim's receipt
    date, else its last service date (never after `as_of`), instead of at `as_of`.
    """
    earliest: date | None = None
    latest_line: date | None = None
    for line in claim.lines:
        for value in (line.service_date_from, line.service_date_to):
            if value is None:
                continue
            if latest_line is None or value > latest_line:
                latest_line = value
            if earliest is None or value < earliest:
                earliest = value
    latest = latest_line
    for value in (claim.service_date_from, claim.service_date_to):
        if value is None:
            continue
        if latest is None or value > latest:
            latest = value
        if earliest is None or value < earliest:
            earliest = value
    window_end = as_of
    if own_period:
        window_end = min(claim.source.received_date or latest or as_of, as_of)
    return RuleContext(
        as_of=as_of,
        codesets=codesets,
        oldest_allowed=years_before(window_end, MAX_CLAIM_AGE_YEARS),
        first_service_date=earliest,
        last_service_date=latest,
        diagnosis_date=claim.service_date_to or latest_line or claim.service_date_from,
        patient_age_years=(derived if derived is not None else derive_phi(claim))["patient_age_years"],
    )
