"""Building valid claims from the population: professional office visits and institutional outpatient/inpatient bills.

Why claims are built as plain dicts: injecting a defect or a fraud scenario is a small edit of a nested structure, and
plain dicts are cheap to build and edit. The engine validates each finished dict into a canonical `Claim` exactly once.

Every claim built here is valid as of the anchor date (and for a few weeks after it): billable ICD-10-CM codes,
Luhn-valid NPIs, code-set places of service and revenue codes, units within the MUE limits, no NCCI column-1/column-2
pair for the same member and day, header total equal to the sum of the line charges, service inside the member's
eligibility and before any death date, received within days of service.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from libs.codesets import CodeSets, SpecialtyProfile
from libs.generator.config import GeneratorConfig
from libs.generator.population import Member, Organisation, Population, Practitioner
from libs.generator.reference import Reference, specialty_procedures

ClaimDict = dict[str, Any]

# E/M level mix of an upcoding practitioner: mostly the highest level, whatever the specialty expects.
UPCODER_EM_WEIGHTS = {3: 0.05, 4: 0.15, 5: 0.80}
# NCCI-associated modifiers that let a column-2 code through an edit whose modifier indicator is 1.
NCCI_BYPASS_MODIFIERS = frozenset({"59", "XE", "XP", "XS", "XU"})
LATERAL_CODES = frozenset({"20610", "73030"})
# Places of service per specialty; every code has been in the CMS set since 2003, so claims moved back in time by a
# date defect do not pick up a place-of-service error as well.
PLACES_OF_SERVICE: dict[str, tuple[str, ...]] = {
    "Emergency Medicine": ("23",),
    "Gastroenterology": ("11", "22", "24"),
    "Physical Therapist": ("11", "11", "11", "12", "22"),
    "Orthopaedic Surgery": ("11", "11", "11", "22"),
}
DEFAULT_PLACES_OF_SERVICE = ("11",) * 9 + ("22",)
INPATIENT_DRGS = ("065", "194", "291", "392", "470", "603", "690", "871")
POA_VALUES = ("Y", "Y", "Y", "Y", "N", "U", "W", "1")
ROOM_AND_BOARD_REVENUE = "0120"
PHARMACY_REVENUE = "0250"
ROOM_AND_BOARD_DAILY_CENTS = 190_000
PHARMACY_UNIT_CENTS = 4_000
HOSPITAL_MARKUP = 1.8  # facility fees run well above the professional median
CHARGE_SIGMA = 0.25  # lognormal spread of charges around the median: skewed, a long but thin upper tail


def weighted(rng: random.Random, population: Sequence[Any], cum_weights: Sequence[float]) -> Any:
    """`rng.choices(population, cum_weights=cum_weights)[0]`, the same draw without building a list per call."""
    return population[bisect.bisect_right(cum_weights, rng.random() * (cum_weights[-1] + 0.0), 0,
                                          len(population) - 1)]


def money(cents: int) -> Decimal:
    """Cents as a 2-decimal Decimal ('12.50', never '12.5')."""
    return Decimal(cents).scaleb(-2)


def recompute_total(claim: ClaimDict) -> None:
    """Set the header total to the sum of the line charges present (what a clean biller submits)."""
    charges = [line["charge"] for line in claim["lines"] if line.get("charge") is not None]
    claim["total_charge"] = sum(charges, Decimal("0.00"))


def last_service_date(claim: ClaimDict) -> date | None:
    """The latest header or line service date."""
    dates = [claim.get("service_date_to"), claim.get("service_date_from")]
    for line in claim["lines"]:
        dates.extend((line.get("service_date_to"), line.get("service_date_from")))
    present = [d for d in dates if d is not None]
    return max(present) if present else None


class ClaimFactory:
    """Draws valid claims; every random choice comes from the engine's single seeded `rng`."""

    def __init__(
        self,
        rng: random.Random,
        config: GeneratorConfig,
        codesets: CodeSets,
        population: Population,
        reference: Reference,
    ) -> None:
        self.rng = rng
        # Random.randrange/randint/choice all end in _randbelow; calling it directly draws exactly the same numbers
        # without three Python frames per draw (the generator's hot path; pinned by tests/generator).
        self._below: Callable[[int], int] = rng._randbelow  # type: ignore[attr-defined]
        self.config = config
        self.codesets = codesets
        self.population = population
        self.reference = reference
        self.source_file = f"generator seed {config.seed}"
        # Codes of NCCI pairs already billed per (member ID, day): a clean claim never completes a pair.
        self._ncci_billed: dict[tuple[str, date], set[str]] = {}
        self._specialty_procedures: dict[str, tuple[str, ...]] = {}
        # Therapist days already billed, and the days reserved for impossible-day bursts: a burst day holds only the
        # burst's claims, so the screen's alerts on that day are exactly the labelled ones.
        self._therapist_npis = frozenset(p.npi for p in population.therapists)
        self._therapist_days: dict[str, set[date]] = {}
        self.burst_days: set[tuple[str, date]] = set()
        weights = [0.35, 0.35, 0.2, 0.1]
        self._ancillary_cum = list(accumulate(weights))
        self._em_cum: dict[str, tuple[list[int], list[float]]] = {}
        for profile in codesets.specialties:
            levels = sorted(level for level, w in profile.em_level_weights.items() if w > 0)
            self._em_cum[profile.specialty] = (
                levels, list(accumulate(profile.em_level_weights[level] for level in levels))
            )
        upcoder_levels = sorted(UPCODER_EM_WEIGHTS)
        self._upcoder_em_cum = (upcoder_levels, list(accumulate(UPCODER_EM_WEIGHTS[lv] for lv in upcoder_levels)))

    def _procedures_of(self, profile: SpecialtyProfile) -> tuple[str, ...]:
        cached = self._specialty_procedures.get(profile.specialty)
        if cached is None:
            cached = self._specialty_procedures[profile.specialty] = specialty_procedures(profile, self.reference)
        return cached

    # ------------------------------------------------------------------ parties and dates

    def pick_member(self) -> Member:
        """A member with a non-empty service span in the window."""
        members = self.population.members
        while True:
            member = members[self._below(len(members))]
            start, end = member.service_span(self.population.window_start, self.population.window_end)
            if start <= end:
                return member

    def pick_day(self, member: Member) -> date:
        """A service day inside the member's eligibility, before any death date."""
        start, end = member.service_span(self.population.window_start, self.population.window_end)
        return start + timedelta(days=self._below((end - start).days + 1))

    def pick_practitioner(self, *, honest: bool) -> Practitioner:
        """A practitioner weighted by panel size, or (honest) uniformly among those who do not upcode."""
        if honest:
            pool = self.population.honest_practitioners
            return pool[self._below(len(pool))]
        return weighted(self.rng, self.population.practitioners, self.population.practitioner_cum_weights)

    def received_date(self, last_service: date) -> date:
        """Most claims arrive within two weeks of service, a few later; never after the anchor date."""
        lag = 1 + min(90, int(self.rng.expovariate(1 / 7)))
        return min(last_service + timedelta(days=lag), self.config.anchor_date)

    def people(self, member: Member) -> tuple[dict[str, Any], dict[str, Any]]:
        """(subscriber, patient) Person dicts: the policy holder and the member who received the service."""
        patient = member.as_person()
        if member.subscriber is None:
            return member.as_person(), patient
        subscriber = member.subscriber.as_person()
        subscriber["death_date"] = None  # the subscriber's own death is not this claim's business
        return subscriber, patient

    # ------------------------------------------------------------------ NCCI pair bookkeeping

    def blocked_codes(self, member_id: str, day: date) -> set[str]:
        """Codes that would complete an NCCI pair with a code already billed for this member on this day."""
        blocked: set[str] = set()
        for code in self._ncci_billed.get((member_id, day), ()):
            blocked |= self.reference.ncci_partners.get(code, frozenset())
        return blocked

    def therapist_busy(self, npi: str, day: date) -> bool:
        """Whether a therapist already has an emitted claim on `day`."""
        return day in self._therapist_days.get(npi, ())

    def register(self, claim: ClaimDict) -> None:
        """Remember what an emitted claim billed: NCCI-pair codes per member and day, therapist days."""
        rendering = (claim.get("rendering_provider") or {}).get("npi")
        if rendering in self._therapist_npis and claim.get("service_date_from") is not None:
            self._therapist_days.setdefault(rendering, set()).add(claim["service_date_from"])
        member_id = (claim.get("patient") or {}).get("member_id") or (claim.get("subscriber") or {}).get("member_id")
        if not member_id:
            return
        for line in claim["lines"]:
            code = line.get("procedure_code")
            day = line.get("service_date_from") or claim.get("service_date_from")
            if code in self.reference.ncci_partners and day is not None:
                self._ncci_billed.setdefault((member_id, day), set()).add(code)

    # ------------------------------------------------------------------ lines

    def charge_cents(self, code: str, units: int, *, markup: float = 1.0) -> int:
        """A billed charge drawn from a lognormal distribution around the procedure's median charge."""
        median = self.reference.procedures[code].median_cents
        return max(1, round(median * units * markup * self.rng.lognormvariate(0.0, CHARGE_SIGMA)))

    def units_for(self, code: str) -> int:
        """Units a clean biller would bill: per-mg drugs and timed therapy vary, always within the MUE limit."""
        info = self.reference.procedures[code]
        if info.category == "drug":
            units = 1 + self._below(10)
        elif info.category == "therapy":
            units = 1 + self._below(4)
        else:
            units = 1
        limit = self.reference.mue.get(code)
        return min(units, limit) if limit is not None else units

    def line(
        self,
        number: int,
        code: str | None,
        units: int,
        charge_cents: int,
        day_from: date,
        *,
        day_to: date | None = None,
        pointers: list[int] | None = None,
        modifiers: list[str] | None = None,
        revenue_code: str | None = None,
        unit_type: str = "UN",
    ) -> dict[str, Any]:
        """One service line dict in canonical shape."""
        return {
            "line_number": number,
            "procedure_code": code,
            "procedure_system": "HCPCS" if code is not None else None,
            "modifiers": modifiers or [],
            "revenue_code": revenue_code,
            "units": Decimal(units),
            "unit_type": unit_type,
            "charge": money(charge_cents),
            "service_date_from": day_from,
            "service_date_to": day_to or day_from,
            "diagnosis_pointers": pointers or [],
        }

    def _pick_codes(self, pool: tuple[str, ...], count: int, blocked: set[str]) -> list[str]:
        """Up to `count` distinct codes from `pool`, none completing an NCCI pair with `blocked` or each other."""
        if count <= 0:
            return []
        candidates = [c for c in pool if c not in blocked]
        chosen: list[str] = []
        partners = self.reference.ncci_partners
        # Draw a couple more than needed so that a pair conflict rarely leaves the claim short of codes.
        for code in self.rng.sample(candidates, min(len(candidates), count + 2)):
            if len(chosen) == count:
                break
            if any(code in partners.get(other, ()) for other in chosen):
                continue
            chosen.append(code)
        return chosen

    def em_level(self, practitioner: Practitioner) -> int:
        """An E/M level from the specialty's expected mix, or from the upcoder mix."""
        levels, cum = self._upcoder_em_cum if practitioner.upcoder else self._em_cum[practitioner.profile.specialty]
        return weighted(self.rng, levels, cum)

    def diagnoses(self, specialty: str, count: int, *, poa: bool = False) -> list[dict[str, Any]]:
        """`count` distinct billable diagnoses of the specialty (principal first); POA indicators for inpatients."""
        pool = self.reference.diagnoses_by_specialty.get(specialty) or self.reference.all_diagnoses
        codes: list[str] = []
        categories: set[str] = set()
        # One code per 3-character category: a claim does not list M54.50 and M54.59 side by side.
        for code in self.rng.sample(pool, min(count + 3, len(pool))):
            if len(codes) < count and code[:3] not in categories:
                categories.add(code[:3])
                codes.append(code)
        return [
            {
                "code": code,
                "system": "ICD-10-CM",
                "present_on_admission": self.rng.choice(POA_VALUES) if poa else None,
                "qualifier": "ABK" if index == 0 else "ABF",
            }
            for index, code in enumerate(codes)
        ]

    # ------------------------------------------------------------------ claims

    def _header(self, claim_type: str, member: Member, day_from: date, day_to: date) -> ClaimDict:
        subscriber, patient = self.people(member)
        return {
            "claim_id": "",
            "claim_type": claim_type,
            "frequency_code": "1",
            "original_claim_id": None,
            "payer": member.payer.as_dict(),
            "subscriber": subscriber,
            "patient": patient,
            "service_date_from": day_from,
            "service_date_to": day_to,
            "diagnoses": [],
            "lines": [],
            "source": {"format": "synthetic", "file": self.source_file, "locator": None, "received_date": None},
        }

    def _finish(self, claim: ClaimDict) -> ClaimDict:
        recompute_total(claim)
        last = last_service_date(claim)
        claim["source"]["received_date"] = self.received_date(last) if last is not None else self.config.anchor_date
        return claim

    def professional(
        self,
        *,
        practitioner: Practitioner | None = None,
        member: Member | None = None,
        day: date | None = None,
        honest: bool = True,
    ) -> ClaimDict:
        """An 837P-shaped claim: an office visit (E/M) and ancillaries, or timed therapy for therapists."""
        practitioner = practitioner or self.pick_practitioner(honest=honest)
        member = member or self.pick_member()
        if day is None:
            day = self.pick_day(member)
            for _ in range(20):  # stay off a therapist's impossible-day burst
                if (practitioner.npi, day) not in self.burst_days:
                    break
                day = self.pick_day(member)
        profile = practitioner.profile
        claim = self._header("professional", member, day, day)
        claim["billing_provider"] = practitioner.as_billing_provider()
        claim["rendering_provider"] = practitioner.as_provider()
        claim["place_of_service"] = self.rng.choice(PLACES_OF_SERVICE.get(profile.specialty, DEFAULT_PLACES_OF_SERVICE))
        claim["diagnoses"] = self.diagnoses(profile.specialty, 1 + self._below(4))
        n_dx = len(claim["diagnoses"])
        blocked = self.blocked_codes(member.member_id, day)
        procedures = self._procedures_of(profile)
        lines = claim["lines"]
        if practitioner.bills_em:
            level = self.em_level(practitioner)
            table = self.reference.em_new if self.rng.random() < 0.2 else self.reference.em_established
            em_code = table[level]
            lines.append(self.line(1, em_code, 1, self.charge_cents(em_code, 1), day,
                                   pointers=list(range(1, min(n_dx, 4) + 1))))
            extra = weighted(self.rng, range(4), self._ancillary_cum)
        else:
            extra = 1 + self._below(3)
        for code in self._pick_codes(procedures, extra, blocked):
            units = self.units_for(code)
            modifiers: list[str] = []
            if code in LATERAL_CODES:
                modifiers.append(self.rng.choice(("RT", "LT")))
            is_procedure = self.reference.procedures[code].category == "procedure"
            if lines and is_procedure and "25" not in lines[0]["modifiers"]:
                # A separately identifiable E/M on the day of a procedure carries modifier 25.
                lines[0]["modifiers"].append("25")
            lines.append(self.line(len(lines) + 1, code, units, self.charge_cents(code, units), day,
                                   pointers=[1 + self._below(n_dx)], modifiers=modifiers))
        if not lines:  # every code of the profile was blocked for this member-day: bill a plain E/M-free visit
            fallback = next((c for c in procedures if c not in blocked), procedures[0])
            lines.append(self.line(1, fallback, 1, self.charge_cents(fallback, 1), day, pointers=[1]))
        return self._finish(claim)

    def _pick_facility(self, asc: bool) -> Organisation:
        facilities = self.population.facilities
        pool = [f for f in facilities if f.taxonomy.startswith("261Q")] if asc else []
        pool = pool or [f for f in facilities if not f.taxonomy.startswith("261Q")] or list(facilities)
        return pool[self._below(len(pool))]

    def institutional(
        self, *, member: Member | None = None, day: date | None = None, bill_type: str | None = None
    ) -> ClaimDict:
        """An 837I-shaped claim: hospital outpatient (131), ambulatory surgery (831) or inpatient stay (111)."""
        member = member or self.pick_member()
        day = day or self.pick_day(member)
        if bill_type is None:
            roll = self.rng.random()
            bill_type = "131" if roll < 0.65 else ("111" if roll < 0.9 else "831")
        attending = self.population.attending_practitioners[
            self._below(len(self.population.attending_practitioners))
        ]
        inpatient = bill_type.startswith("11")
        _, span_end = member.service_span(self.population.window_start, self.population.window_end)
        day_to = min(day + timedelta(days=self.rng.randint(1, 6)), max(span_end, day)) if inpatient else day
        claim = self._header("institutional", member, day, day_to)
        claim["billing_provider"] = self._pick_facility(asc=bill_type.startswith("83")).as_provider()
        claim["attending_provider"] = attending.as_provider()
        claim["type_of_bill"] = bill_type
        claim["diagnoses"] = self.diagnoses(
            attending.profile.specialty, self.rng.randint(2, 5) if inpatient else self.rng.randint(1, 3), poa=inpatient
        )
        lines = claim["lines"]
        blocked = self.blocked_codes(member.member_id, day)
        if inpatient:
            claim["admission_date"] = day
            claim["discharge_date"] = day_to
            claim["drg_code"] = self.rng.choice(INPATIENT_DRGS)
            nights = max(1, (day_to - day).days)
            room = round(ROOM_AND_BOARD_DAILY_CENTS * nights * self.rng.lognormvariate(0.0, CHARGE_SIGMA))
            lines.append(self.line(1, None, nights, room, day, day_to=day_to, revenue_code=ROOM_AND_BOARD_REVENUE,
                                   unit_type="DA"))
            doses = self.rng.randint(1, 20)
            pharmacy = round(PHARMACY_UNIT_CENTS * doses * self.rng.lognormvariate(0.0, CHARGE_SIGMA))
            lines.append(self.line(2, None, doses, pharmacy, day, day_to=day_to, revenue_code=PHARMACY_REVENUE))
            pool = self.reference.facility_procedures
            # Ancillaries on the admission day only, so the NCCI bookkeeping of the day is exact.
            codes = self._pick_codes(pool, self.rng.randint(1, 3), blocked)
        elif bill_type.startswith("83"):
            scopes = tuple(c for c in ("45378", "45330", "20610") if c in self.reference.procedures)
            codes = self._pick_codes(scopes, 1, blocked)
        else:
            codes = self._pick_codes(self.reference.facility_procedures, self.rng.randint(1, 4), blocked)
        for code in codes:
            units = self.units_for(code)
            lines.append(self.line(len(lines) + 1, code, units, self.charge_cents(code, units, markup=HOSPITAL_MARKUP),
                                   day, revenue_code=self.reference.procedures[code].revenue_code))
        if not lines:
            code = self.reference.facility_procedures[0]
            lines.append(self.line(1, code, 1, self.charge_cents(code, 1, markup=HOSPITAL_MARKUP), day,
                                   revenue_code=self.reference.procedures[code].revenue_code))
        return self._finish(claim)

    def any_claim(self, *, honest: bool = True, claim_type: str | None = None) -> ClaimDict:
        """A professional or institutional claim in the configured mix (or of the type asked for)."""
        if claim_type is None:
            claim_type = "institutional" if self.rng.random() < self.config.institutional_rate else "professional"
        if claim_type == "institutional":
            return self.institutional()
        return self.professional(honest=honest)
