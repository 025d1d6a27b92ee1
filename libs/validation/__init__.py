"""Validation: the reason-code catalog and the Python rule engine.

The engine's names are imported lazily: `libs.validation.catalog` is imported by the Spark jobs, the generator and
the docs, and must not drag in the code sets (the ICD-10-CM table takes a second or two to import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libs.validation.issues import Issue, ValidationResult, ValidationStatus
    from libs.validation.npi import npi_luhn_ok
    from libs.validation.rules import validate_claim, validate_claims

__all__ = [
    "Issue",
    "ValidationResult",
    "ValidationStatus",
    "npi_luhn_ok",
    "validate_claim",
    "validate_claims",
]

_LAZY = {
    "Issue": "libs.validation.issues",
    "ValidationResult": "libs.validation.issues",
    "ValidationStatus": "libs.validation.issues",
    "npi_luhn_ok": "libs.validation.npi",
    "validate_claim": "libs.validation.rules",
    "validate_claims": "libs.validation.rules",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'libs.validation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
