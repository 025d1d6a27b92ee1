"""Lenient FHIR: real CMS Blue Button 2.0 EOBs (which break R4 cardinality) convert, each violation a path warning;
violations leniency does not cover are still rejections."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from libs.adapters.fhir import read_fhir
from libs.adapters.fhir_lenient import FhirWarning
from libs.model import Claim, ClaimType, DiagnosisSystem, Rejection, SourceFormat
from libs.validation import validate_claim
from libs.validation.catalog import ReasonCode, Severity
from tests.factories import AS_OF

BLUE_BUTTON = Path(__file__).resolve().parent.parent / "fixtures" / "bluebutton"
CARRIER = BLUE_BUTTON / "eob_read_carrier_v2.json"
INPATIENT = BLUE_BUTTON / "eob_read_in_pt_v2.excerpt.json"
OUTPATIENT = BLUE_BUTTON / "eob_read_out_pt_v2.excerpt.json"


def _read(path: Path) -> tuple[Claim, list[FhirWarning]]:
    warnings: list[FhirWarning] = []
    records = list(read_fhir(path, warnings.append))
    assert len(records) == 1
    assert isinstance(records[0], Claim), records[0]
    return records[0], warnings


def _paths(warnings: list[FhirWarning]) -> set[str]:
    return {warning.path for warning in warnings}


def test_carrier_eob_without_insurer_provider_or_focal_converts_with_its_totals_and_line():
    claim, warnings = _read(CARRIER)
    assert claim.claim_id == "22639159481"
    assert claim.claim_type is ClaimType.PROFESSIONAL
    assert claim.source.format is SourceFormat.FHIR_EOB
    # The submitted charge comes from benefitBalance (CMS labels the carrier `total` 'priorpayerpaid', 0.00).
    assert (claim.total_charge, claim.allowed_amount, claim.paid_amount) == (Decimal(250), Decimal(60), Decimal(50))
    (line,) = claim.lines
    assert (line.procedure_code, line.charge, line.allowed_amount, line.paid_amount) == (
        "77085", Decimal(250), Decimal(250), Decimal(50))
    assert claim.diagnoses[0].code == "M810"
    assert claim.diagnoses[0].system is DiagnosisSystem.ICD10CM
    assert claim.patient is not None
    assert claim.patient.member_id == "-20140000008325"
    assert {"ExplanationOfBenefit.insurer", "ExplanationOfBenefit.provider",
            "ExplanationOfBenefit.insurance[0].focal"} <= _paths(warnings)
    assert all(w.file == str(CARRIER) and w.location == "resource" for w in warnings)


def test_inpatient_eob_converts_with_drg_type_of_bill_principal_diagnosis_and_total():
    claim, warnings = _read(INPATIENT)
    assert claim.claim_type is ClaimType.INSTITUTIONAL
    assert claim.total_charge == Decimal(10000)  # an uncategorised total is the submitted charge
    assert claim.drg_code == "191"  # from the diagnosis that carries only a packageCode
    assert claim.type_of_bill == "111"  # hospital, inpatient, admit through discharge
    assert claim.diagnoses[0].code == "4940"  # the principal first, although CMS numbers the admitting one before
    assert [line.revenue_code for line in claim.lines] == ["0111", "0250", "0271", "0460"]  # 0001 is the total line
    assert [line.charge for line in claim.lines] == [Decimal(4000), Decimal(650), Decimal(500), Decimal(200)]
    paths = _paths(warnings)
    assert "ExplanationOfBenefit.diagnosis[0]" in paths
    assert "ExplanationOfBenefit.total[0].category" in paths
    assert {f"ExplanationOfBenefit.item[{i}].productOrService" for i in range(5)} <= paths
    assert "ExplanationOfBenefit.item[4].revenue" in paths


def test_outpatient_eob_takes_the_revenue_center_total_charge_and_the_hcpcs_code_from_the_modifier():
    claim, warnings = _read(OUTPATIENT)
    assert claim.total_charge == Decimal(300)
    assert claim.type_of_bill == "141"
    (line,) = claim.lines
    # Three 'submitted' adjudications (rate 10, total charge 60, payment 0): the CMS variable decides.
    assert (line.revenue_code, line.procedure_code, line.charge, line.modifiers) == ("0301", "80048", Decimal(60), [])
    assert "ExplanationOfBenefit.item[0].modifier" in _paths(warnings)


@pytest.mark.parametrize("path", [CARRIER, INPATIENT, OUTPATIENT])
def test_blue_button_eobs_are_not_failed_for_fields_their_format_cannot_carry(path: Path):
    claim, _ = _read(path)
    result = validate_claim(claim, AS_OF)
    missing = {ReasonCode.MISSING_BILLING_NPI, ReasonCode.MISSING_TYPE_OF_BILL, ReasonCode.MISSING_TOTAL_CHARGE,
               ReasonCode.MISSING_MEMBER_ID, ReasonCode.MISSING_LINES, ReasonCode.TIMELY_FILING_EXCEEDED,
               ReasonCode.DATE_TOO_OLD, ReasonCode.TOTAL_CHARGE_MISMATCH}
    assert not {issue.code for issue in result.issues if issue.severity is Severity.ERROR} & missing


def test_warnings_name_paths_and_never_values_from_the_file():
    _, warnings = _read(CARRIER)
    text = json.dumps([w.to_dict() for w in warnings])
    for value in ("-20140000008325", "22639159481", "Part B", "M810"):
        assert value not in text


def test_a_violation_leniency_does_not_cover_is_still_a_rejection(tmp_path: Path):
    raw = json.loads(CARRIER.read_text(encoding="utf-8"))
    raw["billablePeriod"]["start"] = "not-a-date"  # a wrong value, not a missing element: content is broken
    path = tmp_path / "eob.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    warnings: list[FhirWarning] = []
    (record,) = read_fhir(path, warnings.append)
    assert isinstance(record, Rejection)
    assert "billablePeriod.start" in record.message
    assert warnings == []


def test_default_warning_sink_logs_the_path(caplog: pytest.LogCaptureFixture):
    with caplog.at_level("WARNING", logger="claims.adapters.fhir"):
        records = list(read_fhir(CARRIER))
    assert isinstance(records[0], Claim)
    assert "ExplanationOfBenefit.insurer" in caplog.text
