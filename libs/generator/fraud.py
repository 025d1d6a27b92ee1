"""Fraud scenario injection: valid claims that a payer's special investigations unit would want to see.

Why the scenarios produce *valid* claims: fraud is billed to get paid, so it passes every edit; only the screening rules
(libs/fraud/rules.py) can find it. Each scenario returns the claims it made (an impossible-day burst makes a dozen or
more); the engine labels every one of them with the scenario's FraudCode. Upcoding is not an event but a property of
a practitioner (population.Practitioner.upcoder), so it has no function here.

Scenarios are careful not to create a second, unlabelled anomaly: an unbundled pair is only injected for a member-day
where neither code was billed before, an impossible day uses therapists (no E/M visits, so it cannot skew an E/M mix),
and duplicates copy a clean original.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from libs.codesets import CodeSets
from libs.fraud.catalog import FraudCode
from libs.generator.claims import NCCI_BYPASS_MODIFIERS, ClaimDict, ClaimFactory, money, recompute_total
from libs.generator.population import GROUP_TAXONOMY

MINUTES_PER_DAY = 24 * 60
IMPOSSIBLE_DAY_THERAPY_UNITS = 4


class RecentClaims:
    """A bounded pool of recently emitted clean originals: the sources of duplicates, replacements and voids.

    A claim taken from the pool is removed, so the same original is never both voided and replaced.
    """

    def __init__(self, rng: random.Random, capacity: int = 2000) -> None:
        self._rng = rng
        self._capacity = capacity
        self._claims: list[ClaimDict] = []

    def __len__(self) -> int:
        return len(self._claims)

    def add(self, claim: ClaimDict) -> None:
        """Remember a clean original; when the pool is full it overwrites a random slot."""
        if len(self._claims) < self._capacity:
            self._claims.append(claim)
        else:
            # randrange(capacity) draws through _randbelow; calling it directly saves two frames per claim.
            self._claims[self._rng._randbelow(self._capacity)] = claim  # type: ignore[attr-defined]

    def take(self) -> ClaimDict | None:
        """Remove and return a random claim, or None when the pool is empty."""
        if not self._claims:
            return None
        index = self._rng.randrange(len(self._claims))
        self._claims[index], self._claims[-1] = self._claims[-1], self._claims[index]
        return self._claims.pop()


@dataclass
class FraudContext:
    """What scenarios draw on: the claim factory, the code sets, recent originals and the slots left in the run."""

    factory: ClaimFactory
    codesets: CodeSets
    recent: RecentClaims
    remaining: int


Scenario = Callable[[FraudContext], list[ClaimDict]]


def copy_claim(claim: ClaimDict) -> ClaimDict:
    """An independent copy of an emitted claim, ready for a new claim ID."""
    twin = copy.deepcopy(claim)
    twin["claim_id"] = ""
    twin["source"]["locator"] = None
    return twin


def exact_duplicate(ctx: FraudContext) -> list[ClaimDict]:
    """The same claim billed again under a new claim ID (same CMS duplicate key, same billed amount)."""
    original = ctx.recent.take()
    if original is None:
        return []
    twin = copy_claim(original)
    received = original["source"]["received_date"] + timedelta(days=ctx.factory.rng.randint(0, 30))
    twin["source"]["received_date"] = min(received, ctx.factory.config.anchor_date)
    return [twin]


def excluded_provider(ctx: FraudContext) -> list[ClaimDict]:
    """A claim billed or rendered under an NPI on the excluded-provider list on the service date."""
    factory = ctx.factory
    claim = factory.professional()
    day = claim["service_date_from"]
    excluded = [e.code for e in ctx.codesets.excluded_providers.rows() if e.in_effect(day)]
    if not excluded:
        return []
    npi = factory.rng.choice(excluded)
    if factory.rng.random() < 0.5:
        claim["rendering_provider"]["npi"] = npi
    else:
        claim["billing_provider"] = {
            "npi": npi, "taxonomy": GROUP_TAXONOMY, "name": f"SYNTHETIC PRACTICE {npi[-4:]}", "entity_type": "2",
            "tax_id": f"9{npi[1:9]}", "address": claim["billing_provider"].get("address"),
        }
    return [claim]


def service_after_death(ctx: FraudContext) -> list[ClaimDict]:
    """A claim for a member serviced after the member's date of death."""
    factory = ctx.factory
    window_end = factory.population.window_end
    candidates = [m for m in factory.population.deceased_members if m.death_date and m.death_date < window_end]
    if not candidates:
        return []
    member = candidates[factory.rng.randrange(len(candidates))]
    assert member.death_date is not None
    day = member.death_date + timedelta(days=factory.rng.randint(1, (window_end - member.death_date).days))
    if factory.rng.random() < factory.config.institutional_rate:
        return [factory.institutional(member=member, day=day, bill_type="131")]
    return [factory.professional(member=member, day=day)]


