"""The validation rule catalog: every reason code with its severity, the field it concerns and what it means.

Why a catalog separate from the checks: the Python rules, the Spark expressions, the generator's defect injection,
the quarantine table and docs/validation-rules.md all name the same codes. They import them from here, so a code is
spelled once and the parity test can compare the two engines code by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """An error makes a claim invalid (quarantined); a warning is reported but the claim flows on."""

    ERROR = "error"
    WARNING = "warning"


class ReasonCode(StrEnum):
    """Stable validation reason codes. Never renumber or reuse one: quarantine history refers to them."""

    # Required fields
    MISSING_BILLING_NPI = "MISSING_BILLING_NPI"
    MISSING_MEMBER_ID = "MISSING_MEMBER_ID"
    MISSING_DIAGNOSIS = "MISSING_DIAGNOSIS"
    MISSING_LINES = "MISSING_LINES"
    MISSING_SERVICE_DATE = "MISSING_SERVICE_DATE"
    MISSING_TOTAL_CHARGE = "MISSING_TOTAL_CHARGE"
    MISSING_PLACE_OF_SERVICE = "MISSING_PLACE_OF_SERVICE"
    MISSING_TYPE_OF_BILL = "MISSING_TYPE_OF_BILL"
    MISSING_PROCEDURE_CODE = "MISSING_PROCEDURE_CODE"
    MISSING_REVENUE_CODE = "MISSING_REVENUE_CODE"
    MISSING_LINE_CHARGE = "MISSING_LINE_CHARGE"
    MISSING_PAYER = "MISSING_PAYER"
    # Providers
    NPI_FORMAT = "NPI_FORMAT"
    NPI_CHECK_DIGIT = "NPI_CHECK_DIGIT"
    # Diagnoses
    ICD10_UNKNOWN = "ICD10_UNKNOWN"
    ICD10_NOT_BILLABLE = "ICD10_NOT_BILLABLE"
    ICD10_BEFORE_EFFECTIVE = "ICD10_BEFORE_EFFECTIVE"
    ICD9_FORMAT = "ICD9_FORMAT"
    ICD9_AFTER_CUTOVER = "ICD9_AFTER_CUTOVER"
    POA_INVALID = "POA_INVALID"
    DIAGNOSIS_POINTER_INVALID = "DIAGNOSIS_POINTER_INVALID"
    # Procedures and codes
    PROCEDURE_FORMAT = "PROCEDURE_FORMAT"
    MODIFIER_INVALID = "MODIFIER_INVALID"
    REVENUE_CODE_INVALID = "REVENUE_CODE_INVALID"
    POS_INVALID = "POS_INVALID"
    TOB_INVALID = "TOB_INVALID"
    UNITS_INVALID = "UNITS_INVALID"
    # Dates (all relative to an as_of date)
    DATE_RANGE_INVERTED = "DATE_RANGE_INVERTED"
    LINE_DATE_OUTSIDE_HEADER = "LINE_DATE_OUTSIDE_HEADER"
    DATE_IN_FUTURE = "DATE_IN_FUTURE"
    DATE_TOO_OLD = "DATE_TOO_OLD"
    TIMELY_FILING_EXCEEDED = "TIMELY_FILING_EXCEEDED"
    # Amounts
    AMOUNT_NEGATIVE = "AMOUNT_NEGATIVE"
    TOTAL_CHARGE_MISMATCH = "TOTAL_CHARGE_MISMATCH"
    ALLOWED_EXCEEDS_BILLED = "ALLOWED_EXCEEDS_BILLED"
    PAID_EXCEEDS_ALLOWED = "PAID_EXCEEDS_ALLOWED"
    # Frequency (replacement / void)
    FREQUENCY_CODE_INVALID = "FREQUENCY_CODE_INVALID"
    MISSING_ORIGINAL_CLAIM_REF = "MISSING_ORIGINAL_CLAIM_REF"
    # Header consistency
    CLAIM_TYPE_FIELDS_MISMATCH = "CLAIM_TYPE_FIELDS_MISMATCH"
    TOB_FREQUENCY_MISMATCH = "TOB_FREQUENCY_MISMATCH"
    BIRTH_AFTER_SERVICE = "BIRTH_AFTER_SERVICE"


@dataclass(frozen=True)
class RuleSpec:
    """What a reason code means: severity, the canonical field it concerns, and a one-line description."""

    code: ReasonCode
    severity: Severity
    field: str
    description: str


E, W = Severity.ERROR, Severity.WARNING
R = ReasonCode

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(R.MISSING_BILLING_NPI, E, "billing_provider.npi", "Billing provider NPI is required."),
    RuleSpec(R.MISSING_MEMBER_ID, E, "subscriber.member_id", "A member ID (subscriber or patient) is required."),
    RuleSpec(R.MISSING_DIAGNOSIS, E, "diagnoses", "At least one diagnosis is required."),
    RuleSpec(R.MISSING_LINES, E, "lines", "At least one service line is required."),
    RuleSpec(R.MISSING_SERVICE_DATE, E, "lines[].service_date_from",
             "Every line needs a service date (its own or the claim's statement period)."),
    RuleSpec(R.MISSING_TOTAL_CHARGE, E, "total_charge", "The header total charge is required."),
    RuleSpec(R.MISSING_PLACE_OF_SERVICE, E, "place_of_service", "Professional claims need a place of service."),
    RuleSpec(R.MISSING_TYPE_OF_BILL, E, "type_of_bill", "Institutional claims need a type of bill."),
    RuleSpec(R.MISSING_PROCEDURE_CODE, E, "lines[].procedure_code",
             "Professional lines need a procedure code."),
    RuleSpec(R.MISSING_REVENUE_CODE, E, "lines[].revenue_code", "Institutional lines need a revenue code."),
    RuleSpec(R.MISSING_LINE_CHARGE, E, "lines[].charge", "Every line needs a charge."),
    RuleSpec(R.MISSING_PAYER, W, "payer.payer_id", "No payer identifier; routing falls back to the default payer."),
    RuleSpec(R.NPI_FORMAT, E, "*.npi", "An NPI must be exactly 10 digits starting with 1 or 2."),
    RuleSpec(R.NPI_CHECK_DIGIT, W, "*.npi",
             "NPI fails the Luhn check digit with prefix 80840 (a warning: official sample files fail it)."),
    RuleSpec(R.ICD10_UNKNOWN, E, "diagnoses[].code", "ICD-10-CM code not in the shipped code table."),
    RuleSpec(R.ICD10_NOT_BILLABLE, E, "diagnoses[].code",
             "ICD-10-CM code is a category header, not a billable (leaf) code."),
    RuleSpec(R.ICD10_BEFORE_EFFECTIVE, E, "diagnoses[].system",
             "ICD-10-CM used for services before 2015-10-01, when ICD-9-CM applied."),
    RuleSpec(R.ICD9_FORMAT, E, "diagnoses[].code",
             "ICD-9-CM diagnosis is not 3-5 digits, V + 2-4 digits or E + 3-4 digits."),
    RuleSpec(R.ICD9_AFTER_CUTOVER, E, "diagnoses[].system",
             "ICD-9-CM used for services on or after 2015-10-01, when ICD-10-CM applies."),
    RuleSpec(R.POA_INVALID, E, "diagnoses[].present_on_admission", "Present-on-admission must be Y, N, U, W or 1."),
    RuleSpec(R.DIAGNOSIS_POINTER_INVALID, E, "lines[].diagnosis_pointers",
             "A diagnosis pointer must point at an existing diagnosis (1..n, at most 4 per line)."),
    RuleSpec(R.PROCEDURE_FORMAT, E, "lines[].procedure_code",
             "HCPCS/CPT must be 5 digits, 4 digits + F/T/U/M, or a letter A-V + 4 digits."),
    RuleSpec(R.MODIFIER_INVALID, E, "lines[].modifiers", "A modifier is not in the modifier code set, or >4."),
    RuleSpec(R.REVENUE_CODE_INVALID, E, "lines[].revenue_code", "Revenue code not in the NUBC revenue code set."),
    RuleSpec(R.POS_INVALID, E, "place_of_service", "Place of service not in the CMS place of service code set."),
    RuleSpec(R.TOB_INVALID, E, "type_of_bill",
             "Type of bill must be 3 digits (facility, classification, frequency) from the code set."),
    RuleSpec(R.UNITS_INVALID, E, "lines[].units", "Units must be present and greater than zero."),
    RuleSpec(R.DATE_RANGE_INVERTED, E, "service_date_from", "A from date is after its to date (header or line)."),
    RuleSpec(R.LINE_DATE_OUTSIDE_HEADER, E, "lines[].service_date_from",
             "A line's service dates fall outside the header statement period."),
    RuleSpec(R.DATE_IN_FUTURE, E, "service_date_to", "A service date is after the as-of date."),
    RuleSpec(R.DATE_TOO_OLD, E, "service_date_from", "A service date is more than 10 years before the as-of date."),
    RuleSpec(R.TIMELY_FILING_EXCEEDED, E, "service_date_to",
             "Received (or as-of) more than 365 days after the last service date."),
    RuleSpec(R.AMOUNT_NEGATIVE, E, "total_charge", "An amount (header or line) is negative."),
    RuleSpec(R.TOTAL_CHARGE_MISMATCH, E, "total_charge",
             "Header total charge differs from the sum of line charges (to the cent)."),
    RuleSpec(R.ALLOWED_EXCEEDS_BILLED, E, "allowed_amount", "Allowed amount exceeds the billed charge."),
    RuleSpec(R.PAID_EXCEEDS_ALLOWED, E, "paid_amount", "Paid amount exceeds the allowed amount."),
    RuleSpec(R.FREQUENCY_CODE_INVALID, E, "frequency_code", "Frequency code not in the claim frequency code set."),
    RuleSpec(R.MISSING_ORIGINAL_CLAIM_REF, E, "original_claim_id",
             "A replacement (7) or void (8) must carry the original claim reference (REF*F8)."),
    RuleSpec(R.CLAIM_TYPE_FIELDS_MISMATCH, E, "claim_type",
             "Professional claims carry no type of bill or revenue codes; institutional claims no place of service."),
    RuleSpec(R.TOB_FREQUENCY_MISMATCH, E, "type_of_bill",
             "The last digit of the type of bill differs from the claim frequency code."),
    RuleSpec(R.BIRTH_AFTER_SERVICE, E, "patient.birth_date", "The patient's birth date is after the service date."),
)

RULES_BY_CODE: dict[ReasonCode, RuleSpec] = {rule.code: rule for rule in RULES}


def severity_of(code: ReasonCode | str) -> Severity:
    """The severity of a reason code."""
    return RULES_BY_CODE[ReasonCode(code)].severity
