"""Defect injectors: one per reason code, each editing what its rule looks at."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest

from libs.generator.defects import DEFECTS, build_defect_context, inject_defect, missing_injectors
from libs.generator.labels import LabelKind
from libs.validation.catalog import ReasonCode
from tests.factories import make_institutional_claim, make_professional_claim


def _as_record(claim) -> dict:
    return claim.model_dump()


@pytest.fixture
def context(codesets):
    return build_defect_context(random.Random(1), codesets, date(2026, 10, 31))


def test_every_reason_code_has_an_injector():
    assert missing_injectors() == []
    assert set(DEFECTS) == set(ReasonCode)


def test_defect_labels_cover_every_reason_code_in_a_heavy_run(defect_heavy_sample):
    rules = Counter(label.rule for _, labels in defect_heavy_sample for label in labels
                    if label.kind is LabelKind.DEFECT)
    assert set(rules) == {code.value for code in ReasonCode}
    assert min(rules.values()) >= 10


def test_every_claim_carries_at_most_one_defect(defect_heavy_sample):
    for _, labels in defect_heavy_sample:
        assert sum(label.kind is LabelKind.DEFECT for label in labels) <= 1


@pytest.mark.parametrize("code", list(ReasonCode))
def test_injector_changes_the_claim(code, context):
    injector = DEFECTS[code]
    factory = make_institutional_claim if injector.claim_type == "institutional" else make_professional_claim
    record = _as_record(factory())
    before = _as_record(factory())
    inject_defect(record, code, context)
    assert record != before


def test_injector_refuses_a_claim_of_the_wrong_type(context):
    record = _as_record(make_institutional_claim())
    with pytest.raises(ValueError, match="MISSING_PLACE_OF_SERVICE needs a professional claim, found institutional"):
        inject_defect(record, ReasonCode.MISSING_PLACE_OF_SERVICE, context)


def test_invalid_codes_used_by_injectors_are_really_rejected_by_the_code_sets(context, codesets):
    assert not any(codesets.icd10cm.exists(code) for code in context.unknown_icd10)
    assert all(codesets.icd10cm.exists(c) and not codesets.icd10cm.is_billable(c) for c in context.non_billable_icd10)
    assert not any(codesets.modifiers.is_valid(code) for code in context.invalid_modifiers)
    assert not any(codesets.place_of_service.is_valid(code) for code in context.invalid_places_of_service)
    assert not any(codesets.revenue_codes.is_valid(code) for code in context.invalid_revenue_codes)
    assert not any(codesets.frequency_codes.is_valid(code) for code in context.invalid_frequency_codes)


def test_date_defects_keep_receipt_consistent(context):
    anchor = context.anchor_date
    old = _as_record(make_professional_claim())
    inject_defect(old, ReasonCode.DATE_TOO_OLD, context)
    assert old["service_date_to"] < anchor.replace(year=anchor.year - 10)
    assert old["service_date_from"] >= date(2015, 10, 1)  # still in the ICD-10 era: only the age is wrong
    assert 0 < (old["source"]["received_date"] - old["service_date_to"]).days < 30

    late = _as_record(make_professional_claim())
    inject_defect(late, ReasonCode.TIMELY_FILING_EXCEEDED, context)
    assert (late["source"]["received_date"] - late["service_date_to"]).days > 365
    assert late["source"]["received_date"] <= anchor

    future = _as_record(make_professional_claim())
    inject_defect(future, ReasonCode.DATE_IN_FUTURE, context)
    assert (future["service_date_from"] - anchor).days > 300  # still future when validated weeks later
