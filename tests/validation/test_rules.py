"""Every reason code in the catalog: a claim that breaks exactly that rule fails with the code on the right field,
and the closest legitimate variant passes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from libs.model import Diagnosis, DiagnosisSystem, ProcedureSystem, Provider, Source, SourceFormat
from libs.validation import ValidationStatus
from libs.validation.catalog import ReasonCode as R
from libs.validation.catalog import Severity
from tests.factories import (
    AS_OF,
    SERVICE_DATE,
    VALID_NPI,
    make_institutional_claim,
    make_person,
    make_professional_claim,
)
from tests.validation.helpers import pairs, run, with_all_dates, with_line

P, I = make_professional_claim, make_institutional_claim  # noqa: E741  (P/I read as 837P/837I)
ICD10 = DiagnosisSystem.ICD10CM
ICD9 = DiagnosisSystem.ICD9CM
DAY = timedelta(days=1)
PRE_CUTOVER = date(2015, 9, 30)  # last day of ICD-9-CM
PRE_CUTOVER_AS_OF = date(2015, 12, 1)


def icd9(*codes: str) -> list[Diagnosis]:
    return [Diagnosis(code=code, system=ICD9, qualifier="BK" if i == 0 else "BF") for i, code in enumerate(codes)]


def icd10(*codes: str) -> list[Diagnosis]:
    return [Diagnosis(code=code, system=ICD10, qualifier="ABK" if i == 0 else "ABF") for i, code in enumerate(codes)]


def synpuf(**overrides: object) -> Source:
    return Source(format=SourceFormat.SYNPUF_CARRIER, file="carrier.csv", locator="line 2", **overrides)


def eob_reversal_claim():
    """A FHIR EOB shaped like the CARIN example: a line, its reversal, and the line again."""
    claim = P(source=Source(format=SourceFormat.FHIR_EOB, file="eob.json", locator="entry 1"),
              total_charge=Decimal("68.80"))
    base = claim.lines[0].model_copy(update={"charge": Decimal("68.80"), "allowed_amount": Decimal("34.80"),
                                             "paid_amount": Decimal("34.80"), "diagnosis_pointers": [1]})
    reversal = base.model_copy(update={"line_number": 2, "charge": Decimal("-68.80"),
                                       "allowed_amount": Decimal("-34.80"), "paid_amount": Decimal("-34.80")})
    again = base.model_copy(update={"line_number": 3})
    return claim.model_copy(update={"lines": [base, reversal, again]})


# (claim, as_of, the expected (code, field), other codes the defect legitimately also causes)
FAILING = [
    pytest.param(P(billing_provider=None), AS_OF, (R.MISSING_BILLING_NPI, "billing_provider.npi"), (),
                 id="billing provider absent"),
    pytest.param(P(billing_provider=Provider(npi="  ")), AS_OF, (R.MISSING_BILLING_NPI, "billing_provider.npi"), (),
                 id="billing NPI blank"),
    pytest.param(P(patient=None, subscriber=make_person(member_id=None)), AS_OF,
                 (R.MISSING_MEMBER_ID, "subscriber.member_id"), (), id="no member id"),
    pytest.param(I(diagnoses=[]), AS_OF, (R.MISSING_DIAGNOSIS, "diagnoses"), (), id="no diagnosis"),
    pytest.param(P(lines=[]), AS_OF, (R.MISSING_LINES, "lines"), (), id="no lines"),
    pytest.param(with_line(with_line(P(service_date_from=None, service_date_to=None), 0, service_date_from=None,
                                     service_date_to=None), 1, service_date_from=None, service_date_to=None),
                 AS_OF, (R.MISSING_SERVICE_DATE, "lines[1].service_date_from"), (), id="no service date anywhere"),
    pytest.param(P(total_charge=None), AS_OF, (R.MISSING_TOTAL_CHARGE, "total_charge"), (), id="no total charge"),
    pytest.param(P(place_of_service=None), AS_OF, (R.MISSING_PLACE_OF_SERVICE, "place_of_service"), (),
                 id="professional without place of service"),
    pytest.param(I(type_of_bill=None), AS_OF, (R.MISSING_TYPE_OF_BILL, "type_of_bill"), (),
                 id="institutional without type of bill"),
    pytest.param(with_line(P(), 1, procedure_code=None), AS_OF, (R.MISSING_PROCEDURE_CODE, "lines[1].procedure_code"),
                 (), id="professional line without procedure code"),
    pytest.param(with_line(I(), 0, revenue_code=None), AS_OF, (R.MISSING_REVENUE_CODE, "lines[0].revenue_code"), (),
                 id="institutional line without revenue code"),
    pytest.param(with_line(P(), 1, charge=None), AS_OF, (R.MISSING_LINE_CHARGE, "lines[1].charge"),
                 (R.TOTAL_CHARGE_MISMATCH,), id="line without charge"),
    pytest.param(P(payer=None), AS_OF, (R.MISSING_PAYER, "payer.payer_id"), (), id="no payer"),
    pytest.param(P(rendering_provider=Provider(npi="123456789")), AS_OF, (R.NPI_FORMAT, "rendering_provider.npi"), (),
                 id="NPI of 9 digits"),
    pytest.param(P(referring_provider=Provider(npi="3234567890")), AS_OF, (R.NPI_FORMAT, "referring_provider.npi"),
                 (), id="NPI starting with 3"),
    pytest.param(P(facility=Provider(npi="12345678A3")), AS_OF, (R.NPI_FORMAT, "facility.npi"), (),
                 id="NPI with a letter"),
    pytest.param(I(attending_provider=Provider(npi="12345678901")), AS_OF,
                 (R.NPI_FORMAT, "attending_provider.npi"), (), id="NPI of 11 digits"),
    pytest.param(with_line(P(), 1, rendering_provider=Provider(npi="\uff10\uff11\uff12\uff13")), AS_OF,
                 (R.NPI_FORMAT, "lines[1].rendering_provider.npi"), (), id="line NPI of full-width digits"),
    pytest.param(P(rendering_provider=Provider(npi="1234567890")), AS_OF,
                 (R.NPI_CHECK_DIGIT, "rendering_provider.npi"), (), id="NPI failing the check digit"),
    pytest.param(P(diagnoses=icd10("E119", "ZZZ99")), AS_OF, (R.ICD10_UNKNOWN, "diagnoses[1].code"), (),
                 id="ICD-10 code not in the table"),
    pytest.param(P(diagnoses=icd10("E119", "1")), AS_OF, (R.ICD10_UNKNOWN, "diagnoses[1].code"), (),
                 id="ICD-10 chapter number is not a code"),
    pytest.param(P(diagnoses=icd10("E119", "E08-E13")), AS_OF, (R.ICD10_UNKNOWN, "diagnoses[1].code"), (),
                 id="ICD-10 block is not a code"),
    pytest.param(P(diagnoses=icd10("E11", "I10")), AS_OF, (R.ICD10_NOT_BILLABLE, "diagnoses[0].code"), (),
                 id="ICD-10 category is not billable"),
    pytest.param(P(diagnoses=icd10("E119", "M545")), AS_OF, (R.ICD10_NOT_BILLABLE, "diagnoses[1].code"), (),
                 id="ICD-10 code expanded in 2021 is no longer billable"),
    pytest.param(with_all_dates(P(), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 (R.ICD10_BEFORE_EFFECTIVE, "diagnoses[1].system"), (), id="ICD-10 before 2015-10-01"),
    pytest.param(with_all_dates(P(diagnoses=icd9("250", "12")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 (R.ICD9_FORMAT, "diagnoses[1].code"), (), id="ICD-9 of two digits"),
    pytest.param(with_all_dates(P(diagnoses=icd9("V7", "4019")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 (R.ICD9_FORMAT, "diagnoses[0].code"), (), id="ICD-9 V code too short"),
    pytest.param(with_all_dates(P(diagnoses=icd9("E88091", "4019")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 (R.ICD9_FORMAT, "diagnoses[0].code"), (), id="ICD-9 E code too long"),
    pytest.param(P(diagnoses=icd9("25000", "4019")), AS_OF, (R.ICD9_AFTER_CUTOVER, "diagnoses[0].system"), (),
                 id="ICD-9 in 2026"),
    pytest.param(with_all_dates(P(diagnoses=icd9("25000", "4019")), date(2015, 10, 1)), PRE_CUTOVER_AS_OF,
                 (R.ICD9_AFTER_CUTOVER, "diagnoses[1].system"), (), id="ICD-9 on the cutover day"),
    pytest.param(with_all_dates(I(diagnoses=icd9("78650")), date(2015, 9, 28)).model_copy(
                     update={"service_date_to": date(2015, 10, 2)}), PRE_CUTOVER_AS_OF,
                 (R.ICD9_AFTER_CUTOVER, "diagnoses[0].system"), (),
                 id="institutional statement through date after the cutover decides"),
    pytest.param(I(diagnoses=[Diagnosis(code="R079", system=ICD10, present_on_admission="X")]), AS_OF,
                 (R.POA_INVALID, "diagnoses[0].present_on_admission"), (), id="POA X"),
    pytest.param(with_line(P(), 0, diagnosis_pointers=[1, 3]), AS_OF,
                 (R.DIAGNOSIS_POINTER_INVALID, "lines[0].diagnosis_pointers[1]"), (), id="pointer past the end"),
    pytest.param(with_line(P(), 1, diagnosis_pointers=[0]), AS_OF,
                 (R.DIAGNOSIS_POINTER_INVALID, "lines[1].diagnosis_pointers[0]"), (), id="pointer zero"),
    pytest.param(with_line(P(diagnoses=icd10("E119", "I10", "E785", "J069", "R079")), 0,
                           diagnosis_pointers=[1, 2, 3, 4, 5]), AS_OF,
                 (R.DIAGNOSIS_POINTER_INVALID, "lines[0].diagnosis_pointers"), (), id="five pointers"),
    pytest.param(with_line(P(), 0, procedure_code="9921"), AS_OF, (R.PROCEDURE_FORMAT, "lines[0].procedure_code"),
                 (), id="HCPCS of 4 characters"),
    pytest.param(with_line(P(), 0, procedure_code="W1234"), AS_OF, (R.PROCEDURE_FORMAT, "lines[0].procedure_code"),
                 (), id="HCPCS letter W"),
    pytest.param(with_line(P(), 1, procedure_code="0001X"), AS_OF, (R.PROCEDURE_FORMAT, "lines[1].procedure_code"),
                 (), id="CPT suffix X"),
    pytest.param(with_line(P(), 1, procedure_code="99213", procedure_system=None, modifiers=[]), AS_OF, None, (),
                 id="no procedure system means HCPCS (valid code)"),
    pytest.param(with_line(P(), 0, modifiers=["25", "ZZ"]), AS_OF, (R.MODIFIER_INVALID, "lines[0].modifiers[1]"), (),
                 id="unknown modifier"),
    pytest.param(with_line(P(), 0, modifiers=["25", "59", "LT", "RT", "XU"]), AS_OF,
                 (R.MODIFIER_INVALID, "lines[0].modifiers"), (), id="five modifiers"),
    pytest.param(with_line(with_all_dates(P(), date(2016, 6, 1)), 0, modifiers=["95"]), date(2016, 7, 1),
                 (R.MODIFIER_INVALID, "lines[0].modifiers[0]"), (), id="modifier 95 before it existed (2017)"),
    pytest.param(with_line(I(), 0, revenue_code="9999"), AS_OF, (R.REVENUE_CODE_INVALID, "lines[0].revenue_code"),
                 (), id="unknown revenue code"),
    pytest.param(with_line(I(), 1, revenue_code="730"), AS_OF, (R.REVENUE_CODE_INVALID, "lines[1].revenue_code"),
                 (), id="revenue code without its leading zero"),
    pytest.param(P(place_of_service="00"), AS_OF, (R.POS_INVALID, "place_of_service"), (), id="POS 00"),
    pytest.param(with_line(P(), 1, place_of_service="98"), AS_OF, (R.POS_INVALID, "lines[1].place_of_service"), (),
                 id="line POS 98"),
    pytest.param(with_all_dates(P(place_of_service="10"), date(2021, 6, 1)), date(2021, 7, 1),
                 (R.POS_INVALID, "place_of_service"), (), id="POS 10 before it existed (2022)"),
    pytest.param(I(type_of_bill="13"), AS_OF, (R.TOB_INVALID, "type_of_bill"), (), id="TOB of 2 digits"),
    pytest.param(I(type_of_bill="13A"), AS_OF, (R.TOB_INVALID, "type_of_bill"), (), id="TOB with a letter"),
    pytest.param(I(type_of_bill="531"), AS_OF, (R.TOB_INVALID, "type_of_bill"), (), id="TOB facility 5"),
    pytest.param(I(type_of_bill="191"), AS_OF, (R.TOB_INVALID, "type_of_bill"), (), id="TOB classification 9"),
    pytest.param(I(type_of_bill="136"), AS_OF, (R.TOB_INVALID, "type_of_bill"), (R.TOB_FREQUENCY_MISMATCH,),
                 id="TOB frequency 6"),
    pytest.param(with_line(P(), 0, units=None), AS_OF, (R.UNITS_INVALID, "lines[0].units"), (), id="no units"),
    pytest.param(with_line(I(), 1, units=Decimal(0)), AS_OF, (R.UNITS_INVALID, "lines[1].units"), (), id="zero units"),
    pytest.param(with_line(P(), 1, units=Decimal(-1)), AS_OF, (R.UNITS_INVALID, "lines[1].units"), (),
                 id="negative units"),
    pytest.param(P(service_date_from=SERVICE_DATE + DAY), AS_OF, (R.DATE_RANGE_INVERTED, "service_date_from"),
                 (R.LINE_DATE_OUTSIDE_HEADER,), id="header from after to"),
    pytest.param(with_line(P(), 0, service_date_to=SERVICE_DATE - DAY), AS_OF,
                 (R.DATE_RANGE_INVERTED, "lines[0].service_date_from"), (), id="line from after to"),
    pytest.param(with_line(P(), 1, service_date_from=SERVICE_DATE + DAY, service_date_to=SERVICE_DATE + DAY), AS_OF,
                 (R.LINE_DATE_OUTSIDE_HEADER, "lines[1].service_date_from"), (), id="line after the statement period"),
    pytest.param(with_line(P(service_date_to=None), 0, service_date_from=SERVICE_DATE - DAY), AS_OF,
                 (R.LINE_DATE_OUTSIDE_HEADER, "lines[0].service_date_from"), (),
                 id="line before the statement from date (no to date)"),
    pytest.param(with_all_dates(P(), AS_OF + DAY), AS_OF, (R.DATE_IN_FUTURE, "service_date_to"), (),
                 id="service tomorrow"),
    pytest.param(with_all_dates(P(), date(2015, 11, 29)).model_copy(
                     update={"source": Source(format=SourceFormat.SYNTHETIC, received_date=date(2015, 12, 1))}),
                 AS_OF, (R.DATE_TOO_OLD, "service_date_from"), (), id="eleven years old, filed in time"),
    pytest.param(with_all_dates(P(), AS_OF - timedelta(days=366)), AS_OF,
                 (R.TIMELY_FILING_EXCEEDED, "service_date_to"), (), id="366 days before as-of, no receipt date"),
    pytest.param(P(source=Source(format=SourceFormat.SYNTHETIC, received_date=SERVICE_DATE + timedelta(days=400))),
                 AS_OF, (R.TIMELY_FILING_EXCEEDED, "service_date_to"), (), id="received 400 days after service"),
    pytest.param(with_line(P(total_charge=Decimal("84.50")), 1, charge=Decimal("-40.50")), AS_OF,
                 (R.AMOUNT_NEGATIVE, "lines[1].charge"), (), id="negative line charge"),
    pytest.param(P(paid_amount=Decimal("-5")), AS_OF, (R.AMOUNT_NEGATIVE, "paid_amount"), (),
                 id="negative header paid"),
    pytest.param(eob_reversal_claim().model_copy(update={"total_charge": Decimal("-68.80")}), AS_OF,
                 (R.AMOUNT_NEGATIVE, "total_charge"), (R.TOTAL_CHARGE_MISMATCH,),
                 id="negative header total on a FHIR EOB"),
    pytest.param(P(total_charge=Decimal("165.51")), AS_OF, (R.TOTAL_CHARGE_MISMATCH, "total_charge"), (),
                 id="total off by a cent"),
    pytest.param(P(source=synpuf(), total_charge=Decimal("200.00")), AS_OF, (R.TOTAL_CHARGE_MISMATCH, "total_charge"),
                 (), id="SynPUF total beyond the tolerance"),
    pytest.param(P(allowed_amount=Decimal("165.51")), AS_OF, (R.ALLOWED_EXCEEDS_BILLED, "allowed_amount"), (),
                 id="header allowed above billed"),
    pytest.param(with_line(P(), 1, allowed_amount=Decimal("41")), AS_OF,
                 (R.ALLOWED_EXCEEDS_BILLED, "lines[1].allowed_amount"), (), id="line allowed above charge"),
    pytest.param(P(allowed_amount=Decimal("100"), paid_amount=Decimal("100.01")), AS_OF,
                 (R.PAID_EXCEEDS_ALLOWED, "paid_amount"), (), id="header paid above allowed"),
    pytest.param(with_line(P(), 0, allowed_amount=Decimal("90"), paid_amount=Decimal("95")), AS_OF,
                 (R.PAID_EXCEEDS_ALLOWED, "lines[0].paid_amount"), (), id="line paid above allowed"),
    pytest.param(P(frequency_code="6"), AS_OF, (R.FREQUENCY_CODE_INVALID, "frequency_code"), (),
                 id="frequency 6"),
    pytest.param(P(frequency_code="7"), AS_OF, (R.MISSING_ORIGINAL_CLAIM_REF, "original_claim_id"), (),
                 id="replacement without original"),
    pytest.param(P(frequency_code="8", original_claim_id=" "), AS_OF,
                 (R.MISSING_ORIGINAL_CLAIM_REF, "original_claim_id"), (), id="void with a blank original"),
    pytest.param(P(type_of_bill="131"), AS_OF, (R.CLAIM_TYPE_FIELDS_MISMATCH, "type_of_bill"), (),
                 id="professional with a type of bill"),
    pytest.param(with_line(P(), 0, revenue_code="0510"), AS_OF,
                 (R.CLAIM_TYPE_FIELDS_MISMATCH, "lines[0].revenue_code"), (), id="professional line with revenue code"),
    pytest.param(I(place_of_service="21"), AS_OF, (R.CLAIM_TYPE_FIELDS_MISMATCH, "place_of_service"), (),
                 id="institutional with a place of service"),
    pytest.param(I(type_of_bill="137"), AS_OF, (R.TOB_FREQUENCY_MISMATCH, "type_of_bill"), (),
                 id="TOB says replacement, frequency says original"),
    pytest.param(P(patient=make_person(birth_date=SERVICE_DATE + DAY)), AS_OF,
                 (R.BIRTH_AFTER_SERVICE, "patient.birth_date"), (), id="patient born after the service"),
    pytest.param(P(patient=None, subscriber=make_person(birth_date=SERVICE_DATE + DAY)), AS_OF,
                 (R.BIRTH_AFTER_SERVICE, "subscriber.birth_date"), (), id="subscriber-patient born after the service"),
]

# Legitimate variants next to each rule's boundary: no issue at all.
PASSING = [
    pytest.param(P(patient=None), AS_OF, id="member id from the subscriber only"),
    pytest.param(P(subscriber=None), AS_OF, id="member id from the patient only"),
    pytest.param(P(service_date_from=None, service_date_to=None), AS_OF, id="line dates without a header period"),
    pytest.param(with_line(with_line(P(), 0, service_date_from=None, service_date_to=None), 1,
                           service_date_from=None, service_date_to=None), AS_OF,
                 id="lines dated by the statement period"),
    pytest.param(with_line(with_line(P(place_of_service=None), 0, place_of_service="11"), 1, place_of_service="11"),
                 AS_OF, id="place of service on every line instead of the header"),
    pytest.param(with_line(I(), 0, procedure_code=None, procedure_system=None), AS_OF,
                 id="institutional line with a revenue code only"),
    pytest.param(P(rendering_provider=Provider(npi="2000000002")), AS_OF, id="NPI starting with 2"),
    pytest.param(P(referring_provider=Provider(npi=None)), AS_OF, id="provider without NPI is not checked"),
    pytest.param(P(diagnoses=icd10("E11.9", "I10")), AS_OF, id="dotted ICD-10"),
    pytest.param(P(diagnoses=icd10("S83241A", "I10")), AS_OF, id="ICD-10 with a 7th character"),
    pytest.param(with_all_dates(P(diagnoses=icd9("0340", "V7389")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 id="ICD-9 on the last day before the cutover"),
    pytest.param(with_all_dates(P(diagnoses=icd9("250.00", "E8809")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 id="ICD-9 dotted and E code"),
    pytest.param(with_all_dates(P(diagnoses=icd9("401", "V72")), PRE_CUTOVER), PRE_CUTOVER_AS_OF,
                 id="ICD-9 three characters"),
    *[pytest.param(I(diagnoses=[Diagnosis(code="R079", system=ICD10, present_on_admission=poa)]), AS_OF,
                   id=f"POA {poa}") for poa in ("Y", "N", "U", "W", "1")],
    pytest.param(with_line(P(diagnoses=icd10("E119", "I10", "E785", "J069")), 0, diagnosis_pointers=[4, 3, 2, 1]),
                 AS_OF, id="four pointers"),
    *[pytest.param(with_line(P(), 0, procedure_code=code), AS_OF, id=f"HCPCS {code}")
      for code in ("0001U", "0500T", "3044F", "0003M", "J1100", "A0425", "V2020", "00100")],
    pytest.param(with_line(I(), 0, procedure_code="0DTJ4ZZ", procedure_system=ProcedureSystem.ICD10PCS), AS_OF,
                 id="ICD-10-PCS code is not judged as HCPCS"),
    pytest.param(with_line(P(), 0, modifiers=["25", "59", "LT", "RT"]), AS_OF, id="four known modifiers"),
    pytest.param(with_line(with_all_dates(P(), date(2017, 1, 1)), 0, modifiers=["95"]), date(2017, 2, 1),
                 id="modifier 95 on its first day"),
    pytest.param(I(type_of_bill="0131"), AS_OF, id="TOB with a leading zero"),
    pytest.param(I(type_of_bill="0137", frequency_code="7", original_claim_id="ICLM0000"), AS_OF,
                 id="replacement TOB with its original"),
    pytest.param(P(frequency_code="8", original_claim_id="PCLM0000"), AS_OF, id="void with its original"),
    pytest.param(with_line(P(), 0, units=Decimal("0.5")), AS_OF, id="fractional units"),
    pytest.param(with_all_dates(P(), AS_OF), AS_OF, id="service on the as-of day"),
    pytest.param(with_all_dates(P(), date(2016, 11, 30)).model_copy(
                     update={"source": Source(format=SourceFormat.SYNTHETIC, received_date=date(2016, 12, 1))}),
                 AS_OF, id="exactly ten years old"),
    pytest.param(with_all_dates(P(), AS_OF - timedelta(days=365)), AS_OF, id="filed on day 365"),
    pytest.param(with_all_dates(P(diagnoses=icd9("0340", "V7389")), date(2006, 10, 3)), date(2006, 11, 1),
                 id="a 2006 claim judged as of its receipt"),
    pytest.param(P(source=Source(format=SourceFormat.SYNTHETIC, received_date=SERVICE_DATE + timedelta(days=30))),
                 date(2030, 1, 1), id="receipt date, not as-of, decides timely filing"),
    pytest.param(P(source=synpuf(), total_charge=Decimal("180.00")), AS_OF, id="SynPUF total within the tolerance"),
    pytest.param(eob_reversal_claim(), AS_OF, id="FHIR EOB reversal line"),
    pytest.param(P(allowed_amount=Decimal("165.50"), paid_amount=Decimal("165.50")), AS_OF,
                 id="allowed and paid equal to billed"),
    pytest.param(P(paid_amount=Decimal("500")), AS_OF, id="paid without allowed is not compared"),
    pytest.param(P(patient=make_person(birth_date=SERVICE_DATE)), AS_OF, id="born on the service day"),
]


@pytest.mark.parametrize(("claim", "as_of", "expected", "also"), FAILING)
def test_rule_fails_with_its_code_on_the_field(claim, as_of, expected, also):
    result = run(claim, as_of)
    if expected is None:
        assert result.issues == []
        return
    assert expected in pairs(result), result.issues
    unexpected = {issue.code for issue in result.issues} - {expected[0], *also}
    assert not unexpected, result.issues
    code = expected[0]
    severity = next(issue.severity for issue in result.issues if issue.code is code)
    assert result.status is (ValidationStatus.INVALID if severity is Severity.ERROR else ValidationStatus.VALID)


@pytest.mark.parametrize(("claim", "as_of"), PASSING)
def test_legitimate_variant_passes(claim, as_of):
    result = run(claim, as_of)
    assert result.issues == []
    assert result.status is ValidationStatus.VALID


def test_every_catalog_code_has_a_failing_case():
    covered = {param.values[2][0] for param in FAILING if param.values[2] is not None}  # type: ignore[index]
    assert covered == set(R)


def test_missing_line_charges_skip_the_total_comparison():
    claim = with_line(with_line(P(), 0, charge=None), 1, charge=None)
    assert {issue.code for issue in run(claim).issues} == {R.MISSING_LINE_CHARGE}


def test_bad_npi_format_is_not_also_reported_as_check_digit():
    result = run(P(rendering_provider=Provider(npi="3234567890")))
    assert [issue.code for issue in result.issues] == [R.NPI_FORMAT]


def test_check_digit_is_a_warning_and_the_claim_stays_valid():
    result = run(P(billing_provider=Provider(npi="1234567890")))
    assert result.status is ValidationStatus.VALID
    assert [(i.code, i.severity) for i in result.issues] == [(R.NPI_CHECK_DIGIT, Severity.WARNING)]


def test_every_line_missing_a_date_is_reported():
    claim = with_line(with_line(P(service_date_from=None, service_date_to=None), 0, service_date_from=None,
                                service_date_to=None), 1, service_date_from=None, service_date_to=None)
    assert pairs(run(claim)) == {(R.MISSING_SERVICE_DATE, "lines[0].service_date_from"),
                                 (R.MISSING_SERVICE_DATE, "lines[1].service_date_from")}


def test_synpuf_tolerance_grows_with_the_number_of_charged_lines():
    # Two charged lines: $20.00 tolerance; 185.50 is exactly 20.00 above the line sum.
    assert run(P(source=synpuf(), total_charge=Decimal("185.50"))).issues == []
    assert pairs(run(P(source=synpuf(), total_charge=Decimal("185.51")))) == {(R.TOTAL_CHARGE_MISMATCH, "total_charge")}


def test_negative_line_amounts_on_non_eob_sources_are_errors_even_when_they_balance():
    claim = eob_reversal_claim().model_copy(update={"source": Source(format=SourceFormat.X12_837P)})
    assert {field for code, field in pairs(run(claim)) if code is R.AMOUNT_NEGATIVE} == {
        "lines[1].charge", "lines[1].allowed_amount", "lines[1].paid_amount"}


def test_factories_validate_with_zero_issues():
    for claim in (make_professional_claim(), make_institutional_claim()):
        result = run(claim)
        assert result.issues == []
        assert result.status is ValidationStatus.VALID
        assert result.claim_id == claim.claim_id


def test_result_json_shape():
    result = run(P(payer=None, total_charge=Decimal("1")))
    data = result.to_dict()
    assert data["claim_id"] == "PCLM0001"
    assert data["status"] == "invalid"
    first = data["issues"][0]
    assert (first["code"], first["severity"], first["field"]) == ("MISSING_PAYER", "warning", "payer.payer_id")
    assert all(set(issue) == {"code", "severity", "field", "message"} for issue in data["issues"])


def test_billing_npi_passes_the_factory_check_digit():
    assert run(P(billing_provider=Provider(npi=VALID_NPI))).issues == []
