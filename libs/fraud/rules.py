"""Fraud and abuse screening: pure functions that raise alerts on valid claims for investigation.

Why screens are separate from validation: a fraud alert does not make a claim invalid (the claim still flows to
silver); it sends an alert to investigators. Screens come in two shapes:

* per-claim screens (excluded provider, service after death, outlier charge, excess units) look at one claim and suit
  a stream;
* batch screens (exact duplicates, impossible day, upcoding, unbundling) compare claims with each other and take a
  batch (a micro-batch, a day of claims or a whole file).

Alerts carry the claim ID, the FraudCode and a detail that names codes, NPIs, amounts and dates of service - never a
member's name, member ID, birth or death date (provider NPIs are public directory data, not PHI).

Voids (frequency 8) ask for nothing to be paid and are never screened. Batch screens other than duplicates work on the
*effective* claims: a replacement (7) supersedes its original, so a corrected bill is not counted twice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from libs.codesets import CodeSets, NcciPair
from libs.fraud.catalog import FraudCode
from libs.model import Claim, ClaimType, FrequencyCode, ServiceLine
from libs.phi.derived import PhiDerived, last_service_date, patient_of

MINUTES_PER_DAY = 24 * 60
# A line charge above this multiple of the procedure's median charge (per unit) is an outlier. Billed charges are
# right-skewed, but 8x the median is far beyond any provider's chargemaster spread (hospital markups run ~2x).
OUTLIER_FACTOR = Decimal(8)
# Upcoding: a provider is flagged when, over at least UPCODING_MIN_VISITS E/M visits, its share of the highest level
# exceeds the specialty's expected share by UPCODING_MIN_EXCESS and the excess is statistically strong (a binomial
# z-score of at least UPCODING_MIN_Z), so that small practices with a few complex patients are not flagged.
UPCODING_MIN_VISITS = 20
UPCODING_MIN_EXCESS = 0.30
UPCODING_MIN_Z = 4.0
HIGHEST_EM_LEVEL = 5
EM_CATEGORIES = frozenset({"em_new", "em_established"})
# NCCI-associated modifiers: with a pair's modifier indicator 1 they mark a distinct service, so the pair is allowed.
NCCI_BYPASS_MODIFIERS = frozenset({"59", "XE", "XP", "XS", "XU"})
VOID = FrequencyCode.VOID.value
REPLACEMENT = FrequencyCode.REPLACEMENT.value


@dataclass(frozen=True, slots=True)
class Alert:
    """A screening alert on one claim. `detail` never contains PHI."""

    claim_id: str
    rule: FraudCode
    detail: str

    def to_dict(self) -> dict[str, str]:
        """The alert payload: {"claim_id", "rule", "detail"}."""
        return {"claim_id": self.claim_id, "rule": self.rule.value, "detail": self.detail}


# ---------------------------------------- helpers


def line_date(claim: Claim, line: ServiceLine) -> date | None:
    """A line's service date, falling back to the claim's statement 'from' date."""
    return line.service_date_from or claim.service_date_from


def _units(line: ServiceLine) -> Decimal:
    """Units for per-unit arithmetic: a missing or non-positive count is read as one unit."""
    return line.units if line.units is not None and line.units > 0 else Decimal(1)


def _procedure_extra(codesets: CodeSets, code: str | None, on: date | None) -> dict[str, str] | None:
    if code is None:
        return None
    entry = codesets.procedures.get(code, on) or codesets.procedures.get(code)
    return entry.extra if entry is not None else None


def _rendering_npi(claim: Claim, line: ServiceLine) -> str | None:
    provider = line.rendering_provider or claim.rendering_provider
    return provider.npi if provider is not None else None


def effective_claims(claims: Iterable[Claim]) -> list[Claim]:
    """The claims that stand: voids and the originals replaced or voided by a later claim in the batch are dropped."""
    batch = list(claims)
    superseded = {
        claim.original_claim_id
        for claim in batch
        if claim.frequency_code in (REPLACEMENT, VOID) and claim.original_claim_id
    }
    return [c for c in batch if c.frequency_code != VOID and c.claim_id not in superseded]


# ---------------------------------------- per-claim screens


def screen_excluded_provider(claim: Claim, codesets: CodeSets) -> list[Alert]:
    """Billing or rendering NPI (claim or line level) on the excluded-provider list on the service date."""
    day = claim.service_date_from or next((line_date(claim, line) for line in claim.lines), None)
    roles: list[tuple[str, str | None, date | None]] = [
        ("billing", claim.billing_provider.npi if claim.billing_provider else None, day),
        ("rendering", claim.rendering_provider.npi if claim.rendering_provider else None, day),
    ]
    roles.extend(
        (f"line {line.line_number} rendering", line.rendering_provider.npi, line_date(claim, line))
        for line in claim.lines
        if line.rendering_provider is not None
    )
    alerts = []
    seen: set[str] = set()
    for role, npi, on in roles:
        if npi and npi not in seen and codesets.is_excluded(npi, on):
            seen.add(npi)
            entry = codesets.excluded_providers.get(npi, on)
            kind = entry.extra.get("exclusion_type", "") if entry else ""
            alerts.append(Alert(claim.claim_id, FraudCode.EXCLUDED_PROVIDER,
                                f"{role} NPI {npi} is excluded ({kind}) on the service date {on}"))
    return alerts


def screen_service_after_death(
    claim: Claim, deaths: Mapping[str, date] | None = None, derived: PhiDerived | None = None
) -> list[Alert]:
    """The last service date after the member's date of death (from the claim, or a member registry by member key).

    On a protected record the date of death is encrypted: `derived` (its `phi_derived` block) carries the days from
    death to the last service date instead, computed by the producer from the same dates; a plaintext claim is judged
    on its own dates. The detail names the service date only: with a day count it would reveal the date of death (PHI).
    """
    last = last_service_date(claim)
    if last is None:
        return []
    if derived is not None:
        after = (derived["member_days_after_death"] or 0) > 0
    else:
        person = patient_of(claim)
        after = person is not None and person.death_date is not None and last > person.death_date
    member = claim.member_key()
    if deaths is not None and member is not None and member in deaths:
        after = after or last > deaths[member]
    if not after:
        return []
    return [Alert(claim.claim_id, FraudCode.SERVICE_AFTER_DEATH,
                  f"service on {last} is after the member's recorded date of death")]


def screen_outlier_charge(claim: Claim, codesets: CodeSets, factor: Decimal = OUTLIER_FACTOR) -> list[Alert]:
    """A line whose charge per unit exceeds `factor` times the procedure's median charge."""
    alerts = []
    for line in claim.lines:
        if line.charge is None or line.charge <= 0:
            continue
        extra = _procedure_extra(codesets, line.procedure_code, line_date(claim, line))
        if not extra or not extra.get("median_charge"):
            continue
        median = Decimal(extra["median_charge"])
        per_unit = line.charge / _units(line)
        if median > 0 and per_unit > factor * median:
            alerts.append(Alert(claim.claim_id, FraudCode.OUTLIER_CHARGE,
                                f"line {line.line_number} {line.procedure_code} charged {per_unit:.2f} per unit, "
                                f"{per_unit / median:.1f}x the median {median:.2f}"))
    return alerts


