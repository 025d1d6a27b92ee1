"""Versioned reference code sets, loaded at run time from data files with effective dates.

Why data files and not literals: code sets change every quarter (new places of service, retired E/M codes, new
exclusions); a claim must be judged against the codes in force on its service date, and an operator must be able to
update a table without a code change. `manifest.json` names each table's version and source.

ICD-10-CM comes from the maintained `simple-icd-10-cm` package (the full CMS tabular list, offline).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path

import simple_icd_10_cm as icd10

DATA_DIR = Path(__file__).resolve().parent / "data"
ICD10_EFFECTIVE = date(2015, 10, 1)


@dataclass(frozen=True)
class CodeEntry:
    """One row of a code table: a code valid from `effective_from` through `effective_to` (inclusive, or open)."""

    code: str
    description: str
    effective_from: date
    effective_to: date | None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def in_effect(self, on: date | None) -> bool:
        """Whether the code is valid on `on` (None means 'ever valid')."""
        if on is None:
            return True
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@dataclass(frozen=True)
class CodeTable:
    """A named, versioned code table; a code may have several rows for different effective periods."""

    name: str
    version: str
    entries: dict[str, tuple[CodeEntry, ...]]

    def is_valid(self, code: str | None, on: date | None = None) -> bool:
        """Whether `code` exists and is in effect on `on`."""
        if code is None:
            return False
        return any(entry.in_effect(on) for entry in self.entries.get(code, ()))

    def get(self, code: str, on: date | None = None) -> CodeEntry | None:
        """The row for `code` in effect on `on`, if any."""
        for entry in self.entries.get(code, ()):
            if entry.in_effect(on):
                return entry
        return None

    def codes(self, on: date | None = None) -> list[str]:
        """All codes (in effect on `on`), in file order."""
        return [code for code, rows in self.entries.items() if any(r.in_effect(on) for r in rows)]

    def rows(self) -> Iterable[CodeEntry]:
        """Every row, for exporting the table (e.g. as a Spark broadcast frame)."""
        for rows in self.entries.values():
            yield from rows


def _parse_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _read_table(name: str, version: str, path: Path, key: str = "code") -> CodeTable:
    entries: dict[str, list[CodeEntry]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            code = row[key].strip()
            start = _parse_date(row.get("effective_from")) or date(1900, 1, 1)
            entry = CodeEntry(
                code=code,
                description=(row.get("description") or row.get("label") or "").strip(),
                effective_from=start,
                effective_to=_parse_date(row.get("effective_to")),
                extra={k: (v or "").strip() for k, v in row.items() if k is not None},
            )
            entries.setdefault(code, []).append(entry)
    return CodeTable(name=name, version=version, entries={k: tuple(v) for k, v in entries.items()})


@dataclass(frozen=True)
class NcciPair:
    """A procedure-to-procedure edit: column2 is bundled into column1 when billed together the same day."""

    column1: str
    column2: str
    effective_from: date
    effective_to: date | None
    modifier_allowed: bool


@dataclass(frozen=True)
class SpecialtyProfile:
    """Expected E/M level mix and common codes for a specialty (drives the generator and the upcoding screen)."""

    specialty: str
    taxonomy: str
    em_level_weights: dict[int, float]
    procedures: tuple[str, ...]
    diagnoses: tuple[str, ...]


class Icd10Table:
    """ICD-10-CM lookups through simple-icd-10-cm, which accepts dotted and dotless codes."""

    def __init__(self, version: str) -> None:
        self.version = version

    def exists(self, code: str) -> bool:
        """Whether the code is in the ICD-10-CM tabular list (any level)."""
        return bool(code) and icd10.is_valid_item(code)

    def is_billable(self, code: str) -> bool:
        """Billable codes are the leaves of the tabular list; categories with children are not billable."""
        return self.exists(code) and icd10.is_leaf(code)

    def description(self, code: str) -> str | None:
        """The tabular-list description, or None for unknown codes."""
        return icd10.get_description(code) if self.exists(code) else None

    @cache  # noqa: B019  (one instance per process; the list is static)
    def billable_codes(self) -> frozenset[str]:
        """All billable (leaf) codes, dotless: the table the Spark path broadcasts."""
        return frozenset(c for c in icd10.get_all_codes(with_dots=False) if icd10.is_leaf(c))

    @cache  # noqa: B019
    def all_codes(self) -> frozenset[str]:
        """Every code in the tabular list (chapters and blocks excluded), dotless."""
        return frozenset(
            c
            for c in icd10.get_all_codes(with_dots=False)
            if icd10.is_category_or_subcategory(c) or icd10.is_extended_subcategory(c)
        )


@dataclass(frozen=True)
class CodeSets:
    """Every reference table the rules, generator and screening use."""

    versions: dict[str, str]
    place_of_service: CodeTable
    frequency_codes: CodeTable
    type_of_bill_facility: CodeTable
    type_of_bill_classification: CodeTable
    modifiers: CodeTable
    revenue_codes: CodeTable
    procedures: CodeTable
    mue: CodeTable
    excluded_providers: CodeTable
    ncci_pairs: tuple[NcciPair, ...]
    specialties: tuple[SpecialtyProfile, ...]
    icd10cm: Icd10Table

    @cached_property
    def specialty_by_taxonomy(self) -> dict[str, str]:
        """Specialty label of each provider taxonomy code that has a specialty profile."""
        return {profile.taxonomy: profile.specialty for profile in self.specialties}

    def mue_limit(self, code: str, on: date | None = None) -> Decimal | None:
        """Medically unlikely edit: the most units of `code` per line per day, if the table has one."""
        entry = self.mue.get(code, on)
        return Decimal(entry.extra["max_units"]) if entry else None

    def is_excluded(self, npi: str | None, on: date | None) -> bool:
        """Whether `npi` is on the excluded-provider list on the service date."""
        return npi is not None and self.excluded_providers.is_valid(npi, on)


def _read_ncci(path: Path) -> tuple[NcciPair, ...]:
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(
            NcciPair(
                column1=row["column1"],
                column2=row["column2"],
                effective_from=_parse_date(row["effective_from"]) or date(1900, 1, 1),
                effective_to=_parse_date(row["effective_to"]),
                modifier_allowed=row["modifier_indicator"] == "1",
            )
            for row in csv.DictReader(handle)
        )


def _read_specialties(path: Path) -> tuple[SpecialtyProfile, ...]:
    profiles = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            weights = {int(k): float(v) for k, v in (pair.split(":") for pair in row["em_level_weights"].split("|"))}
            profiles.append(
                SpecialtyProfile(
                    specialty=row["specialty"],
                    taxonomy=row["taxonomy"],
                    em_level_weights=weights,
                    procedures=tuple(row["procedures"].split("|")),
                    diagnoses=tuple(row["diagnoses"].split("|")),
                )
            )
    return tuple(profiles)


@cache
def load_codesets(data_dir: Path = DATA_DIR) -> CodeSets:
    """Load every table named in `manifest.json` (cached per directory)."""
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))["tables"]
    versions = {name: spec["version"] for name, spec in manifest.items()}

    def table(name: str, key: str = "code") -> CodeTable:
        return _read_table(name, versions[name], data_dir / manifest[name]["file"], key=key)

    return CodeSets(
        versions=versions,
        place_of_service=table("place_of_service"),
        frequency_codes=table("frequency_codes"),
        type_of_bill_facility=table("type_of_bill_facility"),
        type_of_bill_classification=table("type_of_bill_classification"),
        modifiers=table("modifiers"),
        revenue_codes=table("revenue_codes"),
        procedures=table("procedures"),
        mue=table("mue"),
        excluded_providers=table("excluded_providers", key="npi"),
        ncci_pairs=_read_ncci(data_dir / manifest["ncci_pairs"]["file"]),
        specialties=_read_specialties(data_dir / manifest["specialty_profiles"]["file"]),
        icd10cm=Icd10Table(versions["icd10cm"]),
    )
