"""Lenient FHIR R4 reading: repair the cardinality breaks real producers ship, and say where, instead of rejecting.

Why: the CMS Blue Button 2.0 API (and the BFD server behind it) returns ExplanationOfBenefit resources that break R4
minimum cardinalities while the claim itself is intact: carrier EOBs have no `insurer` and no `provider`, `insurance`
entries have no `focal`, institutional items have no `productOrService`, the DRG travels as a diagnosis with only a
`packageCode`, an inpatient `total` has no `category`. A payer loading its own Medicare data must not lose those
claims, so a resource that fails strict validation *only* for such reasons is repaired with inert placeholders and
converted, and every repair becomes a `FhirWarning` with its element path. Anything else (a wrong type, a bad date,
an unknown element, a missing claim identifier...) is still a rejection: leniency covers what can be read without
guessing, nothing more.

The placeholders carry the system `PLACEHOLDER_SYSTEM` (or, for references, only an extension with that URL), which
the mapping (libs.adapters.fhir_mapping) recognises and ignores: a placeholder never becomes a value of the claim.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

PLACEHOLDER_SYSTEM = "urn:claims-pipeline:fhir-lenient-placeholder"
PLACEHOLDER_CODING = {"system": PLACEHOLDER_SYSTEM, "code": "absent"}


@dataclass(frozen=True, slots=True)
class FhirWarning:
    """A violation of FHIR R4 that was read leniently: where (file, record, element path) and what was done."""

    file: str
    location: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON shape printed next to rejections (no value from the file, only element paths)."""
        return {"file": self.file, "location": self.location, "path": self.path, "message": self.message}


def _placeholder_reference() -> dict[str, Any]:
    # A Reference with only an extension is valid R4 (ele-1: it has children) and resolves to nothing.
    return {"extension": [{"url": PLACEHOLDER_SYSTEM, "valueBoolean": True}]}


def _placeholder_concept() -> dict[str, Any]:
    return {"coding": [dict(PLACEHOLDER_CODING)]}


def is_placeholder_concept(concept: Any) -> bool:
    """Whether a (validated) CodeableConcept is a lenient placeholder."""
    codings = getattr(concept, "coding", None) or []
    return bool(codings) and all(getattr(c, "system", None) == PLACEHOLDER_SYSTEM for c in codings)


@dataclass(frozen=True)
class _Repair:
    """How one kind of violation is repaired: the value put in its place and the warning's wording."""

    value: Callable[[], Any]
    message: str


# (element path with list indexes replaced by '*', error type family) -> repair. Only minimum-cardinality breaks
# whose absence loses no claim content are here.
_REPAIRS: dict[tuple[str, ...], _Repair] = {
    ("insurer",): _Repair(_placeholder_reference,
                          "R4 requires insurer (1..1); absent, the payer comes from the coverage when one is given"),
    ("provider",): _Repair(_placeholder_reference,
                           "R4 requires provider (1..1); absent, the claim has no billing provider"),
    ("insurance", "*", "focal"): _Repair(lambda: False,
                                         "R4 requires insurance.focal (1..1); absent, read as not focal "
                                         "(the first coverage is used)"),
    ("item", "*", "productOrService"): _Repair(_placeholder_concept,
                                               "R4 requires item.productOrService (1..1); absent, the line keeps "
                                               "its revenue code (a HCPCS code in item.modifier becomes the "
                                               "procedure code)"),
    ("total", "*", "category"): _Repair(_placeholder_concept,
                                        "R4 requires total.category (1..1); absent, an uncategorised total is read "
                                        "as the submitted charge"),
    # Adjudication bookkeeping the canonical claim does not carry: filled so that the rest validates, never read.
    ("outcome",): _Repair(lambda: "complete",
                          "R4 requires outcome (1..1); absent, not used by the mapping (read as 'complete')"),
    ("created",): _Repair(lambda: "1900-01-01",
                          "R4 requires created (1..1); absent, not used by the mapping"),
    ("diagnosis", "*"): _Repair(lambda: {"coding": [dict(PLACEHOLDER_CODING)]},
                                "R4 requires diagnosis.diagnosis[x] (1..1); absent, the entry only carries its "
                                "packageCode (the DRG) and is not a diagnosis"),
}
_MISSING_TYPES = frozenset({"missing", "model_field_validation.missing"})


def _pattern(loc: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("*" if isinstance(part, int) else str(part) for part in loc)


def _fhir_path(resource_type: str, loc: tuple[Any, ...]) -> str:
    """('insurance', 0, 'focal') -> 'ExplanationOfBenefit.insurance[0].focal'."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _is_choice_missing(raw: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """A diagnosis entry whose error is its missing diagnosis[x] (it has neither CodeableConcept nor Reference)."""
    if len(loc) != 2 or loc[0] != "diagnosis" or not isinstance(loc[1], int):
        return False
    entries = raw.get("diagnosis")
    if not isinstance(entries, list) or loc[1] >= len(entries) or not isinstance(entries[loc[1]], dict):
        return False
    entry = entries[loc[1]]
    return "diagnosisCodeableConcept" not in entry and "diagnosisReference" not in entry


def _apply(raw: dict[str, Any], loc: tuple[Any, ...], value: Any) -> bool:
    """Set raw[loc] = value, walking dicts and lists; False when the path does not lead to a dict key."""
    node: Any = raw
    for part in loc[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
        elif not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    last = loc[-1]
    if not isinstance(node, dict) or isinstance(last, int):
        return False
    node[last] = value
    return True


MAX_ROUNDS = 4  # pydantic reports required-element errors in stages (a model validator runs after field checks)


def repair_until_valid(raw: dict[str, Any], validate: Callable[[dict[str, Any]], Any], error: ValidationError, *,
                       file: str, location: str) -> tuple[Any, list[FhirWarning]] | None:
    """The validated resource after lenient repairs, with their warnings; None when a violation is not covered."""
    warnings: list[FhirWarning] = []
    current = raw
    for _ in range(MAX_ROUNDS):
        repaired = repair(current, error, file=file, location=location)
        if repaired is None:
            return None
        current, found = repaired
        warnings.extend(found)
        try:
            return validate(current), warnings
        except ValidationError as again:
            error = again
    return None


def repair(raw: dict[str, Any], error: ValidationError, *, file: str, location: str
           ) -> tuple[dict[str, Any], list[FhirWarning]] | None:
    """A copy of `raw` with every violation of `error` repaired, and one warning per repair; None when any violation
    is not one that leniency covers (the caller then rejects the resource as before)."""
    resource_type = str(raw.get("resourceType", "Resource"))
    patched = copy.deepcopy(raw)
    warnings: list[FhirWarning] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(item["loc"])
        if _is_choice_missing(raw, loc):
            rule = _REPAIRS[("diagnosis", "*")]
            if not _apply(patched, (*loc, "diagnosisCodeableConcept"), rule.value()):
                return None
        else:
            rule_or_none = _REPAIRS.get(_pattern(loc)) if item["type"] in _MISSING_TYPES else None
            if rule_or_none is None or not _apply(patched, loc, rule_or_none.value()):
                return None
            rule = rule_or_none
        warnings.append(FhirWarning(file, location, _fhir_path(resource_type, loc), rule.message))
    return patched, warnings