def impossible_day(ctx: FraudContext) -> list[ClaimDict]:
    """One therapist billing more timed minutes on one day than the day has, across many members' claims."""
    factory = ctx.factory
    therapists = factory.population.therapists
    if not therapists:
        return []
    therapist = therapists[factory.rng.randrange(len(therapists))]
    population = factory.population
    span = (population.window_end - population.window_start).days
    day = population.window_start + timedelta(days=factory.rng.randint(0, span))
    for _ in range(50):  # a day on which the therapist has billed nothing yet
        if not factory.therapist_busy(therapist.npi, day) and (therapist.npi, day) not in factory.burst_days:
            break
        day = population.window_start + timedelta(days=factory.rng.randint(0, span))
    else:
        return []
    reference = factory.reference
    burst: list[ClaimDict] = []
    seen: set[str] = set()  # one claim per member, so the burst cannot complete an NCCI pair for anyone
    minutes = 0
    attempts = 0
    while minutes <= MINUTES_PER_DAY and attempts < 10_000:
        attempts += 1
        member = factory.pick_member()
        start, end = member.service_span(population.window_start, population.window_end)
        if member.member_id in seen or not start <= day <= end:
            continue
        seen.add(member.member_id)
        claim = factory.professional(practitioner=therapist, member=member, day=day)
        for line in claim["lines"]:
            info = reference.procedures[line["procedure_code"]]
            if info.timed_minutes:
                units = min(IMPOSSIBLE_DAY_THERAPY_UNITS, reference.mue.get(info.code, IMPOSSIBLE_DAY_THERAPY_UNITS))
                line["units"] = Decimal(units)
                line["charge"] = money(factory.charge_cents(info.code, units))
                minutes += info.timed_minutes * units
        recompute_total(claim)
        burst.append(claim)
    if minutes <= MINUTES_PER_DAY or len(burst) > ctx.remaining:
        return []  # not enough slots left in this run for a whole burst: a partial burst would be mislabelled
    factory.burst_days.add((therapist.npi, day))
    return burst


def outlier_charge(ctx: FraudContext) -> list[ClaimDict]:
    """A line billed at 10-20 times the procedure's expected charge."""
    factory = ctx.factory
    claim = factory.any_claim()
    coded = [line for line in claim["lines"] if line.get("procedure_code")]
    if not coded:
        return []
    line = coded[factory.rng.randrange(len(coded))]
    info = factory.reference.procedures[line["procedure_code"]]
    factor = factory.rng.uniform(10.0, 20.0)
    cents = round(info.median_cents * int(line["units"]) * factor)
    line["charge"] = money(cents)
    recompute_total(claim)
    return [claim]


def unbundling(ctx: FraudContext) -> list[ClaimDict]:
    """A column-1 code and its bundled column-2 code billed separately for the same member and day."""
    factory = ctx.factory
    claim = factory.professional()
    day = claim["service_date_from"]
    member_id = claim["patient"]["member_id"]
    blocked = factory.blocked_codes(member_id, day)
    pairs = [
        p for p in ctx.codesets.ncci_pairs
        if p.effective_from <= day and (p.effective_to is None or day <= p.effective_to)
        and p.column1 in factory.reference.procedures and p.column2 in factory.reference.procedures
        and p.column1 not in blocked and p.column2 not in blocked
    ]
    if not pairs:
        return []
    pair = pairs[factory.rng.randrange(len(pairs))]
    partners = factory.reference.ncci_partners
    involved = {pair.column1, pair.column2} | partners.get(pair.column1, frozenset()) | partners.get(
        pair.column2, frozenset()
    )
    lines = [line for line in claim["lines"] if line["procedure_code"] not in involved]
    for code in (pair.column1, pair.column2):
        new_line = factory.line(len(lines) + 1, code, 1, factory.charge_cents(code, 1), day, pointers=[1])
        new_line["modifiers"] = [m for m in new_line["modifiers"] if m not in NCCI_BYPASS_MODIFIERS]
        lines.append(new_line)
    for number, line in enumerate(lines, start=1):
        line["line_number"] = number
    claim["lines"] = lines
    recompute_total(claim)
    return [claim]


def excess_units(ctx: FraudContext) -> list[ClaimDict]:
    """Units above the medically unlikely edit (MUE) limit for the procedure on one line."""
    factory = ctx.factory
    claim = factory.professional()
    mue = factory.reference.mue
    candidates = [line for line in claim["lines"] if line.get("procedure_code") in mue]
    if candidates:
        line = candidates[factory.rng.randrange(len(candidates))]
    else:
        code = sorted(mue)[factory.rng.randrange(len(mue))]
        line = factory.line(len(claim["lines"]) + 1, code, 1, 0, claim["service_date_from"], pointers=[1])
        claim["lines"].append(line)
    code = line["procedure_code"]
    units = mue[code] + factory.rng.randint(1, 3)
    line["units"] = Decimal(units)
    line["charge"] = money(factory.charge_cents(code, units))
    recompute_total(claim)
    return [claim]


# Relative frequency of each event scenario. An impossible day produces a dozen or more claims per event, so it is
# drawn less often to keep the labelled claims of each scenario of similar magnitude.
SCENARIOS: dict[FraudCode, tuple[Scenario, float]] = {
    FraudCode.EXACT_DUPLICATE: (exact_duplicate, 1.0),
    FraudCode.EXCLUDED_PROVIDER: (excluded_provider, 1.0),
    FraudCode.SERVICE_AFTER_DEATH: (service_after_death, 1.0),
    FraudCode.IMPOSSIBLE_DAY: (impossible_day, 0.08),
    FraudCode.OUTLIER_CHARGE: (outlier_charge, 1.0),
    FraudCode.UNBUNDLING: (unbundling, 1.0),
    FraudCode.EXCESS_UNITS: (excess_units, 1.0),
}
# Upcoding is a practitioner property (see population.Practitioner.upcoder), not an event.
PROVIDER_LEVEL_SCENARIOS: tuple[FraudCode, ...] = (FraudCode.UPCODING,)