def screen_excess_units(claim: Claim, codesets: CodeSets) -> list[Alert]:
    """Units above the procedure's medically unlikely edit (MUE) on one line."""
    alerts = []
    for line in claim.lines:
        if line.procedure_code is None or line.units is None:
            continue
        limit = codesets.mue_limit(line.procedure_code, line_date(claim, line))
        if limit is not None and line.units > limit:
            alerts.append(Alert(claim.claim_id, FraudCode.EXCESS_UNITS,
                                f"line {line.line_number} {line.procedure_code} billed {line.units} units, "
                                f"MUE limit {limit}"))
    return alerts


def screen_claim(
    claim: Claim, codesets: CodeSets, deaths: Mapping[str, date] | None = None, derived: PhiDerived | None = None
) -> list[Alert]:
    """Every per-claim screen on one claim (voids are not screened); `derived` as in screen_service_after_death."""
    if claim.frequency_code == VOID:
        return []
    return [
        *screen_excluded_provider(claim, codesets),
        *screen_service_after_death(claim, deaths, derived),
        *screen_outlier_charge(claim, codesets),
        *screen_excess_units(claim, codesets),
    ]


# ---------------------------------------- batch screens


class DuplicateKey(NamedTuple):
    """The CMS exact-duplicate key: member, billing provider, from/through dates, services, place, billed amount."""

    member: str | None
    billing_npi: str | None
    date_from: date | None
    date_to: date | None
    services: tuple[str, ...]
    place: str | None  # place of service, or the facility and classification digits of the type of bill
    billed: Decimal | None


