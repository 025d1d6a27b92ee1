"""Non-identifying facts computed from PHI before it is protected, so rules can still run on protected records.

Why: after the producer encrypts birth and death dates, downstream rules (birth after service, service after death,
age-dependent edits) cannot read them. The producer therefore adds a ``phi_derived`` block computed from the plaintext:
- ``patient_age_years``: whole years at the reference service date; negative exactly when birth is after service (a
  data error the BIRTH_AFTER_SERVICE rule reports); ages over 89 are reported as 90, as Safe Harbor requires, so the
  derived block never reveals an exact age above 89 (which would narrow the birth year of a very small population).
- ``member_days_after_death``: last service date minus date of death, in days (positive = service after death).
- ``patient_zip3``: the Safe Harbor three-digit ZIP (``000`` for the sparsely populated prefixes in
  data/restricted_zip3.json) for geography analytics and de-identified export.
The reference service date is the claim's first service date (the earliest header or line date, the date the
BIRTH_AFTER_SERVICE rule judges on); the death comparison uses the last service date. The person is the patient,
or the subscriber when the patient is the subscriber (837 omits the patient loop then).
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import TypedDict

from libs.model import Claim, Person

PHI_DERIVED_KEY = "phi_derived"  # the block's key in a protected record
AGE_CAP = 90  # Safe Harbor: all ages over 89 are aggregated into a single category of 90 or older
_ZIP_RE = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_DATA = Path(__file__).parent / "data"


class PhiDerived(TypedDict):
    """The ``phi_derived`` block of a protected record."""

    patient_age_years: int | None
    member_days_after_death: int | None
    patient_zip3: str | None


@cache
def restricted_zip3() -> frozenset[str]:
    """ZIP3 prefixes with 20,000 or fewer residents (Census 2000), shipped as data."""
    document = json.loads((_DATA / "restricted_zip3.json").read_text(encoding="utf-8"))
    return frozenset(document["zip3"])


def safe_harbor_zip3(postal_code: str | None) -> str | None:
    """First three ZIP digits, ``000`` for restricted prefixes; None when the value is not a US ZIP or ZIP+4."""
    if not postal_code:
        return None
    match = _ZIP_RE.match(postal_code.strip())
    if match is None:
        return None
    zip3 = match.group(1)[:3]
    return "000" if zip3 in restricted_zip3() else zip3


def age_in_years(birth: date, on: date) -> int:
    """Completed years from `birth` to `on`; negative when `birth` is after `on` (never 0 for a future birth)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def capped_age(age: int) -> int:
    """Ages over 89 reported as 90."""
    return min(age, AGE_CAP)


def patient_of(claim: Claim) -> Person | None:
    """The patient, or the subscriber when the claim has no separate patient."""
    return claim.patient if claim.patient is not None else claim.subscriber


def _service_dates(claim: Claim) -> list[date]:
    dates = [d for d in (claim.service_date_from, claim.service_date_to) if d is not None]
    for line in claim.lines:
        dates.extend(d for d in (line.service_date_from, line.service_date_to) if d is not None)
    return dates


def reference_service_date(claim: Claim) -> date | None:
    """The first service date: the earliest header or line date (the date BIRTH_AFTER_SERVICE is judged on)."""
    dates = _service_dates(claim)
    return min(dates) if dates else None


def last_service_date(claim: Claim) -> date | None:
    """The latest header or line date: any service after a date of death is suspect, so the last one decides."""
    dates = _service_dates(claim)
    return max(dates) if dates else None


def derive_phi(claim: Claim) -> PhiDerived:
    """The ``phi_derived`` block for one claim (computed from plaintext, contains no identifier)."""
    person = patient_of(claim)
    service = reference_service_date(claim)
    age = days_after_death = None
    zip3 = None
    if person is not None:
        if person.birth_date is not None and service is not None:
            age = capped_age(age_in_years(person.birth_date, service))
        last = last_service_date(claim)
        if person.death_date is not None and last is not None:
            days_after_death = (last - person.death_date).days
        if person.address is not None:
            zip3 = safe_harbor_zip3(person.address.postal_code)
    return {"patient_age_years": age, "member_days_after_death": days_after_death, "patient_zip3": zip3}
