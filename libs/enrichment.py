"""Enrichment of a valid claim into the analytics columns silver carries next to the claim itself.

Why at ingest: analysts query silver by provider specialty, principal diagnosis, age band and E/M level; computing
them once when a claim arrives keeps every downstream query simple. The inputs are reference data and the
non-identifying derived block (libs.phi.derived), so enrichment needs no PHI. One Python function serves the stream
(inside its Arrow batches) and anything else that needs the same columns, so there is one definition of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from libs.codesets import CodeSets
from libs.model import Claim
from libs.phi.derived import PhiDerived

UNKNOWN_SPECIALTY = "unknown"
# Upper bounds (exclusive) of the age bands, in years; ages of 80 and over form the last band.
AGE_BANDS = ((18, "0-17"), (35, "18-34"), (50, "35-49"), (65, "50-64"), (80, "65-79"))
OLDEST_AGE_BAND = "80+"
UNKNOWN_AGE_BAND = "unknown"


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The derived, non-identifying analytics columns of one claim (silver's enrichment columns)."""

    billing_specialty: str
    principal_diagnosis: str | None
    line_count: int
    total_units: Decimal
    em_level: int | None
    age_band: str
    first_service_date: date | None
    service_month: str | None


def age_band(age: int | None) -> str:
    """The analytics age band of an age in whole years (ages above 89 arrive capped at 90)."""
    if age is None:
        return UNKNOWN_AGE_BAND
    for upper, label in AGE_BANDS:
        if age < upper:
            return label
    return OLDEST_AGE_BAND


def first_service_date(claim: Claim) -> date | None:
    """The header's from date, else the earliest line from date: the date silver is partitioned by (its month)."""
    if claim.service_date_from is not None:
        return claim.service_date_from
    dates = [line.service_date_from for line in claim.lines if line.service_date_from is not None]
    return min(dates) if dates else None


def em_level(claim: Claim, codesets: CodeSets) -> int | None:
    """The highest E/M level billed on the claim (from the procedure code set), None when no line is an E/M visit."""
    levels = []
    for line in claim.lines:
        if line.procedure_code is None:
            continue
        on = line.service_date_from or claim.service_date_from
        entry = codesets.procedures.get(line.procedure_code, on) or codesets.procedures.get(line.procedure_code)
        level = entry.extra.get("em_level") if entry is not None else None
        if level:
            levels.append(int(level))
    return max(levels) if levels else None


def enrich_claim(claim: Claim, codesets: CodeSets, derived: PhiDerived | None) -> Enrichment:
    """Silver's enrichment columns for one claim; `derived` is the record's `phi_derived` block."""
    taxonomy = claim.billing_provider.taxonomy if claim.billing_provider is not None else None
    first = first_service_date(claim)
    return Enrichment(
        billing_specialty=codesets.specialty_by_taxonomy.get(taxonomy or "", UNKNOWN_SPECIALTY),
        principal_diagnosis=claim.diagnoses[0].code if claim.diagnoses else None,
        line_count=len(claim.lines),
        total_units=sum((line.units for line in claim.lines if line.units is not None), Decimal(0)),
        em_level=em_level(claim, codesets),
        age_band=age_band(derived["patient_age_years"] if derived is not None else None),
        first_service_date=first,
        service_month=first.strftime("%Y-%m") if first is not None else None,
    )
