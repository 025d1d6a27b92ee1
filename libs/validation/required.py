"""Required-field rules: what a claim of each type must carry before any code or amount can be judged.

Professional (837P / CMS-1500) and institutional (837I / UB-04) claims differ: a professional claim needs a place of
service and a procedure code per line, an institutional claim a type of bill and a revenue code per line.
"""

from __future__ import annotations

from collections.abc import Iterator

from libs.model import Claim, ClaimType
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import blank, rule


@rule(R.MISSING_BILLING_NPI)
def billing_npi_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The billing provider must be identified by NPI."""
    if claim.billing_provider is None or blank(claim.billing_provider.npi):
        yield make_issue(R.MISSING_BILLING_NPI, "billing_provider.npi",
                         "expected a billing provider NPI; none found")


@rule(R.MISSING_MEMBER_ID)
def member_id_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The patient's or the subscriber's member ID must be present."""
    if claim.member_key() is None:
        yield make_issue(R.MISSING_MEMBER_ID, "subscriber.member_id",
                         "expected a member ID on the patient or the subscriber; neither has one")


@rule(R.MISSING_DIAGNOSIS)
def diagnosis_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """At least one diagnosis must be present."""
    if not claim.diagnoses:
        yield make_issue(R.MISSING_DIAGNOSIS, "diagnoses", "expected at least one diagnosis; found none")


@rule(R.MISSING_LINES)
def lines_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """At least one service line must be present."""
    if not claim.lines:
        yield make_issue(R.MISSING_LINES, "lines", "expected at least one service line; found none")


@rule(R.MISSING_TOTAL_CHARGE)
def total_charge_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The header total charge must be present."""
    if claim.total_charge is None:
        yield make_issue(R.MISSING_TOTAL_CHARGE, "total_charge", "expected a header total charge; none found")


@rule(R.MISSING_PLACE_OF_SERVICE)
def place_of_service_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A professional claim needs a place of service on the header (or on every line)."""
    if claim.claim_type is not ClaimType.PROFESSIONAL or not blank(claim.place_of_service):
        return
    # Sources that carry the place of service per line only (e.g. SynPUF carrier lines) are complete when every
    # line has one; the header value would only be a default for the lines.
    if claim.lines and all(not blank(line.place_of_service) for line in claim.lines):
        return
    yield make_issue(R.MISSING_PLACE_OF_SERVICE, "place_of_service",
                     "expected a place of service on a professional claim; none found")


@rule(R.MISSING_TYPE_OF_BILL)
def type_of_bill_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """An institutional claim needs a type of bill."""
    if claim.claim_type is ClaimType.INSTITUTIONAL and blank(claim.type_of_bill):
        yield make_issue(R.MISSING_TYPE_OF_BILL, "type_of_bill",
                         "expected a type of bill on an institutional claim; none found")


@rule(R.MISSING_PAYER)
def payer_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A payer identifier is expected; without one, routing falls back to the default payer (warning)."""
    if claim.payer is None or blank(claim.payer.payer_id):
        yield make_issue(R.MISSING_PAYER, "payer.payer_id",
                         "expected a payer identifier; none found, the default payer applies")


@rule(R.MISSING_SERVICE_DATE)
def line_service_date_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every line needs a service date, its own or the claim's statement from date."""
    if claim.service_date_from is not None:
        return
    for index, line in enumerate(claim.lines):
        if line.service_date_from is None:
            yield make_issue(R.MISSING_SERVICE_DATE, f"lines[{index}].service_date_from",
                             f"line {line.line_number}: expected a service date or a claim statement "
                             "from date; found neither")


@rule(R.MISSING_PROCEDURE_CODE)
def line_procedure_code_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every professional line needs a procedure code."""
    if claim.claim_type is not ClaimType.PROFESSIONAL:
        return
    for index, line in enumerate(claim.lines):
        if blank(line.procedure_code):
            yield make_issue(R.MISSING_PROCEDURE_CODE, f"lines[{index}].procedure_code",
                             f"line {line.line_number}: expected a procedure code; none found")


@rule(R.MISSING_REVENUE_CODE)
def line_revenue_code_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every institutional line needs a revenue code."""
    if claim.claim_type is not ClaimType.INSTITUTIONAL:
        return
    for index, line in enumerate(claim.lines):
        if blank(line.revenue_code):
            yield make_issue(R.MISSING_REVENUE_CODE, f"lines[{index}].revenue_code",
                             f"line {line.line_number}: expected a revenue code; none found")


@rule(R.MISSING_LINE_CHARGE)
def line_charge_present(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every line needs a billed charge."""
    for index, line in enumerate(claim.lines):
        if line.charge is None:
            yield make_issue(R.MISSING_LINE_CHARGE, f"lines[{index}].charge",
                             f"line {line.line_number}: expected a line charge; none found")


RULES = (
    billing_npi_present,
    member_id_present,
    diagnosis_present,
    lines_present,
    total_charge_present,
    place_of_service_present,
    type_of_bill_present,
    payer_present,
    line_service_date_present,
    line_procedure_code_present,
    line_revenue_code_present,
    line_charge_present,
)
