"""Code-set facts the generator draws from, precomputed once per run from `libs.codesets`.

Why a separate view: the generator samples thousands of codes per second, so it needs plain dicts and tuples (median
charge in cents, timed minutes, revenue code, billable diagnoses per specialty) rather than effective-dated lookups in
the hot path. Everything here is read from the shipped code tables so that a code-set update changes generated data
without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import simple_icd_10_cm as icd10

from libs.codesets import CodeSets, SpecialtyProfile


@dataclass(frozen=True, slots=True)
class ProcedureInfo:
    """One HCPCS/CPT code of the procedures table, as the generator uses it."""

    code: str
    category: str
    em_level: int | None
    median_cents: int
    timed_minutes: int | None  # minutes per unit for timed services (E/M visits, therapy), else None
    revenue_code: str  # the revenue code a hospital bills this service under


@dataclass(frozen=True)
class Reference:
    """Generator-ready code facts, all in effect throughout the generation window."""

    procedures: dict[str, ProcedureInfo]
    em_new: dict[int, str]  # E/M level -> new-patient office visit code
    em_established: dict[int, str]  # E/M level -> established-patient office visit code
    diagnoses_by_specialty: dict[str, tuple[str, ...]]  # billable ICD-10-CM codes, dotless
    all_diagnoses: tuple[str, ...]
    ncci_partners: dict[str, frozenset[str]]  # code -> codes it must not be billed with (either column)
    mue: dict[str, int]
    facility_procedures: tuple[str, ...]  # hospital outpatient ancillaries (lab, imaging, cardiology, procedures)


def billable_diagnoses(codes: tuple[str, ...], codesets: CodeSets) -> tuple[str, ...]:
    """The billable codes for a profile's diagnosis list, dotless.

    Profiles name some codes that became category headers when CMS expanded them (M54.5 -> M54.50/51/59 in 2021,
    R51 -> R51.0/R51.9 in 2020); those are replaced by their billable descendants so that every generated diagnosis
    is a leaf code of the current ICD-10-CM release.
    """
    found: list[str] = []
    for code in codes:
        if codesets.icd10cm.is_billable(code):
            candidates = [code]
        elif codesets.icd10cm.exists(code):
            candidates = [c.replace(".", "") for c in icd10.get_descendants(code) if codesets.icd10cm.is_billable(c)]
        else:
            candidates = []
        for candidate in candidates:
            if candidate not in found:
                found.append(candidate)
    return tuple(found)


def _int_or_none(text: str) -> int | None:
    return int(text) if text else None


def build_reference(codesets: CodeSets, window_start: date, window_end: date) -> Reference:
    """Read the code tables into generator-ready shape; only codes in effect for the whole window are used."""
    procedures: dict[str, ProcedureInfo] = {}
    for code in codesets.procedures.codes():
        entry = codesets.procedures.get(code, window_start)
        if entry is None or not entry.in_effect(window_end):
            continue  # retired (e.g. 99201 ended 2020-12-31) or not yet effective
        procedures[code] = ProcedureInfo(
            code=code,
            category=entry.extra["category"],
            em_level=_int_or_none(entry.extra.get("em_level", "")),
            median_cents=round(float(entry.extra["median_charge"]) * 100),
            timed_minutes=_int_or_none(entry.extra.get("timed_minutes", "")),
            revenue_code=entry.extra["revenue_code"],
        )
    em_new = {p.em_level: p.code for p in procedures.values() if p.category == "em_new" and p.em_level}
    em_established = {
        p.em_level: p.code for p in procedures.values() if p.category == "em_established" and p.em_level
    }
    by_specialty: dict[str, tuple[str, ...]] = {}
    every: list[str] = []
    for profile in codesets.specialties:
        codes = billable_diagnoses(profile.diagnoses, codesets)
        by_specialty[profile.specialty] = codes
        every.extend(c for c in codes if c not in every)
    partners: dict[str, set[str]] = {}
    for pair in codesets.ncci_pairs:
        if pair.effective_from <= window_end and (pair.effective_to is None or pair.effective_to >= window_start):
            partners.setdefault(pair.column1, set()).add(pair.column2)
            partners.setdefault(pair.column2, set()).add(pair.column1)
    mue: dict[str, int] = {}
    for code in codesets.mue.codes():
        limit = codesets.mue_limit(code, window_start)
        if limit is not None:
            mue[code] = int(limit)
    facility = tuple(
        p.code for p in procedures.values() if p.category in {"lab", "imaging", "cardiology", "procedure"}
    )
    return Reference(
        procedures=procedures,
        em_new=em_new,
        em_established=em_established,
        diagnoses_by_specialty=by_specialty,
        all_diagnoses=tuple(every),
        ncci_partners={code: frozenset(codes) for code, codes in partners.items()},
        mue=mue,
        facility_procedures=facility,
    )


def specialty_procedures(profile: SpecialtyProfile, reference: Reference) -> tuple[str, ...]:
    """The profile's usual procedures that are in effect (unknown or retired codes are skipped)."""
    return tuple(code for code in profile.procedures if code in reference.procedures)
