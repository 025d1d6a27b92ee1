"""Diagnosis rules: ICD-10-CM existence and billability, ICD-9-CM format, the 2015-10-01 cutover, POA indicators.

The code system is what the source declared (the X12 HI qualifier: ABK/ABF are ICD-10-CM, BK/BF are ICD-9-CM); it is
never guessed from the code's shape. Which system is *allowed* depends on the date of service: HIPAA moved from
ICD-9-CM to ICD-10-CM for services on or after 2015-10-01. The date that decides is the claim's statement 'through'
date (service_date_to; for inpatient claims CMS uses the discharge/through date), else the latest line date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache

from libs.codesets import ICD10_EFFECTIVE, Icd10Table
from libs.model import Claim, DiagnosisSystem
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import rule, show_code

# ICD-9-CM diagnosis shapes, dot optional: 3-5 digits (250, 25000), V + 2-4 digits (V7389), E + 3-4 digits (E8809).
_ICD9_DIAGNOSIS = re.compile(r"\d{3}(?:\.?\d{1,2})?|V\d{2}(?:\.?\d{1,2})?|E\d{3}(?:\.?\d)?")
# UB-04 present-on-admission indicators: Y yes, N no, U unknown, W clinically undetermined, 1 exempt (blank on 5010).
POA_VALUES = frozenset({"Y", "N", "U", "W", "1"})


class Icd10Status(StrEnum):
    """How an ICD-10-CM code stands in the shipped tabular list."""

    UNKNOWN = "unknown"
    NOT_BILLABLE = "not_billable"  # a category or subcategory with more specific codes below it
    BILLABLE = "billable"  # a leaf of the tabular list


@lru_cache(maxsize=131072)
def icd10_status(table: Icd10Table, code: str) -> Icd10Status:
    """Look a code up once per process: dotted and dotless forms are both accepted.

    The tabular list also has chapters ('1'..'22') and blocks ('E08-E13'); those are not diagnosis codes, and every
    real ICD-10-CM code starts with a letter, so anything else is unknown.
    """
    normalized = code.strip().upper()
    if not normalized or not normalized[0].isalpha() or "-" in normalized or not table.exists(normalized):
        return Icd10Status.UNKNOWN
    return Icd10Status.BILLABLE if table.is_billable(normalized) else Icd10Status.NOT_BILLABLE


def icd9_format_ok(code: str) -> bool:
    """Whether `code` has an ICD-9-CM diagnosis shape (dotted or dotless)."""
    return _ICD9_DIAGNOSIS.fullmatch(code) is not None


@rule(R.ICD10_UNKNOWN, R.ICD10_NOT_BILLABLE, R.ICD9_FORMAT)
def diagnosis_codes_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """ICD-10-CM codes must be billable leaves of the shipped table; ICD-9-CM codes must have a valid shape."""
    table = ctx.codesets.icd10cm
    for index, diagnosis in enumerate(claim.diagnoses):
        code = diagnosis.code
        if diagnosis.system is DiagnosisSystem.ICD10CM:
            status = icd10_status(table, code)
            if status is Icd10Status.UNKNOWN:
                yield make_issue(R.ICD10_UNKNOWN, f"diagnoses[{index}].code",
                                 f"expected an ICD-10-CM code from {table.version}; found {show_code(code)}")
            elif status is Icd10Status.NOT_BILLABLE:
                yield make_issue(R.ICD10_NOT_BILLABLE, f"diagnoses[{index}].code",
                                 f"expected a billable (leaf) ICD-10-CM code; {show_code(code)} is a category "
                                 "with more specific codes below it")
        elif not icd9_format_ok(code):
            yield make_issue(R.ICD9_FORMAT, f"diagnoses[{index}].code",
                             "expected an ICD-9-CM diagnosis of 3-5 digits, V + 2-4 digits or E + 3-4 digits; "
                             f"found {show_code(code)}")


@rule(R.ICD9_AFTER_CUTOVER, R.ICD10_BEFORE_EFFECTIVE)
def diagnosis_system_matches_service_date(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """ICD-9-CM applies to services before 2015-10-01 and ICD-10-CM on or after it."""
    judged_on = ctx.diagnosis_date
    if judged_on is None:
        return
    after_cutover = judged_on >= ICD10_EFFECTIVE
    for index, diagnosis in enumerate(claim.diagnoses):
        if after_cutover and diagnosis.system is DiagnosisSystem.ICD9CM:
            yield make_issue(R.ICD9_AFTER_CUTOVER, f"diagnoses[{index}].system",
                             f"expected ICD-10-CM for services through {judged_on.isoformat()} (on or after "
                             f"{ICD10_EFFECTIVE.isoformat()}); found ICD-9-CM")
        elif not after_cutover and diagnosis.system is DiagnosisSystem.ICD10CM:
            yield make_issue(R.ICD10_BEFORE_EFFECTIVE, f"diagnoses[{index}].system",
                             f"expected ICD-9-CM for services through {judged_on.isoformat()} (before "
                             f"{ICD10_EFFECTIVE.isoformat()}); found ICD-10-CM")


@rule(R.POA_INVALID)
def present_on_admission_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A present-on-admission indicator, when given, must be Y, N, U, W or 1."""
    for index, diagnosis in enumerate(claim.diagnoses):
        poa = diagnosis.present_on_admission
        if poa is not None and poa.strip() and poa not in POA_VALUES:
            yield make_issue(R.POA_INVALID, f"diagnoses[{index}].present_on_admission",
                             f"expected a present-on-admission indicator Y, N, U, W or 1; found {show_code(poa)}")


RULES = (diagnosis_codes_valid, diagnosis_system_matches_service_date, present_on_admission_valid)
