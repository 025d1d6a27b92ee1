"""Amount rules: no negative charges or totals, header total equal to the sum of line charges, allowed <= billed,
paid <= allowed.

Two source-specific behaviours, both deliberate:
- FHIR ExplanationOfBenefit lines may carry negative amounts: an adjudicated EOB reverses a line by repeating it with
  negated submitted/eligible/benefit amounts (the CARIN Blue Button examples do this), and the header total is the sum
  including the reversals. So on `fhir-eob` claims AMOUNT_NEGATIVE applies to the header amounts only, and on any
  reversal line (negative charge) the allowed/paid comparisons are made on magnitudes.
- CMS DE-SynPUF amounts are rounded and deliberately perturbed field by field to protect beneficiaries, so their
  header total and line sum never agree to the cent. For `synpuf-*` claims the total may differ from the line sum by
  up to $10.00 per charged line or 5% of the header total, whichever is larger.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from libs.model import Claim, ServiceLine, SourceFormat
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import rule

SYNPUF_TOLERANCE_PER_LINE = Decimal("10.00")
SYNPUF_TOLERANCE_RATIO = Decimal("0.05")
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_SYNPUF_FORMATS = frozenset(
    {SourceFormat.SYNPUF_CARRIER, SourceFormat.SYNPUF_INPATIENT, SourceFormat.SYNPUF_OUTPATIENT}
)
_HEADER_AMOUNTS = ("total_charge", "allowed_amount", "paid_amount")
_LINE_AMOUNTS = ("charge", "allowed_amount", "paid_amount")


def total_charge_tolerance(claim: Claim, charged_lines: int) -> Decimal:
    """How far the header total may be from the line sum: zero (to the cent) except for perturbed SynPUF data."""
    if claim.source.format not in _SYNPUF_FORMATS:
        return _ZERO
    by_ratio = abs(claim.total_charge or _ZERO) * SYNPUF_TOLERANCE_RATIO
    return max(SYNPUF_TOLERANCE_PER_LINE * charged_lines, by_ratio)


@rule(R.AMOUNT_NEGATIVE)
def amounts_not_negative(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Header and line charges, allowed and paid amounts must not be negative (FHIR EOB lines excepted)."""
    header = (claim.total_charge, claim.allowed_amount, claim.paid_amount)
    for name, value in zip(_HEADER_AMOUNTS, header, strict=True):
        if value is not None and value < 0:
            yield make_issue(R.AMOUNT_NEGATIVE, name, f"expected {name.replace('_', ' ')} >= 0; found {value}")
    if claim.source.format is SourceFormat.FHIR_EOB:
        return
    for index, line in enumerate(claim.lines):
        amounts = (line.charge, line.allowed_amount, line.paid_amount)
        for name, value in zip(_LINE_AMOUNTS, amounts, strict=True):
            if value is not None and value < 0:
                yield make_issue(R.AMOUNT_NEGATIVE, f"lines[{index}].{name}",
                                 f"line {line.line_number}: expected {name.replace('_', ' ')} >= 0; found {value}")


@rule(R.TOTAL_CHARGE_MISMATCH)
def total_charge_matches_lines(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The header total charge must equal the sum of the line charges (skipped when no line has a charge)."""
    total = claim.total_charge
    if total is None:
        return
    charges = [line.charge for line in claim.lines if line.charge is not None]
    if not charges:
        return
    line_sum = sum(charges, _ZERO)
    if line_sum == total:  # the common case, decided without rounding
        return
    difference = abs(total - line_sum).quantize(_CENT)
    tolerance = total_charge_tolerance(claim, len(charges))
    if difference > tolerance:
        allowance = "to the cent" if tolerance == 0 else f"within {tolerance.quantize(_CENT)} (SynPUF tolerance)"
        yield make_issue(R.TOTAL_CHARGE_MISMATCH, "total_charge",
                         f"expected the total charge to equal the sum of {len(charges)} line charges {line_sum} "
                         f"{allowance}; found {total}")


def _exceeds(amount: Decimal, limit: Decimal, reversal: bool) -> bool:
    """`amount` > `limit`, comparing magnitudes on a reversal line (where both are negated)."""
    return abs(amount) > abs(limit) if reversal else amount > limit


def _is_reversal(line: ServiceLine) -> bool:
    return line.charge is not None and line.charge < 0


@rule(R.ALLOWED_EXCEEDS_BILLED)
def allowed_within_billed(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Where both are present, the allowed amount must not exceed the billed charge (header and lines)."""
    allowed, billed = claim.allowed_amount, claim.total_charge
    if allowed is not None and billed is not None and _exceeds(allowed, billed, billed < 0):
        yield make_issue(R.ALLOWED_EXCEEDS_BILLED, "allowed_amount",
                         f"expected the allowed amount at most the total charge {billed}; found {allowed}")
    for index, line in enumerate(claim.lines):
        allowed, billed = line.allowed_amount, line.charge
        if allowed is not None and billed is not None and _exceeds(allowed, billed, billed < 0):
            yield make_issue(R.ALLOWED_EXCEEDS_BILLED, f"lines[{index}].allowed_amount",
                             f"line {line.line_number}: expected the allowed amount at most the charge {billed}; "
                             f"found {allowed}")


@rule(R.PAID_EXCEEDS_ALLOWED)
def paid_within_allowed(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Where both are present, the paid amount must not exceed the allowed amount (header and lines)."""
    paid, allowed = claim.paid_amount, claim.allowed_amount
    if paid is not None and allowed is not None and _exceeds(paid, allowed, allowed < 0):
        yield make_issue(R.PAID_EXCEEDS_ALLOWED, "paid_amount",
                         f"expected the paid amount at most the allowed amount {allowed}; found {paid}")
    for index, line in enumerate(claim.lines):
        paid, allowed = line.paid_amount, line.allowed_amount
        if paid is not None and allowed is not None and _exceeds(paid, allowed, _is_reversal(line) or allowed < 0):
            yield make_issue(R.PAID_EXCEEDS_ALLOWED, f"lines[{index}].paid_amount",
                             f"line {line.line_number}: expected the paid amount at most the allowed amount "
                             f"{allowed}; found {paid}")


RULES = (amounts_not_negative, total_charge_matches_lines, allowed_within_billed, paid_within_allowed)
