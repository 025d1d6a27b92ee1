"""The generation loop: a seeded stream of canonical claims, each with its ground-truth labels.

Why one loop with one random generator: reproducibility. Every choice (population, claim content, which slot gets a
defect, a fraud scenario, a replacement or a void) is drawn from a single `random.Random(seed)` in a fixed order, so
the same config yields byte-identical output and a different seed yields a different world.

Per slot: with probability `defect_rate` a clean claim gets one defect (a reason code chosen uniformly); with
`fraud_rate` a fraud scenario runs (an impossible-day burst fills several slots); with `replacement_rate` /
`void_rate` an earlier clean original is replaced (frequency 7) or voided (frequency 8) - valid claims that carry the
original claim ID; otherwise a clean claim is drawn, which is labelled FRAUD_UPCODING when its rendering practitioner
is an upcoder.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

import orjson

from libs.codesets import CodeSets, load_codesets
from libs.fraud.catalog import FraudCode
from libs.generator.claims import ClaimDict, ClaimFactory, money, recompute_total
from libs.generator.config import GeneratorConfig
from libs.generator.defects import DEFECT_CODES, DEFECTS, build_defect_context, inject_defect
from libs.generator.fraud import PROVIDER_LEVEL_SCENARIOS, SCENARIOS, FraudContext, RecentClaims, copy_claim
from libs.generator.labels import Label, LabelKind
from libs.generator.population import build_population
from libs.generator.reference import build_reference
from libs.model import Claim
from libs.validation.catalog import ReasonCode

EM_CATEGORIES = frozenset({"em_new", "em_established"})


def claim_id_for(seed: int, number: int) -> str:
    """Claim IDs are unique within a run and differ between seeds: 'SYN7-000000042'."""
    return f"SYN{seed}-{number:09d}"


class _Run:
    """State of one generation run; `claims()` drives it."""

    def __init__(self, config: GeneratorConfig, codesets: CodeSets) -> None:
        self.config = config
        # Reproducible simulation, not secrecy: a seeded PRNG is exactly what is wanted here.
        self.rng = random.Random(config.seed)  # noqa: S311
        self.codesets = codesets
        scenario_count = len(SCENARIOS) + len(PROVIDER_LEVEL_SCENARIOS)
        self.population = build_population(self.rng, config, codesets, scenario_count)
        self.reference = build_reference(codesets, self.population.window_start, self.population.window_end)
        self.factory = ClaimFactory(self.rng, config, codesets, self.population, self.reference)
        self.defect_context = build_defect_context(self.rng, codesets, config.anchor_date)
        self.recent = RecentClaims(self.rng)
        self.upcoder_npis = frozenset(p.npi for p in self.population.practitioners if p.upcoder)
        self.emitted = 0
        self._scenario_codes = list(SCENARIOS)
        self._scenario_cum = list(accumulate(weight for _, weight in SCENARIOS.values()))
        self._thresholds = list(
            accumulate((config.defect_rate, config.fraud_rate, config.replacement_rate, config.void_rate))
        )

    # ------------------------------------------------------------------ events

    def _defect(self) -> list[tuple[ClaimDict, list[tuple[LabelKind, str]]]]:
        code: ReasonCode = DEFECT_CODES[self.rng.randrange(len(DEFECT_CODES))]
        claim = self.factory.any_claim(claim_type=DEFECTS[code].claim_type)
        inject_defect(claim, code, self.defect_context)
        return [(claim, [(LabelKind.DEFECT, code.value)])]

    def _fraud(self) -> list[tuple[ClaimDict, list[tuple[LabelKind, str]]]]:
        code: FraudCode = self.rng.choices(self._scenario_codes, cum_weights=self._scenario_cum)[0]
        scenario, _ = SCENARIOS[code]
        context = FraudContext(self.factory, self.codesets, self.recent, self.config.count - self.emitted)
        return [(claim, [(LabelKind.FRAUD, code.value)]) for claim in scenario(context)]

    def _follow_up(self, frequency: str) -> list[tuple[ClaimDict, list[tuple[LabelKind, str]]]]:
        """A replacement (7) or void (8) of an earlier clean original."""
        original = self.recent.take()
        if original is None:
            return []
        claim = copy_claim(original)
        claim["frequency_code"] = frequency
        claim["original_claim_id"] = original["claim_id"]
        if claim.get("type_of_bill"):
            claim["type_of_bill"] = claim["type_of_bill"][:2] + frequency
        if frequency == "7":
            # A corrected bill: typically one line's charge changes.
            line = claim["lines"][self.rng.randrange(len(claim["lines"]))]
            factor = Decimal(str(round(self.rng.uniform(0.85, 1.15), 2)))
            line["charge"] = money(max(1, int(line["charge"] * factor * 100)))
            recompute_total(claim)
        received = original["source"]["received_date"] + timedelta(days=self.rng.randint(3, 45))
        claim["source"]["received_date"] = min(received, self.config.anchor_date)
        return [(claim, [])]

    def _clean(self) -> list[tuple[ClaimDict, list[tuple[LabelKind, str]]]]:
        claim = self.factory.any_claim(honest=False)
        rendering = claim.get("rendering_provider") or {}
        if rendering.get("npi") in self.upcoder_npis and any(
            self.reference.procedures[line["procedure_code"]].category in EM_CATEGORIES
            for line in claim["lines"]
            if line.get("procedure_code") in self.reference.procedures
        ):
            return [(claim, [(LabelKind.FRAUD, FraudCode.UPCODING.value)])]
        return [(claim, [])]

    def _next_event(self) -> list[tuple[ClaimDict, list[tuple[LabelKind, str]]]]:
        roll = self.rng.random()
        defect, fraud, replacement, void = self._thresholds
        if roll < defect:
            return self._defect()
        if roll < fraud:
            return self._fraud() or self._clean()
        if roll < replacement:
            return self._follow_up("7") or self._clean()
        if roll < void:
            return self._follow_up("8") or self._clean()
        return self._clean()

    # ------------------------------------------------------------------ emission

    def records(self) -> Iterator[tuple[ClaimDict, list[Label]]]:
        while self.emitted < self.config.count:
            for claim, marks in self._next_event():
                self.emitted += 1
                claim["claim_id"] = claim_id_for(self.config.seed, self.emitted)
                claim["source"]["locator"] = f"claim {self.emitted}"
                self.factory.register(claim)
                labels = [Label(claim_id=claim["claim_id"], kind=kind, rule=rule) for kind, rule in marks]
                if not labels and claim["frequency_code"] == "1":
                    self.recent.add(claim)
                yield claim, labels


def generate_records(
    config: GeneratorConfig, codesets: CodeSets | None = None
) -> Iterator[tuple[ClaimDict, list[Label]]]:
    """The claims as plain dicts in canonical shape (not validated), for writers that serialise directly.

    The dicts are owned by the generator: read or serialise them before advancing the iterator, never mutate them.
    """
    return _Run(config, codesets or load_codesets()).records()


def generate_claims(config: GeneratorConfig, codesets: CodeSets | None = None) -> Iterator[tuple[Claim, list[Label]]]:
    """Stream `config.count` claims with their labels; the same config always yields the same claims."""
    for record, labels in generate_records(config, codesets):
        yield Claim.model_validate(record), labels


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact, as the canonical model serialises amounts ('125.30')
    raise TypeError(f"cannot serialise {type(value).__name__} in a claim record")


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def claim_json(record: ClaimDict) -> bytes:
    """One canonical claim as compact JSON (null fields omitted), as `Claim.model_validate_json` reads it back.

    Serialising the record directly with orjson is several times faster than validating it into a `Claim` and
    dumping that; tests assert both give the same claim.
    """
    return orjson.dumps(_without_none(record), default=_json_default)
