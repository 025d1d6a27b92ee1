"""The run loop behind `claims validate`: every record is a result or a rejection, and the counts reconcile."""

from __future__ import annotations

from decimal import Decimal

from libs.model import Claim, Rejection, Source, SourceFormat
from libs.validation import ValidationResult
from libs.validation.catalog import ReasonCode
from libs.validation.report import validate_records
from tests.factories import AS_OF, make_institutional_claim, make_professional_claim


def _rejection(location: str) -> Rejection:
    return Rejection(source=Source(format=SourceFormat.X12_837P, file="in.837"), location=location,
                     reason="X12_TRUNCATED", message="expected SE; found end of file")


def test_every_record_is_counted_once_and_passed_on():
    records: list[Claim | Rejection] = [
        make_professional_claim(),
        _rejection("segment 37 (CLM)"),
        make_professional_claim(claim_id="BAD1", total_charge=Decimal("1"), payer=None),
        make_institutional_claim(claim_id="BAD2", lines=[]),
        make_professional_claim(claim_id="WARN", payer=None),
    ]
    results: list[ValidationResult] = []
    rejections: list[Rejection] = []
    summary = validate_records(records, AS_OF, results.append, rejections.append)
    assert [r.claim_id for r in results] == ["PCLM0001", "BAD1", "BAD2", "WARN"]
    assert [r.location for r in rejections] == ["segment 37 (CLM)"]
    assert (summary.claims, summary.valid, summary.invalid, summary.rejections) == (4, 2, 2, 1)
    assert summary.records == len(records)
    assert summary.claims_with_warnings == 2
    assert summary.rejections_by_reason == {"X12_TRUNCATED": 1}


def test_top_codes_count_claims_once_and_issues_each_time():
    bad_lines = make_professional_claim(claim_id="U2").model_copy(
        update={"lines": [line.model_copy(update={"units": None}) for line in make_professional_claim().lines]})
    one_bad_line = make_professional_claim(claim_id="U1").model_copy(
        update={"lines": [make_professional_claim().lines[0].model_copy(update={"units": None}),
                          make_professional_claim().lines[1]]})
    summary = validate_records([bad_lines, one_bad_line], AS_OF, lambda _: None, lambda _: None)
    assert summary.top_codes() == [(ReasonCode.UNITS_INVALID, 2, 3)]
