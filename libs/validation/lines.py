"""Service-line code rules: procedure code format, modifiers, revenue codes, units and diagnosis pointers.

Codes are read as strings so leading zeros survive ('0001U', '0305'). Modifiers and revenue codes are judged against
the code set in effect on the line's date of service (the line's own from date, else the claim's statement from date).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from libs.model import Claim, ProcedureSystem
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext, line_service_date
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import blank, rule, show_code

# HCPCS Level I (CPT): 5 digits, or 4 digits + F (category II), T (category III), U (PLA), M (MAAA);
# HCPCS Level II: a letter A-V + 4 digits.
_HCPCS = re.compile(r"\d{5}|\d{4}[FTUM]|[A-V]\d{4}")
MAX_MODIFIERS = 4  # SV101-3..6 / SV202-3..6: four modifier slots per line
MAX_DIAGNOSIS_POINTERS = 4  # SV107-1..4: four pointer slots per professional line


def hcpcs_format_ok(code: str) -> bool:
    """Whether `code` is shaped like a HCPCS Level I or Level II code."""
    return _HCPCS.fullmatch(code) is not None


@rule(R.PROCEDURE_FORMAT)
def procedure_code_format(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """HCPCS/CPT procedure codes must be 5 characters of a known shape.

    A line without a declared procedure system is read as HCPCS (the X12 HC qualifier, the default everywhere);
    ICD-10-PCS and ICD-9 procedure codes on institutional lines are not HCPCS and are not judged here.
    """
    for index, line in enumerate(claim.lines):
        code = line.procedure_code
        if code is None or blank(code):
            continue
        if line.procedure_system in (None, ProcedureSystem.HCPCS) and not hcpcs_format_ok(code):
            yield make_issue(R.PROCEDURE_FORMAT, f"lines[{index}].procedure_code",
                             f"line {line.line_number}: expected a HCPCS/CPT code of 5 digits, 4 digits + F/T/U/M "
                             f"or a letter A-V + 4 digits; found {show_code(code)}")


@rule(R.MODIFIER_INVALID)
def modifiers_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """At most four modifiers per line, each in the modifier code set on the line's date of service."""
    table = ctx.codesets.modifiers
    for index, line in enumerate(claim.lines):
        if not line.modifiers:
            continue
        if len(line.modifiers) > MAX_MODIFIERS:
            yield make_issue(R.MODIFIER_INVALID, f"lines[{index}].modifiers",
                             f"line {line.line_number}: expected at most {MAX_MODIFIERS} modifiers; "
                             f"found {len(line.modifiers)}")
        on = line_service_date(claim, line)
        for position, modifier in enumerate(line.modifiers):
            if not table.is_valid(modifier, on):
                when = f" on {on.isoformat()}" if on else ""
                yield make_issue(R.MODIFIER_INVALID, f"lines[{index}].modifiers[{position}]",
                                 f"line {line.line_number}: expected a modifier from {table.version} in effect"
                                 f"{when}; found {show_code(modifier)}")


@rule(R.REVENUE_CODE_INVALID)
def revenue_code_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A revenue code, when present, must be a 4-digit code of the NUBC revenue code set."""
    table = ctx.codesets.revenue_codes
    for index, line in enumerate(claim.lines):
        code = line.revenue_code
        if code is None or blank(code):
            continue
        if not table.is_valid(code, line_service_date(claim, line)):
            yield make_issue(R.REVENUE_CODE_INVALID, f"lines[{index}].revenue_code",
                             f"line {line.line_number}: expected a 4-digit revenue code from {table.version}; "
                             f"found {show_code(code)}")


@rule(R.UNITS_INVALID)
def units_positive(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every line must bill a positive number of units."""
    for index, line in enumerate(claim.lines):
        if line.units is None:
            yield make_issue(R.UNITS_INVALID, f"lines[{index}].units",
                             f"line {line.line_number}: expected units greater than zero; found none")
        elif line.units <= 0:
            yield make_issue(R.UNITS_INVALID, f"lines[{index}].units",
                             f"line {line.line_number}: expected units greater than zero; found {line.units}")


@rule(R.DIAGNOSIS_POINTER_INVALID)
def diagnosis_pointers_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Diagnosis pointers are 1-based indexes into the claim's diagnoses, at most four per line."""
    count = len(claim.diagnoses)
    for index, line in enumerate(claim.lines):
        pointers = line.diagnosis_pointers
        if not pointers:
            continue
        if len(pointers) > MAX_DIAGNOSIS_POINTERS:
            yield make_issue(R.DIAGNOSIS_POINTER_INVALID, f"lines[{index}].diagnosis_pointers",
                             f"line {line.line_number}: expected at most {MAX_DIAGNOSIS_POINTERS} diagnosis "
                             f"pointers; found {len(pointers)}")
        for position, pointer in enumerate(pointers):
            if pointer < 1 or pointer > count:
                yield make_issue(R.DIAGNOSIS_POINTER_INVALID, f"lines[{index}].diagnosis_pointers[{position}]",
                                 f"line {line.line_number}: expected a pointer between 1 and {count} (the claim "
                                 f"has {count} diagnoses); found {pointer}")


RULES = (procedure_code_format, modifiers_valid, revenue_code_valid, units_positive, diagnosis_pointers_valid)
