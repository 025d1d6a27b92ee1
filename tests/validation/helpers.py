"""Small builders for rule tests: change one line of a factory claim, read issues as (code, field) pairs."""

from __future__ import annotations

from datetime import date
from typing import Any

from libs.model import Claim
from libs.validation import ValidationResult, validate_claim
from libs.validation.catalog import ReasonCode
from tests.factories import AS_OF


def with_line(claim: Claim, index: int, **changes: Any) -> Claim:
    """`claim` with line `index` changed."""
    lines = list(claim.lines)
    lines[index] = lines[index].model_copy(update=changes)
    return claim.model_copy(update={"lines": lines})


def with_all_dates(claim: Claim, day: date) -> Claim:
    """`claim` with the header and every line dated `day`."""
    lines = [line.model_copy(update={"service_date_from": day, "service_date_to": day}) for line in claim.lines]
    return claim.model_copy(update={"service_date_from": day, "service_date_to": day, "lines": lines})


def run(claim: Claim, as_of: date = AS_OF) -> ValidationResult:
    return validate_claim(claim, as_of)


def pairs(result: ValidationResult) -> set[tuple[ReasonCode, str]]:
    return {(issue.code, issue.field) for issue in result.issues}