def duplicate_key(claim: Claim) -> DuplicateKey:
    """The claim's exact-duplicate key."""
    return DuplicateKey(
        member=claim.member_key(),
        billing_npi=claim.billing_provider.npi if claim.billing_provider else None,
        date_from=claim.service_date_from,
        date_to=claim.service_date_to,
        services=tuple(sorted((line.procedure_code or line.revenue_code or "") for line in claim.lines)),
        place=claim.place_of_service or (claim.type_of_bill[:2] if claim.type_of_bill else None),
        billed=claim.total_charge,
    )


def screen_exact_duplicates(claims: Iterable[Claim]) -> list[Alert]:
    """Original claims (frequency 1) repeating the duplicate key of an earlier claim in the batch; the first stands.

    Replacements and voids legitimately repeat their original's key and are not compared.
    """
    first: dict[DuplicateKey, str] = {}
    alerts: list[Alert] = []
    for claim in claims:
        if claim.frequency_code in (REPLACEMENT, VOID):
            continue
        key = duplicate_key(claim)
        if key.member is None or key.billing_npi is None:
            continue  # without a member or billing provider there is no key to compare
        earlier = first.setdefault(key, claim.claim_id)
        if earlier != claim.claim_id:
            alerts.append(Alert(claim.claim_id, FraudCode.EXACT_DUPLICATE,
                                f"same member, billing NPI {key.billing_npi}, dates {key.date_from}..{key.date_to}, "
                                f"services {'+'.join(key.services)} and billed {key.billed} as claim {earlier}"))
    return alerts


def screen_impossible_day(claims: Iterable[Claim], codesets: CodeSets) -> list[Alert]:
    """A rendering provider billing more timed minutes (timed_minutes x units) on one day than 24 hours hold."""
    minutes: dict[tuple[str, date], int] = defaultdict(int)
    contributors: dict[tuple[str, date], list[str]] = defaultdict(list)
    for claim in effective_claims(claims):
        for line in claim.lines:
            npi, day = _rendering_npi(claim, line), line_date(claim, line)
            extra = _procedure_extra(codesets, line.procedure_code, day)
            if npi is None or day is None or not extra or not extra.get("timed_minutes"):
                continue
            key = (npi, day)
            minutes[key] += int(extra["timed_minutes"]) * int(_units(line))
            if not contributors[key] or contributors[key][-1] != claim.claim_id:
                contributors[key].append(claim.claim_id)
    alerts: list[Alert] = []
    for key, total in minutes.items():
        if total > MINUTES_PER_DAY:
            npi, day = key
            detail = (f"rendering NPI {npi} billed {total} timed minutes on {day} across "
                      f"{len(contributors[key])} claims (a day has {MINUTES_PER_DAY})")
            alerts.extend(Alert(claim_id, FraudCode.IMPOSSIBLE_DAY, detail) for claim_id in contributors[key])
    return alerts


def _em_level(codesets: CodeSets, line: ServiceLine, on: date | None) -> int | None:
    extra = _procedure_extra(codesets, line.procedure_code, on)
    if not extra or extra.get("category") not in EM_CATEGORIES or not extra.get("em_level"):
        return None
    return int(extra["em_level"])


def upcoding_score(visits: int, highest: int, expected_share: float) -> tuple[float, float]:
    """(observed share of the highest E/M level - expected share, binomial z-score of the excess)."""
    observed = highest / visits
    variance = visits * expected_share * (1 - expected_share)
    excess = highest - visits * expected_share
    # With a zero variance the specialty never (or always) bills the highest level: any excess is infinitely unlikely.
    infinite = math.inf if excess > 0 else 0.0
    z = excess / math.sqrt(variance) if variance > 0 else infinite
    return observed - expected_share, z


