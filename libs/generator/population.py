"""The synthetic world claims are drawn from: payers, practitioners and their billing groups, facilities, members.

Why a population first and claims second: realistic claims repeat the same parties (a member sees the same clinic, a
practitioner bills ~200 claims), which is what the stateful fraud screens (duplicates, impossible days, upcoding)
depend on. Every person here is obviously synthetic: test-style family names, "SYNTHETIC" street names and 555-01xx
telephone numbers, so generated files can never be mistaken for real PHI.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

from libs.codesets import CodeSets, SpecialtyProfile
from libs.generator.config import GeneratorConfig
from libs.generator.npi import make_npi

FIRST_NAMES = (
    "ALEX", "JORDAN", "TAYLOR", "MORGAN", "CASEY", "RILEY", "JAMIE", "AVERY", "QUINN", "SKYLER", "DREW", "ROBIN",
    "SAM", "CHARLIE", "PAT", "LEE", "DANA", "KERRY", "JESSE", "REESE", "EMERSON", "FINLEY", "HAYDEN", "ROWAN",
)
# Family names that no reader could mistake for a real person's.
LAST_NAME_ROOTS = (
    "TESTPATIENT", "SAMPLE", "FAKE", "MOCK", "DUMMY", "PLACEHOLDER", "SYNTHETIC", "EXAMPLE", "FICTION", "NOTREAL",
    "TESTCASE", "FIXTURE", "STUB", "DEMO", "PRETEND",
)
LAST_NAME_SUFFIXES = ("", "SON", "TON", "WELL", "BERG", "FIELD", "WORTH", "MAN")
MIDDLE_INITIALS = ("A", "B", "C", "D", "E", "J", "K", "L", "M", "Q", "R", "T", None, None, None)
STREETS = ("OAK", "MAPLE", "CEDAR", "PINE", "ELM", "BIRCH", "WILLOW", "ASPEN", "SPRUCE", "LINDEN")
STREET_TYPES = ("ST", "AVE", "RD", "LN", "WAY", "CT", "DR", "BLVD")
CITIES = ("SAMPLETOWN", "TESTVILLE", "MOCKBURG", "FAKEFORD", "EXAMPLE CITY", "STUBTON", "DEMOPORT", "FIXTUREVILLE")
STATES = ("PA", "NY", "OH", "TX", "CA", "FL", "IL", "GA", "NC", "MI", "WA", "AZ", "MA", "TN", "MO")

# Specialty mix of practitioners (weights per specialty name in specialty_profiles.csv; unknown names get 1.0).
SPECIALTY_WEIGHTS = {
    "Family Medicine": 25.0,
    "Internal Medicine": 20.0,
    "Orthopaedic Surgery": 9.0,
    "Cardiovascular Disease": 9.0,
    "Dermatology": 7.0,
    "Physical Therapist": 10.0,
    "Gastroenterology": 7.0,
    "Emergency Medicine": 13.0,
}
GROUP_TAXONOMY = "193400000X"  # single-specialty group
HOSPITAL_TAXONOMY = "282N00000X"  # general acute care hospital
ASC_TAXONOMY = "261QA1903X"  # ambulatory surgical clinic/center

PAYERS = (
    ("SYNPAYER1", "SYNTHETIC HEALTH PLAN"),
    ("SYNPAYER2", "SYNTHETIC MUTUAL INSURANCE"),
    ("SYNPAYER3", "SYNTHETIC EMPLOYER BENEFIT TRUST"),
    ("SYNMCAID1", "SYNTHETIC STATE MEDICAID"),
    ("SYNMCARE1", "SYNTHETIC MEDICARE CONTRACTOR"),
)
MEDICARE_PAYER_INDEX = 4
MEDICAID_PAYER_INDEX = 3


@dataclass(frozen=True, slots=True)
class PayerRecord:
    """A payer claims are sent to."""

    payer_id: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        """The canonical `Payer` shape."""
        return {"payer_id": self.payer_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Organisation:
    """A billing group or a facility (NPI entity type 2)."""

    npi: str
    name: str
    taxonomy: str
    tax_id: str
    address: dict[str, Any]

    def as_provider(self) -> dict[str, Any]:
        """The canonical `Provider` shape."""
        return {
            "npi": self.npi, "taxonomy": self.taxonomy, "name": self.name, "entity_type": "2",
            "tax_id": self.tax_id, "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class Practitioner:
    """An individual provider (entity type 1) of one specialty who bills through a group or as a solo practice."""

    index: int
    npi: str
    name: str
    profile: SpecialtyProfile
    address: dict[str, Any]
    group: Organisation | None  # None: a solo practice billing under the practitioner's own NPI
    upcoder: bool  # bills a heavily level-5 E/M mix: the FRAUD_UPCODING scenario

    def as_provider(self) -> dict[str, Any]:
        """The canonical `Provider` shape as rendering (or attending) provider."""
        return {
            "npi": self.npi, "taxonomy": self.profile.taxonomy, "name": self.name, "entity_type": "1",
            "specialty": self.profile.specialty,
        }

    def as_billing_provider(self) -> dict[str, Any]:
        """The billing provider: the group, or the practitioner for a solo practice."""
        if self.group is not None:
            return self.group.as_provider()
        return {**self.as_provider(), "address": self.address, "tax_id": f"9{self.npi[1:9]}"}

    @property
    def bills_em(self) -> bool:
        """Whether the specialty bills evaluation and management visits at all (therapists do not)."""
        return sum(self.profile.em_level_weights.values()) > 0


@dataclass(frozen=True, slots=True)
class Member:
    """A plan member: demographics (PHI), eligibility span, optional death date, and the subscriber if a dependent."""

    index: int
    member_id: str
    first_name: str
    last_name: str
    middle_name: str | None
    birth_date: date
    gender: str
    address: dict[str, Any]
    phone: str
    payer: PayerRecord
    eligibility_start: date
    eligibility_end: date | None  # None: still eligible at the anchor date
    death_date: date | None
    subscriber: Member | None  # None: the member is the subscriber (relationship 18, self)
    relationship_code: str

    def service_span(self, window_start: date, window_end: date) -> tuple[date, date]:
        """The days on which this member can legitimately receive services inside the window."""
        start = max(window_start, self.eligibility_start)
        end = window_end
        if self.eligibility_end is not None:
            end = min(end, self.eligibility_end)
        if self.death_date is not None:
            end = min(end, self.death_date)
        return start, end

    def as_person(self) -> dict[str, Any]:
        """The canonical `Person` shape (all PHI fields synthetic)."""
        return {
            "member_id": self.member_id,
            "last_name": self.last_name,
            "first_name": self.first_name,
            "middle_name": self.middle_name,
            "birth_date": self.birth_date,
            "death_date": self.death_date,
            "phone": self.phone,
            "address": self.address,
            "gender": self.gender,
            "relationship_code": self.relationship_code,
        }


@dataclass(frozen=True)
class Population:
    """Everything claims are drawn from, with cumulative weights precomputed for fast seeded sampling."""

    payers: tuple[PayerRecord, ...]
    practitioners: tuple[Practitioner, ...]
    practitioner_cum_weights: tuple[float, ...]
    honest_practitioners: tuple[Practitioner, ...]  # everyone but the upcoders: the base of injected claims
    attending_practitioners: tuple[Practitioner, ...]  # physicians who attend hospital stays
    therapists: tuple[Practitioner, ...]  # timed-minute billers, used for impossible-day bursts
    facilities: tuple[Organisation, ...]
    members: tuple[Member, ...]
    deceased_members: tuple[Member, ...]
    window_start: date
    window_end: date


def _synthetic_address(rng: random.Random, state: str | None = None) -> dict[str, Any]:
    return {
        "line1": f"{rng.randint(1, 9999)} SYNTHETIC {rng.choice(STREETS)} {rng.choice(STREET_TYPES)}",
        "line2": None,
        "city": rng.choice(CITIES),
        "state": state or rng.choice(STATES),
        "postal_code": f"{rng.randint(10000, 99999)}",
    }


def _last_name(rng: random.Random) -> str:
    return rng.choice(LAST_NAME_ROOTS) + rng.choice(LAST_NAME_SUFFIXES)


class _NpiAllocator:
    """Unique, Luhn-valid NPIs that never collide with the excluded-provider list (whose NPIs only fraud uses)."""

    def __init__(self, rng: random.Random, reserved: set[str]) -> None:
        self._rng = rng
        self._used = set(reserved)

    def next(self) -> str:
        while True:
            npi = make_npi(str(self._rng.randint(100_000_000, 299_999_999)))
            if npi not in self._used:
                self._used.add(npi)
                return npi


def _specialty_cycle(rng: random.Random, profiles: tuple[SpecialtyProfile, ...], count: int) -> list[SpecialtyProfile]:
    """Every specialty at least once (so each scenario has a practitioner to use), then a weighted mix."""
    chosen = list(profiles[:count])
    weights = [SPECIALTY_WEIGHTS.get(p.specialty, 1.0) for p in profiles]
    chosen.extend(rng.choices(profiles, weights=weights, k=max(0, count - len(profiles))))
    # Grouped by specialty so that neighbours can share a single-specialty billing group.
    return sorted(chosen, key=lambda profile: profile.specialty)


def _build_practitioners(
    rng: random.Random, config: GeneratorConfig, codesets: CodeSets, npis: _NpiAllocator, upcoder_count: int
) -> list[Practitioner]:
    profiles = _specialty_cycle(rng, codesets.specialties, config.provider_count)
    # Upcoders must be able to bill E/M visits; pick them among the E/M-billing specialties.
    em_indexes = [i for i, p in enumerate(profiles) if sum(p.em_level_weights.values()) > 0]
    upcoders = set(rng.sample(em_indexes, min(upcoder_count, len(em_indexes))))
    practitioners: list[Practitioner] = []
    group: Organisation | None = None
    group_left = 0
    group_specialty = ""
    for index, profile in enumerate(profiles):
        # Practitioners of the same specialty next to each other share a group until its size is used up; about a
        # quarter practise solo and bill under their own NPI.
        if group is None or group_left <= 0 or group_specialty != profile.specialty:
            group = None
            if rng.random() >= 0.25:
                group = Organisation(
                    npi=npis.next(),
                    name=f"SYNTHETIC {profile.specialty.upper()} GROUP {index + 1}",
                    taxonomy=GROUP_TAXONOMY,
                    tax_id=f"{rng.randint(10, 99)}{rng.randint(1_000_000, 9_999_999)}",
                    address=_synthetic_address(rng),
                )
                group_left = rng.randint(2, 8)
                group_specialty = profile.specialty
        group_left -= 1
        practitioners.append(
            Practitioner(
                index=index,
                npi=npis.next(),
                name=f"{_last_name(rng)}, {rng.choice(FIRST_NAMES)}",
                profile=profile,
                address=group.address if group is not None else _synthetic_address(rng),
                group=group,
                upcoder=index in upcoders,
            )
        )
    return practitioners


def _build_facilities(rng: random.Random, config: GeneratorConfig, npis: _NpiAllocator) -> list[Organisation]:
    facilities = []
    for index in range(config.facility_count):
        asc = index % 5 == 4  # one in five is an ambulatory surgery center, the others hospitals
        facilities.append(
            Organisation(
                npi=npis.next(),
                name=f"SYNTHETIC {'SURGERY CENTER' if asc else 'GENERAL HOSPITAL'} {index + 1}",
                taxonomy=ASC_TAXONOMY if asc else HOSPITAL_TAXONOMY,
                tax_id=f"{rng.randint(10, 99)}{rng.randint(1_000_000, 9_999_999)}",
                address=_synthetic_address(rng),
            )
        )
    return facilities


def _age_years(rng: random.Random) -> int:
    bucket = rng.random()
    if bucket < 0.15:
        return rng.randint(0, 17)
    if bucket < 0.68:
        return rng.randint(18, 64)
    return rng.randint(65, 96)


def _eligibility(
    rng: random.Random, birth: date, window_start: date, window_end: date
) -> tuple[date, date | None]:
    """An enrolment span overlapping the window by at least 60 days, so that every member can have claims.

    Most members enrolled long before the window; some join during it and a few leave during it.
    """
    window = (window_end - window_start).days
    if rng.random() < 0.85:
        start = window_start - timedelta(days=rng.randint(0, 2000))
    else:
        start = window_start + timedelta(days=rng.randint(0, max(0, window - 60)))
    start = max(start, birth)
    end: date | None = None
    if rng.random() < 0.06:
        end = max(start, window_start) + timedelta(days=60 + rng.randint(0, window))
        if end >= window_end:
            end = None
    return start, end


def _death_date(
    rng: random.Random, age: int, *, start: date, end: date | None, window_start: date, window_end: date
) -> date | None:
    """A death inside the window (after at least 30 eligible days) for a small, age-dependent share of members."""
    if rng.random() >= (0.06 if age >= 65 else 0.004):
        return None
    low = max(start, window_start) + timedelta(days=30)
    high = min(end or window_end, window_end - timedelta(days=10))
    if low >= high:
        return None
    return low + timedelta(days=rng.randint(0, (high - low).days))


def _payer_for(rng: random.Random, age: int, payers: tuple[PayerRecord, ...]) -> PayerRecord:
    """Medicare from 65, Medicaid for some, otherwise a commercial plan."""
    if age >= 65:
        return payers[MEDICARE_PAYER_INDEX]
    if rng.random() < 0.18:
        return payers[MEDICAID_PAYER_INDEX]
    return payers[rng.randrange(3)]


def _build_members(
    rng: random.Random, config: GeneratorConfig, payers: tuple[PayerRecord, ...], window_start: date, window_end: date
) -> list[Member]:
    members: list[Member] = []
    adults: list[Member] = []  # living adult subscribers, who can cover dependents
    for index in range(config.member_count):
        age = _age_years(rng)
        birth = config.anchor_date - timedelta(days=age * 365 + rng.randint(30, 364))
        start, end = _eligibility(rng, birth, window_start, window_end)
        death = _death_date(rng, age, start=start, end=end, window_start=window_start, window_end=window_end)
        if death is not None:
            end = death  # coverage ends with the member's death
        subscriber: Member | None = None
        relationship = "18"
        if adults and (age < 18 or rng.random() < 0.12):
            # A dependent: a child (19) or a spouse (01) covered under an adult subscriber's policy.
            subscriber = adults[rng.randrange(len(adults))]
            relationship = "19" if age < 26 else "01"
        member = Member(
            index=index,
            member_id=f"SYN{config.seed % 1000:03d}{index + 1:09d}",
            first_name=rng.choice(FIRST_NAMES),
            last_name=subscriber.last_name if subscriber is not None else _last_name(rng),
            middle_name=rng.choice(MIDDLE_INITIALS),
            birth_date=birth,
            gender=rng.choice(("F", "M", "F", "M", "U")),
            address=subscriber.address if subscriber is not None else _synthetic_address(rng),
            phone=f"55555501{rng.randint(0, 99):02d}",  # 555-0100..0199 is reserved for fiction
            payer=subscriber.payer if subscriber is not None else _payer_for(rng, age, payers),
            eligibility_start=start,
            eligibility_end=end,
            death_date=death,
            subscriber=subscriber,
            relationship_code=relationship,
        )
        members.append(member)
        if age >= 18 and subscriber is None and death is None:
            adults.append(member)
    return members


def upcoder_count(config: GeneratorConfig, scenario_count: int) -> int:
    """How many practitioners upcode: about the per-scenario share of fraud, at least one when fraud is asked for."""
    if config.fraud_rate <= 0:
        return 0
    return max(1, round(config.provider_count * config.fraud_rate / scenario_count))


def build_population(
    rng: random.Random, config: GeneratorConfig, codesets: CodeSets, scenario_count: int
) -> Population:
    """Draw the whole population from `rng` (deterministic for a seeded generator)."""
    window_end = config.anchor_date - timedelta(days=3)
    window_start = config.anchor_date - timedelta(days=config.window_days)
    reserved = {entry.code for entry in codesets.excluded_providers.rows()}
    npis = _NpiAllocator(rng, reserved)
    payers = tuple(PayerRecord(payer_id, name) for payer_id, name in PAYERS)
    practitioners = _build_practitioners(rng, config, codesets, npis, upcoder_count(config, scenario_count))
    facilities = _build_facilities(rng, config, npis)
    members = _build_members(rng, config, payers, window_start, window_end)
    # Claim volume per practitioner varies (lognormal), as real panel sizes do.
    weights = [rng.lognormvariate(0.0, 0.35) for _ in practitioners]
    honest = tuple(p for p in practitioners if not p.upcoder)
    return Population(
        payers=payers,
        practitioners=tuple(practitioners),
        practitioner_cum_weights=tuple(accumulate(weights)),
        honest_practitioners=honest,
        attending_practitioners=tuple(p for p in honest if p.bills_em) or honest,
        therapists=tuple(p for p in honest if not p.bills_em),
        facilities=tuple(facilities),
        members=tuple(members),
        deceased_members=tuple(m for m in members if m.death_date is not None),
        window_start=window_start,
        window_end=window_end,
    )
