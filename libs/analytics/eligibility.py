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
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from libs.codesets import CodeSets
from libs.enrichment import age_band
from libs.generator.config import GeneratorConfig
from libs.generator.fraud import PROVIDER_LEVEL_SCENARIOS, SCENARIOS
from libs.generator.population import Population, build_population
from libs.model.claim import PhiKind
from libs.phi.derived import age_in_years, capped_age
from libs.settings import Settings, WarehouseKind

SYNPUF_PAYER_ID = "CMS-MEDICARE"
SYNPUF_GENDERS = {"1": "M", "2": "F"}
_SYNPUF_YEAR = re.compile(r"_(\d{4})_Beneficiary", re.IGNORECASE)


class EligibilityError(ValueError):
    """Member months could not be loaded: a missing or unnamed source file, or a warehouse this loader cannot reach."""


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


def generated_population(config: GeneratorConfig, codesets: CodeSets) -> Population:
    """The population `generate_claims(config)` draws its claims from, rebuilt without generating a claim.

    The generator draws its population first from `random.Random(seed)` (libs.generator.engine._Run), so the same
    seed and config rebuild exactly the members whose claims `claims produce --generated` sent: their eligibility
    is the plan's enrolment for those claims (tests/analytics prove every generated member is in it).
    """
    rng = random.Random(config.seed)  # noqa: S311  (reproducible simulation, the generator's own seeding)
    return build_population(rng, config, codesets, len(SCENARIOS) + len(PROVIDER_LEVEL_SCENARIOS))


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
    """Upsert member months by (member, payer, month): loading the same source twice changes nothing.

    Rows go in as one Arrow table (a population of a million claims has ~10^5-10^6 member months; row-by-row inserts
    took minutes). A key repeated in `rows` keeps its last row, as sequential upserts would.
    """
    unique = {(row.member_token, row.payer_id, row.eligibility_month): row for row in rows}
    if not unique:
        return 0
    names = [f.name for f in fields(EligibilityRow)]
    table = pa.table({name: [getattr(row, name) for row in unique.values()] for name in names})
    connection.register("eligibility_rows", table)
    try:
        connection.execute(f"INSERT OR REPLACE INTO eligibility ({', '.join(names)}) "  # noqa: S608  (field names)
                           f"SELECT {', '.join(names)} FROM eligibility_rows")
    finally:
        connection.unregister("eligibility_rows")
    return len(unique)


def member_tokenizer(settings: Settings) -> Callable[[str], str]:
    """The producer's member-id token function (keyed HMAC, libs.phi.tokens) for these settings.

    Eligibility must carry the very tokens the claims carry, or PMPM would join nothing: the same keys, the same
    domain (the member-id PHI kind) as PhiProtector uses for `member_id` leaves.
    """
    from libs.phi.keys import token_keys_from_settings  # noqa: PLC0415  (key material only when loading)
    from libs.phi.tokens import Tokenizer  # noqa: PLC0415

    tokenizer = Tokenizer(token_keys_from_settings(settings.security))
    return lambda member_id: tokenizer.token(PhiKind.MEMBER_ID.value, member_id)


def synpuf_year(path: Path) -> int:
    """The year of a DE-SynPUF beneficiary summary file from its CMS name (DE1_0_2008_Beneficiary_Summary_...)."""
    found = _SYNPUF_YEAR.search(path.name)
    if found is None:
        msg = (f"{path.name}: expected a DE-SynPUF beneficiary file name with its year "
               "(DE1_0_<year>_Beneficiary_Summary_File_Sample_<n>.csv), found none; pass the year explicitly")
        raise EligibilityError(msg)
    return int(found.group(1))


def _load_and_rebuild(settings: Settings, rows: Iterable[EligibilityRow]) -> int:
    from libs.analytics.marts import rebuild_marts  # noqa: PLC0415  (marts import the warehouse loader)
    from libs.warehouse.load import connect_duckdb  # noqa: PLC0415

    if settings.warehouse.kind is not WarehouseKind.DUCKDB:
        msg = (f"eligibility load: expected the local DuckDB warehouse (warehouse.kind duckdb), found "
               f"{settings.warehouse.kind.value}; on Redshift, stage the member months as Parquet and load them "
               "with the warehouse load (table eligibility)")
        raise EligibilityError(msg)
    connection = connect_duckdb(settings.warehouse.duckdb_path)
    try:
        loaded = load_eligibility(connection, rows)
        rebuild_marts(connection)  # PMPM divides by member months: recompute it now, not at the next batch
    finally:
        connection.close()
    return loaded


def load_generated_eligibility(settings: Settings, count: int, seed: int) -> int:
    """Load the member months of the population `claims produce --generated --count N --seed S` draws from.

    The call `make run` makes after producing (same count and seed); returns the member months loaded.
    """
    from libs.codesets import load_codesets  # noqa: PLC0415

    population = generated_population(GeneratorConfig(count=count, seed=seed), load_codesets())
    return _load_and_rebuild(settings, eligibility_from_population(population, member_tokenizer(settings)))


def load_synpuf_eligibility(settings: Settings, path: Path, year: int | None = None) -> int:
    """Load the member months of a DE-SynPUF beneficiary summary file (its year from the file name by default)."""
    if not path.is_file():
        msg = f"DE-SynPUF beneficiary file: expected a CSV file at {path}, found none"
        raise EligibilityError(msg)
    rows = eligibility_from_synpuf(path, year if year is not None else synpuf_year(path), member_tokenizer(settings))
    return _load_and_rebuild(settings, rows)
