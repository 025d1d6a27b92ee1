"""The project's acceptance contract between the generator and the validation rules.

Every defect label is caught by its own reason code, and claims without a defect label have no error-severity issue,
when validated on the anchor date or up to a few weeks after it (as `claims validate` does with as_of = today).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from libs.generator.labels import LabelKind
from libs.validation.catalog import ReasonCode, Severity
from tests.generator.conftest import DEFECT_HEAVY_CONFIG


def _validate_claim() -> Callable[..., Any]:
    if importlib.util.find_spec("libs.validation.rules") is None:
        pytest.skip("libs.validation.validate_claim is not written yet: the contract cannot be checked")
    return importlib.import_module("libs.validation.rules").validate_claim


@pytest.mark.parametrize("days_after_anchor", [0, 30])
def test_each_defect_is_caught_by_its_own_code_and_clean_claims_have_no_error(
    defect_heavy_sample, codesets, days_after_anchor
):
    validate_claim = _validate_claim()
    as_of = DEFECT_HEAVY_CONFIG.anchor_date + timedelta(days=days_after_anchor)
    missed: Counter[str] = Counter()
    clean_errors: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    for claim, labels in defect_heavy_sample:
        result = validate_claim(claim, as_of, codesets)
        codes = {str(issue.code) for issue in result.issues}
        defects = [label.rule for label in labels if label.kind is LabelKind.DEFECT]
        if defects:
            for rule in defects:
                (caught if rule in codes else missed)[rule] += 1
        else:
            clean_errors.update(str(i.code) for i in result.issues if i.severity == Severity.ERROR)
    assert not missed, f"defects not caught by their own reason code: {dict(missed)}"
    assert not clean_errors, f"claims without a defect label raised errors: {dict(clean_errors)}"
    assert set(caught) == {code.value for code in ReasonCode}