def screen_upcoding(claims: Iterable[Claim], codesets: CodeSets) -> list[Alert]:
    """Rendering providers whose share of level-5 E/M visits far exceeds their specialty's expected mix.

    The expected mix comes from the specialty profile matching the rendering provider's taxonomy; a provider with an
    unknown taxonomy is not judged. Every E/M claim of a flagged provider is alerted.
    """
    profiles = {profile.taxonomy: profile for profile in codesets.specialties}
    visits: dict[str, list[tuple[str, int]]] = defaultdict(list)
    taxonomy: dict[str, str] = {}
    for claim in effective_claims(claims):
        if claim.claim_type != ClaimType.PROFESSIONAL or claim.rendering_provider is None:
            continue
        npi = claim.rendering_provider.npi
        if not npi or claim.rendering_provider.taxonomy not in profiles:
            continue
        taxonomy[npi] = claim.rendering_provider.taxonomy
        for line in claim.lines:
            level = _em_level(codesets, line, line_date(claim, line))
            if level is not None:
                visits[npi].append((claim.claim_id, level))
    alerts: list[Alert] = []
    for npi, levels in visits.items():
        n = len(levels)
        if n < UPCODING_MIN_VISITS:
            continue
        profile = profiles[taxonomy[npi]]
        weights = profile.em_level_weights
        expected = weights.get(HIGHEST_EM_LEVEL, 0.0) / (sum(weights.values()) or 1.0)
        highest = sum(1 for _, level in levels if level >= HIGHEST_EM_LEVEL)
        excess, z = upcoding_score(n, highest, expected)
        if excess >= UPCODING_MIN_EXCESS and z >= UPCODING_MIN_Z:
            detail = (f"rendering NPI {npi} ({profile.specialty}) billed {highest / n:.0%} of {n} E/M visits at "
                      f"level {HIGHEST_EM_LEVEL}; the specialty expects {expected:.0%} (z={z:.1f})")
            claim_ids = dict.fromkeys(claim_id for claim_id, _ in levels)  # ordered, unique
            alerts.extend(Alert(claim_id, FraudCode.UPCODING, detail) for claim_id in claim_ids)
    return alerts


def _pairs_in_effect(pairs: Iterable[NcciPair], on: date) -> list[NcciPair]:
    return [p for p in pairs if p.effective_from <= on and (p.effective_to is None or on <= p.effective_to)]


def screen_unbundling(claims: Iterable[Claim], codesets: CodeSets) -> list[Alert]:
    """An NCCI column-1 and column-2 code billed for the same member on the same day (in one claim or several).

    The claim carrying the column-2 (bundled) code is alerted. When the pair's modifier indicator is 1, a column-2
    line with an NCCI-associated modifier (59, XE, XP, XS, XU) documents a distinct service and is not alerted.
    """
    pair_codes = {p.column1 for p in codesets.ncci_pairs} | {p.column2 for p in codesets.ncci_pairs}
    # (member, day) -> code -> [(claim_id, modifiers)]
    billed: dict[tuple[str, date], dict[str, list[tuple[str, frozenset[str]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for claim in effective_claims(claims):
        member = claim.member_key()
        if member is None:
            continue
        for line in claim.lines:
            day = line_date(claim, line)
            if line.procedure_code in pair_codes and day is not None:
                billed[(member, day)][line.procedure_code].append((claim.claim_id, frozenset(line.modifiers)))
    alerts: list[Alert] = []
    for (_, day), codes in billed.items():
        if len(codes) < 2:
            continue
        for pair in _pairs_in_effect(codesets.ncci_pairs, day):
            if pair.column1 not in codes or pair.column2 not in codes:
                continue
            alerted: set[str] = set()
            for claim_id, modifiers in codes[pair.column2]:
                if pair.modifier_allowed and modifiers & NCCI_BYPASS_MODIFIERS:
                    continue
                if claim_id not in alerted:
                    alerted.add(claim_id)
                    alerts.append(Alert(claim_id, FraudCode.UNBUNDLING,
                                        f"{pair.column2} is bundled into {pair.column1}, billed for the same member "
                                        f"on {day}"))
    return alerts


BatchScreen = Callable[[list[Claim], CodeSets], list[Alert]]

BATCH_SCREENS: dict[FraudCode, BatchScreen] = {
    FraudCode.EXACT_DUPLICATE: lambda claims, _codesets: screen_exact_duplicates(claims),
    FraudCode.IMPOSSIBLE_DAY: screen_impossible_day,
    FraudCode.UPCODING: screen_upcoding,
    FraudCode.UNBUNDLING: screen_unbundling,
}


def screen_batch(
    claims: Iterable[Claim],
    codesets: CodeSets,
    deaths: Mapping[str, date] | None = None,
    derived: Mapping[str, PhiDerived] | None = None,
) -> list[Alert]:
    """Every screen over a batch: per-claim screens on each claim, then the batch screens; alerts in claim order.

    `derived` maps the claim ids of protected records to their `phi_derived` blocks.
    """
    batch = list(claims)
    derived = derived or {}
    alerts = [alert for claim in batch for alert in screen_claim(claim, codesets, deaths, derived.get(claim.claim_id))]
    for screen in BATCH_SCREENS.values():
        alerts.extend(screen(batch, codesets))  # each batch screen handles voids and replacements itself
    order = {claim.claim_id: index for index, claim in enumerate(batch)}
    return sorted(alerts, key=lambda alert: (order.get(alert.claim_id, len(order)), alert.rule.value))
