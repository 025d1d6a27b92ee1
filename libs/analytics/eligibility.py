"""Member months: the eligibility table that PMPM and per-1,000 figures divide by.

Sources: the plan's enrolment (the generator's population: each member's eligibility span, death date and payer)
and the CMS DE-SynPUF beneficiary summary files (per member and year, the number of months of Part A coverage,
BENE_HI_CVRAGE_TOT_MONS). Member IDs are turned into the warehouse's member tokens by the caller's `token` function
(the producer's keyed HMAC, libs.phi.tokens), so this module never stores a member ID.

DE-SynPUF says how many months a member was covered in a year, not which: the months are counted from January
(ending at the month of death when there is one). That is the convention CMS's own SynPUF documentation implies for
annual summaries, and it keeps a year's member months exact even when their placement is approximate.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass
from datetime import date
from pathlib import Path

import duckdb

from libs.enrichment import age_band
from libs.generator.population import Population
from libs.phi.derived import age_in_years, capped_age

SYNPUF_PAYER_ID = "CMS-MEDICARE"
SYNPUF_GENDERS = {"1": "M", "2": "F"}


@dataclass(frozen=True)
class EligibilityRow:
    """One member month (no PHI: the member is a token, the age a band)."""

    member_token: str
    payer_id: str
    eligibility_month: date
    age_band: str | None
    gender: str | None
    state: str | None
    source: str


def months_between(start: date, end: date) -> list[date]:
    """First days of the months from `start`'s month to `end`'s month, both included (empty when end < start)."""
    months: list[date] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def eligibility_from_population(population: Population, token: Callable[[str], str]) -> Iterator[EligibilityRow]:
    """Member months of the generator's members over its claims window (eligibility span, ended by death)."""
    for member in population.members:
        start, end = member.service_span(population.window_start, population.window_end)
        band = age_band(capped_age(age_in_years(member.birth_date, population.window_end)))
        state = member.address.get("state") if isinstance(member.address, dict) else None
        for month in months_between(start, end):
            yield EligibilityRow(token(member.member_id), str(member.payer.payer_id), month, band, member.gender,
                                 state, "generator")


def eligibility_from_synpuf(path: Path, year: int, token: Callable[[str], str]) -> Iterator[EligibilityRow]:
    """Member months of a DE-SynPUF beneficiary summary file of `year` (counted from January, see module doc)."""
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            member = (row.get("DESYNPUF_ID") or "").strip()
            months_text = (row.get("BENE_HI_CVRAGE_TOT_MONS") or "0").strip() or "0"
            if not member or not months_text.isdigit():
                continue
            covered = min(int(months_text), 12)
            death = (row.get("BENE_DEATH_DT") or "").strip()
            if len(death) == 8 and death.isdigit() and int(death[:4]) == year:
                covered = min(covered, int(death[4:6]))
            birth = (row.get("BENE_BIRTH_DT") or "").strip()
            band = None
            if len(birth) == 8 and birth.isdigit():
                born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
                band = age_band(capped_age(age_in_years(born, date(year, 12, 31))))
            gender = SYNPUF_GENDERS.get((row.get("BENE_SEX_IDENT_CD") or "").strip())
            for month in range(1, covered + 1):
                yield EligibilityRow(token(member), SYNPUF_PAYER_ID, date(year, month, 1), band, gender, None,
                                     "synpuf-beneficiary")


def load_eligibility(connection: duckdb.DuckDBPyConnection, rows: Iterable[EligibilityRow]) -> int:
    """Upsert member months by (member, payer, month): loading the same source twice changes nothing."""
    values = [astuple(row) for row in rows]
    if values:
        connection.executemany(
            "INSERT OR REPLACE INTO eligibility (member_token, payer_id, eligibility_month, age_band, gender, state, "
            "source) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
    return len(values)
