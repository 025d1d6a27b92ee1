"""Defect injection: one injector per validation reason code, each breaking a valid claim in exactly that way.

Why one injector per code: the project's acceptance contract is that every labelled defect is caught by its own reason
code and that unlabelled claims carry no error. An injector therefore edits only what its rule looks at. A few rules
cannot be broken alone: a claim dated before the ICD-10 cutover (2015-10-01) is necessarily more than ten years old
when judged in 2026, so ICD10_BEFORE_EFFECTIVE claims also raise DATE_TOO_OLD, and an ICD-9 code with a malformed
shape on a current claim is also an ICD-9 code after the cutover. Extra codes on a defective claim are harmless to
the contract; missing the labelled code is not.

Invalid codes used by the injectors are verified against the shipped code sets when the context is built, so a code
set update cannot silently turn an injected defect into a valid claim.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from libs.codesets import ICD10_EFFECTIVE, CodeSets
from libs.generator.claims import ClaimDict, last_service_date, recompute_total
from libs.validation.catalog import ReasonCode

R = ReasonCode
PROFESSIONAL = "professional"
INSTITUTIONAL = "institutional"

# Candidate invalid values; `build_defect_context` keeps only those the code sets really reject.
UNKNOWN_ICD10_CANDIDATES = ("U999", "Z9999", "Q9999", "E1199X", "A0000", "W9999", "Y999")
NON_BILLABLE_ICD10_CANDIDATES = ("E11", "I25", "J44", "M54", "K21", "I50", "N18", "E78")
# Well-formed ICD-9-CM diagnosis codes (3-5 digits, V + digits): hypertension, diabetes, chest pain, exam.
ICD9_CODES = ("4019", "25000", "7865", "V700", "2724", "42731")
MALFORMED_ICD9 = ("12", "V1", "X1234", "4O19", "250000")
INVALID_MODIFIER_CANDIDATES = ("Z9", "ZZ", "9Z", "00", "QQ")
INVALID_POS_CANDIDATES = ("98", "97", "48", "30", "63")
INVALID_REVENUE_CANDIDATES = ("0999", "0998", "0019", "0009")
INVALID_FREQUENCY_CANDIDATES = ("6", "A", "X")
INVALID_TOB_FACILITY_CANDIDATES = ("9", "5", "0")
NON_REFERENCING_FREQUENCIES = ("0", "2", "3", "4", "5")  # frequencies that need no original claim reference


@dataclass(frozen=True)
class DefectContext:
    """What injectors need beyond the claim: randomness, the anchor date and verified-invalid codes."""

    rng: random.Random
    anchor_date: date
    unknown_icd10: tuple[str, ...]
    non_billable_icd10: tuple[str, ...]
    invalid_modifiers: tuple[str, ...]
    invalid_places_of_service: tuple[str, ...]
    invalid_revenue_codes: tuple[str, ...]
    invalid_frequency_codes: tuple[str, ...]
    invalid_tob_facility_digits: tuple[str, ...]
    tob_frequency_digits: tuple[str, ...]


def _require(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise ValueError(f"no candidate for {name} is rejected by the shipped code sets; add a candidate")
    return values


def build_defect_context(rng: random.Random, codesets: CodeSets, anchor_date: date) -> DefectContext:
    """Verify every invalid candidate against the code sets in effect at the anchor date."""
    icd = codesets.icd10cm
    return DefectContext(
        rng=rng,
        anchor_date=anchor_date,
        unknown_icd10=_require("ICD10_UNKNOWN", tuple(c for c in UNKNOWN_ICD10_CANDIDATES if not icd.exists(c))),
        non_billable_icd10=_require(
            "ICD10_NOT_BILLABLE",
            tuple(c for c in NON_BILLABLE_ICD10_CANDIDATES if icd.exists(c) and not icd.is_billable(c)),
        ),
        invalid_modifiers=_require(
            "MODIFIER_INVALID", tuple(c for c in INVALID_MODIFIER_CANDIDATES if not codesets.modifiers.is_valid(c))
        ),
        invalid_places_of_service=_require(
            "POS_INVALID", tuple(c for c in INVALID_POS_CANDIDATES if not codesets.place_of_service.is_valid(c))
        ),
        invalid_revenue_codes=_require(
            "REVENUE_CODE_INVALID",
            tuple(c for c in INVALID_REVENUE_CANDIDATES if not codesets.revenue_codes.is_valid(c)),
        ),
        invalid_frequency_codes=_require(
            "FREQUENCY_CODE_INVALID",
            tuple(c for c in INVALID_FREQUENCY_CANDIDATES if not codesets.frequency_codes.is_valid(c)),
        ),
        invalid_tob_facility_digits=_require(
            "TOB_INVALID",
            tuple(c for c in INVALID_TOB_FACILITY_CANDIDATES if not codesets.type_of_bill_facility.is_valid(c)),
        ),
        tob_frequency_digits=_require(
            "TOB_FREQUENCY_MISMATCH",
            tuple(c for c in NON_REFERENCING_FREQUENCIES if codesets.frequency_codes.is_valid(c)),
        ),
    )


Inject = Callable[[ClaimDict, DefectContext], None]


@dataclass(frozen=True)
class DefectInjector:
    """How to break a claim for one reason code; `claim_type` restricts the base claim when the rule needs one."""

    code: ReasonCode
    claim_type: str | None
    inject: Inject


DEFECTS: dict[ReasonCode, DefectInjector] = {}


def _defect(code: ReasonCode, claim_type: str | None = None) -> Callable[[Inject], Inject]:
    def register(function: Inject) -> Inject:
        DEFECTS[code] = DefectInjector(code=code, claim_type=claim_type, inject=function)
        return function

    return register


# ---------------------------------------- helpers


def _pick_line(claim: ClaimDict, ctx: DefectContext, *, with_code: bool = False) -> dict[str, Any]:
    lines = [line for line in claim["lines"] if line.get("procedure_code")] if with_code else claim["lines"]
    return lines[ctx.rng.randrange(len(lines))]


def _people(claim: ClaimDict) -> list[dict[str, Any]]:
    """The patient, plus the subscriber when the patient is the subscriber (relationship 18, self)."""
    people = [claim["patient"]]
    if claim["patient"].get("relationship_code") == "18":
        people.append(claim["subscriber"])
    return people


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def shift_service_dates(claim: ClaimDict, delta: timedelta) -> None:
    """Move every header and line service date (and admission/discharge) by `delta`."""
    for key in ("service_date_from", "service_date_to", "admission_date", "discharge_date"):
        if claim.get(key) is not None:
            claim[key] += delta
    for line in claim["lines"]:
        for key in ("service_date_from", "service_date_to"):
            if line.get(key) is not None:
                line[key] += delta


def _move_to(claim: ClaimDict, ctx: DefectContext, last_day: date, *, received_lag: int | None) -> None:
    """Re-date the claim so that its last service day is `last_day`; keep the patient born before the service."""
    current = last_service_date(claim)
    if current is None:
        return
    shift_service_dates(claim, last_day - current)
    if received_lag is not None:
        claim["source"]["received_date"] = min(last_day + timedelta(days=received_lag), ctx.anchor_date)
    first_day = claim["service_date_from"]
    for person in _people(claim):
        if person.get("birth_date") is not None and person["birth_date"] >= first_day:
            person["birth_date"] = first_day - timedelta(days=365 * 40)
        if person.get("death_date") is not None and person["death_date"] < last_day:
            person["death_date"] = None  # re-dating must not create a service-after-death claim by accident


# ---------------------------------------- required fields


@_defect(R.MISSING_BILLING_NPI)
def _missing_billing_npi(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["billing_provider"]["npi"] = None


@_defect(R.MISSING_MEMBER_ID)
def _missing_member_id(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["patient"]["member_id"] = None
    claim["subscriber"]["member_id"] = None


@_defect(R.MISSING_DIAGNOSIS)
def _missing_diagnosis(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["diagnoses"] = []
    for line in claim["lines"]:
        line["diagnosis_pointers"] = []  # pointers into an empty list would be a second defect


@_defect(R.MISSING_LINES)
def _missing_lines(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["lines"] = []


@_defect(R.MISSING_SERVICE_DATE)
def _missing_service_date(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["service_date_from"] = None
    claim["service_date_to"] = None
    line = _pick_line(claim, ctx)
    line["service_date_from"] = None
    line["service_date_to"] = None


@_defect(R.MISSING_TOTAL_CHARGE)
def _missing_total_charge(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["total_charge"] = None


@_defect(R.MISSING_PLACE_OF_SERVICE, PROFESSIONAL)
def _missing_place_of_service(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["place_of_service"] = None


@_defect(R.MISSING_TYPE_OF_BILL, INSTITUTIONAL)
def _missing_type_of_bill(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["type_of_bill"] = None


@_defect(R.MISSING_PROCEDURE_CODE, PROFESSIONAL)
def _missing_procedure_code(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    line["procedure_code"] = None
    line["procedure_system"] = None
    line["modifiers"] = []


@_defect(R.MISSING_REVENUE_CODE, INSTITUTIONAL)
def _missing_revenue_code(claim: ClaimDict, ctx: DefectContext) -> None:
    _pick_line(claim, ctx)["revenue_code"] = None


@_defect(R.MISSING_LINE_CHARGE)
def _missing_line_charge(claim: ClaimDict, ctx: DefectContext) -> None:
    _pick_line(claim, ctx)["charge"] = None
    if any(line.get("charge") is not None for line in claim["lines"]):
        recompute_total(claim)  # the total still adds up over the charges that are present


@_defect(R.MISSING_PAYER)
def _missing_payer(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["payer"]["payer_id"] = None


# ---------------------------------------- providers


@_defect(R.NPI_FORMAT)
def _npi_format(claim: ClaimDict, ctx: DefectContext) -> None:
    role = "rendering_provider" if claim["claim_type"] == PROFESSIONAL else "attending_provider"
    npi = claim[role]["npi"]
    # A dropped digit (9 digits) or a leading digit other than 1/2: both common keying errors.
    claim[role]["npi"] = npi[:9] if ctx.rng.random() < 0.5 else "3" + npi[1:]


@_defect(R.NPI_CHECK_DIGIT)
def _npi_check_digit(claim: ClaimDict, ctx: DefectContext) -> None:
    npi = claim["billing_provider"]["npi"]
    claim["billing_provider"]["npi"] = npi[:9] + str((int(npi[9]) + ctx.rng.randint(1, 9)) % 10)


# ---------------------------------------- diagnoses


@_defect(R.ICD10_UNKNOWN)
def _icd10_unknown(claim: ClaimDict, ctx: DefectContext) -> None:
    ctx.rng.choice(claim["diagnoses"])["code"] = ctx.rng.choice(ctx.unknown_icd10)


@_defect(R.ICD10_NOT_BILLABLE)
def _icd10_not_billable(claim: ClaimDict, ctx: DefectContext) -> None:
    ctx.rng.choice(claim["diagnoses"])["code"] = ctx.rng.choice(ctx.non_billable_icd10)


@_defect(R.ICD10_BEFORE_EFFECTIVE)
def _icd10_before_effective(claim: ClaimDict, ctx: DefectContext) -> None:
    # ICD-10-CM codes on a claim serviced in the ICD-9 era; received promptly so timely filing still holds.
    last_day = ICD10_EFFECTIVE - timedelta(days=ctx.rng.randint(20, 200))
    _move_to(claim, ctx, last_day, received_lag=ctx.rng.randint(2, 20))


@_defect(R.ICD9_FORMAT)
def _icd9_format(claim: ClaimDict, ctx: DefectContext) -> None:
    diagnosis = ctx.rng.choice(claim["diagnoses"])
    diagnosis.update(system="ICD-9-CM", code=ctx.rng.choice(MALFORMED_ICD9),
                     qualifier="BK" if diagnosis["qualifier"] == "ABK" else "BF")


@_defect(R.ICD9_AFTER_CUTOVER)
def _icd9_after_cutover(claim: ClaimDict, ctx: DefectContext) -> None:
    for diagnosis in claim["diagnoses"]:
        diagnosis.update(system="ICD-9-CM", code=ctx.rng.choice(ICD9_CODES),
                         qualifier="BK" if diagnosis["qualifier"] == "ABK" else "BF")


@_defect(R.POA_INVALID, INSTITUTIONAL)
def _poa_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    ctx.rng.choice(claim["diagnoses"])["present_on_admission"] = ctx.rng.choice(("X", "0", "YES", "n/a"))


@_defect(R.DIAGNOSIS_POINTER_INVALID, PROFESSIONAL)
def _diagnosis_pointer_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    choice = ctx.rng.randrange(3)
    if choice == 0:
        line["diagnosis_pointers"] = [len(claim["diagnoses"]) + 1]  # past the last diagnosis
    elif choice == 1:
        line["diagnosis_pointers"] = [0]  # pointers are 1-based
    else:
        line["diagnosis_pointers"] = [1, 1, 1, 1, 1]  # more than four pointers


# ---------------------------------------- codes


@_defect(R.PROCEDURE_FORMAT, PROFESSIONAL)
def _procedure_format(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx, with_code=True)
    code = line["procedure_code"]
    # A truncated code (4 characters) or one with a stray separator: never 5 characters of a valid shape.
    line["procedure_code"] = code[:4] if ctx.rng.random() < 0.5 else f"{code[:3]}-{code[3:]}"


@_defect(R.MODIFIER_INVALID, PROFESSIONAL)
def _modifier_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    if ctx.rng.random() < 0.8:
        line["modifiers"] = [*line["modifiers"][:3], ctx.rng.choice(ctx.invalid_modifiers)]
    else:
        line["modifiers"] = ["76", "77", "59", "RT", "LT"]  # valid codes, but five of them


@_defect(R.REVENUE_CODE_INVALID, INSTITUTIONAL)
def _revenue_code_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    _pick_line(claim, ctx)["revenue_code"] = ctx.rng.choice(ctx.invalid_revenue_codes)


@_defect(R.POS_INVALID, PROFESSIONAL)
def _pos_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["place_of_service"] = ctx.rng.choice(ctx.invalid_places_of_service)


@_defect(R.TOB_INVALID, INSTITUTIONAL)
def _tob_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    tob = claim["type_of_bill"]
    if ctx.rng.random() < 0.5:
        claim["type_of_bill"] = ctx.rng.choice(ctx.invalid_tob_facility_digits) + tob[1:]
    else:
        claim["type_of_bill"] = tob[:2]  # two digits: the frequency digit is missing


@_defect(R.UNITS_INVALID)
def _units_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    _pick_line(claim, ctx)["units"] = ctx.rng.choice((Decimal("0"), Decimal("-1"), None))


# ---------------------------------------- dates


@_defect(R.DATE_RANGE_INVERTED)
def _date_range_inverted(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    day = line["service_date_from"]
    # The line ends the day before it starts; the header opens a day earlier so the line stays inside it.
    line["service_date_to"] = day - timedelta(days=1)
    claim["service_date_from"] = min(claim["service_date_from"], day - timedelta(days=1))


@_defect(R.LINE_DATE_OUTSIDE_HEADER)
def _line_date_outside_header(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    day = claim["service_date_from"] - timedelta(days=ctx.rng.randint(1, 20))
    line["service_date_from"] = day
    line["service_date_to"] = day


@_defect(R.DATE_IN_FUTURE)
def _date_in_future(claim: ClaimDict, ctx: DefectContext) -> None:
    # Far enough ahead to stay in the future when validated weeks after the anchor date.
    last_day = ctx.anchor_date + timedelta(days=ctx.rng.randint(400, 700))
    _move_to(claim, ctx, last_day, received_lag=None)


@_defect(R.DATE_TOO_OLD)
def _date_too_old(claim: ClaimDict, ctx: DefectContext) -> None:
    ten_years_before = years_before(ctx.anchor_date, 10)
    # Older than ten years (with a 30-day margin for a later as-of date) but after the ICD-10 cutover when possible,
    # and received promptly so that only the age is wrong.
    low = max(ICD10_EFFECTIVE + timedelta(days=30), ten_years_before - timedelta(days=330))
    high = ten_years_before - timedelta(days=40)
    if low > high:
        low = high - timedelta(days=200)
    last_day = low + timedelta(days=ctx.rng.randint(0, (high - low).days))
    _move_to(claim, ctx, last_day, received_lag=ctx.rng.randint(2, 20))


@_defect(R.TIMELY_FILING_EXCEEDED)
def _timely_filing_exceeded(claim: ClaimDict, ctx: DefectContext) -> None:
    last_day = ctx.anchor_date - timedelta(days=ctx.rng.randint(400, 700))
    _move_to(claim, ctx, last_day, received_lag=None)
    claim["source"]["received_date"] = ctx.anchor_date - timedelta(days=ctx.rng.randint(0, 20))


# ---------------------------------------- amounts


@_defect(R.AMOUNT_NEGATIVE)
def _amount_negative(claim: ClaimDict, ctx: DefectContext) -> None:
    line = _pick_line(claim, ctx)
    line["charge"] = -line["charge"]
    recompute_total(claim)  # the header still adds up: the only problem is the sign


@_defect(R.TOTAL_CHARGE_MISMATCH)
def _total_charge_mismatch(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["total_charge"] += Decimal(ctx.rng.choice(("0.01", "1.00", "10.00", "100.00", "-0.01")))


@_defect(R.ALLOWED_EXCEEDS_BILLED)
def _allowed_exceeds_billed(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["allowed_amount"] = claim["total_charge"] + Decimal(ctx.rng.randint(1, 50000)).scaleb(-2)


@_defect(R.PAID_EXCEEDS_ALLOWED)
def _paid_exceeds_allowed(claim: ClaimDict, ctx: DefectContext) -> None:
    total: Decimal = claim["total_charge"]
    allowed = (total * Decimal("0.6")).quantize(Decimal("0.01"))
    claim["allowed_amount"] = allowed
    claim["paid_amount"] = allowed + max(Decimal("0.01"), ((total - allowed) / 2).quantize(Decimal("0.01")))


# ---------------------------------------- frequency


@_defect(R.FREQUENCY_CODE_INVALID, PROFESSIONAL)
def _frequency_code_invalid(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["frequency_code"] = ctx.rng.choice(ctx.invalid_frequency_codes)


@_defect(R.MISSING_ORIGINAL_CLAIM_REF)
def _missing_original_claim_ref(claim: ClaimDict, ctx: DefectContext) -> None:
    frequency = ctx.rng.choice(("7", "8"))
    claim["frequency_code"] = frequency
    claim["original_claim_id"] = None
    if claim.get("type_of_bill"):
        claim["type_of_bill"] = claim["type_of_bill"][:2] + frequency


# ---------------------------------------- header consistency


@_defect(R.CLAIM_TYPE_FIELDS_MISMATCH)
def _claim_type_fields_mismatch(claim: ClaimDict, ctx: DefectContext) -> None:
    if claim["claim_type"] == INSTITUTIONAL:
        claim["place_of_service"] = "22"  # a valid place of service, on the wrong claim type
    elif ctx.rng.random() < 0.5:
        claim["type_of_bill"] = "131"  # valid and frequency-consistent, but professional claims carry none
    else:
        _pick_line(claim, ctx)["revenue_code"] = "0510"


@_defect(R.TOB_FREQUENCY_MISMATCH, INSTITUTIONAL)
def _tob_frequency_mismatch(claim: ClaimDict, ctx: DefectContext) -> None:
    claim["type_of_bill"] = claim["type_of_bill"][:2] + ctx.rng.choice(ctx.tob_frequency_digits)


@_defect(R.BIRTH_AFTER_SERVICE)
def _birth_after_service(claim: ClaimDict, ctx: DefectContext) -> None:
    birth = claim["service_date_from"] + timedelta(days=ctx.rng.randint(1, 90))
    for person in _people(claim):
        person["birth_date"] = birth


def missing_injectors() -> list[ReasonCode]:
    """Reason codes without an injector (must be empty: the contract covers every code)."""
    return [code for code in ReasonCode if code not in DEFECTS]


DEFECT_CODES: tuple[ReasonCode, ...] = tuple(code for code in ReasonCode if code in DEFECTS)


def inject_defect(claim: ClaimDict, code: ReasonCode, ctx: DefectContext) -> None:
    """Break `claim` (a clean claim of a compatible type) so that it fails the rule `code`."""
    injector = DEFECTS[code]
    if injector.claim_type is not None and injector.claim_type != claim["claim_type"]:
        raise ValueError(f"defect {code} needs a {injector.claim_type} claim, found {claim['claim_type']}")
    injector.inject(claim, ctx)
