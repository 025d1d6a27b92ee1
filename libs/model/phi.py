"""Find the PHI-marked fields of the claim model, so that no other module keeps its own list of PHI field names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel

from libs.model.claim import PHI_MARKER, Claim, PhiKind


@dataclass(frozen=True)
class PhiField:
    """A PHI field located by its dotted path from the claim root, e.g. 'patient.address.postal_code'."""

    path: str
    kind: PhiKind


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation such as `Person | None` or `list[ServiceLine]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    nested: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        for model in _model_types(arg):
            if model not in nested:
                nested.append(model)
    return nested


def _walk(model: type[BaseModel], prefix: str) -> list[PhiField]:
    found: list[PhiField] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if PHI_MARKER in extra:
            found.append(PhiField(path=path, kind=PhiKind(str(extra[PHI_MARKER]))))
            continue
        for nested in _model_types(info.annotation):
            found.extend(_walk(nested, f"{path}."))
    return found


@cache
def phi_fields(model: type[BaseModel] = Claim) -> tuple[PhiField, ...]:
    """Every PHI-marked field reachable from `model` (lists are walked through their item type)."""
    return tuple(_walk(model, ""))
