"""Header rules: place of service, type of bill, claim frequency, replacement/void references and consistency checks.

The type of bill (UB-04 form locator 4) has three digits: facility type, bill classification and claim frequency.
X12 837I sends the first two in CLM05-1 and the frequency in CLM05-3; some sources write a leading zero ('0131'),
which is accepted. The frequency digit must agree with the claim's frequency code, because replacements (7) and voids
(8) are routed on the frequency code and must point at the claim they replace (REF*F8).
"""

from __future__ import annotations

from collections.abc import Iterator

from libs.model import Claim, ClaimType, FrequencyCode
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext, line_service_date
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import blank, rule, show_code

_NEEDS_ORIGINAL = frozenset({FrequencyCode.REPLACEMENT.value, FrequencyCode.VOID.value})


def normalize_type_of_bill(type_of_bill: str) -> str | None:
    """The 3-digit type of bill, accepting the 4-digit form with a leading zero; None when of another shape."""
    digits = type_of_bill.strip()
    if len(digits) == 4 and digits[0] == "0":
        digits = digits[1:]
    return digits if len(digits) == 3 and digits.isascii() and digits.isdigit() else None


@rule(R.POS_INVALID)
def place_of_service_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Header and line places of service must be CMS codes in effect on the date of service."""
    table = ctx.codesets.place_of_service
    header_pos = claim.place_of_service
    if header_pos is not None and not blank(header_pos):
        on = claim.service_date_from or ctx.first_service_date
        if not table.is_valid(header_pos, on):
            yield make_issue(R.POS_INVALID, "place_of_service",
                             f"expected a place of service from {table.version} in effect on "
                             f"{on.isoformat() if on else 'any date'}; found {show_code(header_pos)}")
    for index, line in enumerate(claim.lines):
        line_pos = line.place_of_service
        if line_pos is None or blank(line_pos):
            continue
        on = line_service_date(claim, line)
        if not table.is_valid(line_pos, on):
            yield make_issue(R.POS_INVALID, f"lines[{index}].place_of_service",
                             f"line {line.line_number}: expected a place of service from {table.version} in effect "
                             f"on {on.isoformat() if on else 'any date'}; found {show_code(line_pos)}")


@rule(R.TOB_INVALID)
def type_of_bill_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A type of bill, when present, is 3 digits: a facility type, a bill classification and a frequency code."""
    raw = claim.type_of_bill
    if raw is None or blank(raw):
        return
    digits = normalize_type_of_bill(raw)
    if digits is None:
        yield make_issue(R.TOB_INVALID, "type_of_bill",
                         f"expected 3 digits (or 4 with a leading 0); found {show_code(raw)}")
        return
    on = ctx.first_service_date
    sets = ctx.codesets
    problems = []
    if not sets.type_of_bill_facility.is_valid(digits[0], on):
        problems.append(f"facility type digit {digits[0]} is not a NUBC facility type")
    if not sets.type_of_bill_classification.is_valid(digits[1], on):
        problems.append(f"classification digit {digits[1]} is not a NUBC bill classification")
    if not sets.frequency_codes.is_valid(digits[2], on):
        problems.append(f"frequency digit {digits[2]} is not a NUBC claim frequency code")
    if problems:
        yield make_issue(R.TOB_INVALID, "type_of_bill", f"type of bill '{digits}': " + "; ".join(problems))


@rule(R.FREQUENCY_CODE_INVALID)
def frequency_code_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The claim frequency code must be in the NUBC frequency code set."""
    table = ctx.codesets.frequency_codes
    if not table.is_valid(claim.frequency_code, ctx.first_service_date):
        yield make_issue(R.FREQUENCY_CODE_INVALID, "frequency_code",
                         f"expected a claim frequency code from {table.version} (1 original, 7 replacement, "
                         f"8 void, ...); found {show_code(claim.frequency_code)}")


@rule(R.MISSING_ORIGINAL_CLAIM_REF)
def original_claim_reference_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A replacement (7) or void (8) must name the original claim it replaces."""
    if claim.frequency_code in _NEEDS_ORIGINAL and blank(claim.original_claim_id):
        kind = "replacement" if claim.frequency_code == FrequencyCode.REPLACEMENT.value else "void"
        yield make_issue(R.MISSING_ORIGINAL_CLAIM_REF, "original_claim_id",
                         f"expected the original claim reference on a {kind} (frequency "
                         f"{claim.frequency_code}); none found")


@rule(R.CLAIM_TYPE_FIELDS_MISMATCH)
def claim_type_fields_consistent(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Professional claims carry no type of bill or revenue codes; institutional claims carry no place of service."""
    if claim.claim_type is ClaimType.PROFESSIONAL:
        if not blank(claim.type_of_bill):
            yield make_issue(R.CLAIM_TYPE_FIELDS_MISMATCH, "type_of_bill",
                             "expected no type of bill on a professional claim; found one")
        for index, line in enumerate(claim.lines):
            if not blank(line.revenue_code):
                yield make_issue(R.CLAIM_TYPE_FIELDS_MISMATCH, f"lines[{index}].revenue_code",
                                 f"line {line.line_number}: expected no revenue code on a professional claim; "
                                 "found one")
        return
    if not blank(claim.place_of_service):
        yield make_issue(R.CLAIM_TYPE_FIELDS_MISMATCH, "place_of_service",
                         "expected no place of service on an institutional claim (the type of bill says where); "
                         "found one")
    for index, line in enumerate(claim.lines):
        if not blank(line.place_of_service):
            yield make_issue(R.CLAIM_TYPE_FIELDS_MISMATCH, f"lines[{index}].place_of_service",
                             f"line {line.line_number}: expected no place of service on an institutional claim; "
                             "found one")


@rule(R.TOB_FREQUENCY_MISMATCH)
def type_of_bill_matches_frequency(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The last digit of a well-formed type of bill must equal the claim frequency code."""
    if claim.type_of_bill is None:
        return
    digits = normalize_type_of_bill(claim.type_of_bill)
    if digits is not None and digits[2] != claim.frequency_code:
        yield make_issue(R.TOB_FREQUENCY_MISMATCH, "type_of_bill",
                         f"expected type of bill frequency digit {show_code(claim.frequency_code)} (the claim "
                         f"frequency code); found '{digits[2]}' in type of bill '{digits}'")


@rule(R.BIRTH_AFTER_SERVICE)
def birth_before_service(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The patient (or, when the subscriber is the patient, the subscriber) must be born by the first service date.

    Judged on the age at the first service date (negative when the birth date is later), which a protected record
    carries in its derived block: the birth date itself is encrypted there.
    """
    first = ctx.first_service_date
    if first is None or ctx.patient_age_years is None or ctx.patient_age_years >= 0:
        return
    role = "patient" if claim.patient is not None else "subscriber"
    # The birth date itself is PHI: the message names only the service date it is compared with.
    yield make_issue(R.BIRTH_AFTER_SERVICE, f"{role}.birth_date",
                     f"expected a birth date on or before the first service date {first.isoformat()}; "
                     "found a later one")


RULES = (
    place_of_service_valid,
    type_of_bill_valid,
    frequency_code_valid,
    original_claim_reference_present,
    claim_type_fields_consistent,
    type_of_bill_matches_frequency,
    birth_before_service,
)
