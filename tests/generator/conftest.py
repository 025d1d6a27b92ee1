"""Generated samples shared by the generator tests (each generated once per session)."""

from __future__ import annotations

import copy

import pytest

from libs.codesets import CodeSets, load_codesets
from libs.generator import GeneratorConfig, Label, generate_claims, generate_records
from libs.generator.claims import ClaimDict
from libs.model import Claim

CLEAN_CONFIG = GeneratorConfig(count=2000, seed=11, defect_rate=0.0, fraud_rate=0.0, replacement_rate=0.02,
                               void_rate=0.01)
DEFECT_HEAVY_CONFIG = GeneratorConfig(count=3000, seed=5, defect_rate=0.6, fraud_rate=0.1)


@pytest.fixture(scope="session")
def codesets() -> CodeSets:
    return load_codesets()


@pytest.fixture(scope="session")
def clean_sample() -> list[tuple[Claim, list[Label]]]:
    """Claims without any injection: only originals, replacements, voids (and upcoding is off: fraud_rate 0)."""
    return list(generate_claims(CLEAN_CONFIG))


@pytest.fixture(scope="session")
def defect_heavy_records() -> list[tuple[ClaimDict, list[Label]]]:
    """Most claims carry a defect, so every reason code is injected dozens of times; plain records, deep-copied."""
    return [(copy.deepcopy(record), labels) for record, labels in generate_records(DEFECT_HEAVY_CONFIG)]


@pytest.fixture(scope="session")
def defect_heavy_sample(defect_heavy_records) -> list[tuple[Claim, list[Label]]]:
    """The same run as canonical claims (what `generate_claims` yields)."""
    return [(Claim.model_validate(record), labels) for record, labels in defect_heavy_records]
