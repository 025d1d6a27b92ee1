"""X12 837 adapter: loop mapping, code systems, envelopes and rejections, on hand-written synthetic interchanges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import libs.adapters.x12 as x12
from libs.adapters.errors import InputUnreadableError
from libs.adapters.x12 import (
    ENVELOPE_REASONS,
    X12Reason,
    X12Warning,
    X12WarningCode,
    parse_x12_text,
    read_x12,
    sniff_x12,
)
from libs.adapters.x12.parser import X12Parser
from libs.model import Claim, ClaimType, DiagnosisSystem, ProcedureSystem, Rejection, SourceFormat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
MULTI_837P = FIXTURES / "837p_multi.837"
INSTITUTIONAL_837I = FIXTURES / "837i_institutional.837"

# ---------------------------------------------------------------------------------------------- inline interchanges
ISA = "ISA*00*          *00*          *ZZ*SYNSUBMITTER   *ZZ*SYNRECEIVER    *260615*1200*^*00501*000000301*0*T*:"
PHI_VALUES = ("PHILAST", "PHIFIRST", "PHIMEMBER01", "19610203", "PHIKIDLAST", "PHIKIDFIRST", "20150405")
HEADER = [
    "BHT*0019*00*B1*20260615*1200*CH",
    "NM1*41*2*SYN SUBMITTER*****46*S1",
    "NM1*40*2*SYN PLAN*****46*P1",
    "HL*1**20*1",
    "NM1*85*2*SYN CLINIC*****XX*1234567893",
    "N3*1 CLINIC RD",
    "N4*TOWN*PA*17111",
    "REF*EI*991234567",
]
SUBSCRIBER = [
    "HL*2*1*22*0",
    "SBR*P*18*******CI",
    "NM1*IL*1*PHILAST*PHIFIRST****MI*PHIMEMBER01",
    "DMG*D8*19610203*F",
    "NM1*PR*2*SYN PLAN*****PI*P1",
]


def claim(
    claim_id: str = "C1",
    charge: str = "50.00",
    hi: str = "HI*ABK:E119",
    clm05: str = "11:B:1",
    line: str = "SV1*HC:99213*50.00*UN*1***1",
    line_date: str = "DTP*472*D8*20260601",
) -> list[str]:
    return [f"CLM*{claim_id}*{charge}***{clm05}*Y*A*Y*Y", hi, "LX*1", line, line_date]


def interchange(*bodies: list[str], guide: str = "005010X222A1", isa: str = ISA, separator: str = "~\n") -> str:
    """A complete interchange: one GS, one ST..SE per body, every count and control number right."""
    segments = [isa, f"GS*HC*SYNSUBMITTER*SYNRECEIVER*20260615*1200*301*X*{guide}"]
    for number, body in enumerate(bodies, start=1):
        segments += [f"ST*837*{number:04d}*{guide}", *body, f"SE*{len(body) + 2}*{number:04d}"]
    segments += [f"GE*{len(bodies)}*301", "IEA*1*000000301"]
    return separator.join(segments) + separator


def parse(text: str, warnings: list[X12Warning] | None = None) -> list[Claim | Rejection]:
    return list(parse_x12_text(text, "inline.837", warnings=warnings))


def claims_of(results: list[Claim | Rejection]) -> list[Claim]:
    return [result for result in results if isinstance(result, Claim)]


def rejections_of(results: list[Claim | Rejection]) -> list[Rejection]:
    return [result for result in results if isinstance(result, Rejection)]


def assert_no_phi(rejections: list[Rejection]) -> None:
    for rejection in rejections:
        for value in PHI_VALUES:
            assert value not in rejection.message, rejection
            assert value not in rejection.location, rejection


@pytest.fixture(scope="module")
def multi() -> dict[str, Claim]:
    results = list(read_x12(MULTI_837P))
    assert rejections_of(results) == []
    return {result.claim_id: result for result in claims_of(results)}


@pytest.fixture(scope="module")
def institutional() -> dict[str, Claim]:
    results = list(read_x12(INSTITUTIONAL_837I))
    assert rejections_of(results) == []
    return {result.claim_id: result for result in claims_of(results)}


# ---------------------------------------------------------------------------------------------- 837P multi-claim file
def test_multi_claim_file_yields_every_claim_of_every_envelope_in_order() -> None:
    warnings: list[X12Warning] = []
    results = list(read_x12(MULTI_837P, warnings=warnings))
    assert [c.claim_id for c in claims_of(results)] == ["PCN0001", "PCN0002", "PCN0003", "PCN0004", "PCN0005",
                                                        "PCN0006"]
    assert rejections_of(results) == []
    assert warnings == []


def test_claims_are_attached_to_their_own_subscriber_and_patient(multi: dict[str, Claim]) -> None:
    # PCN0001/2 sit directly under subscriber HL 2 (no 2000C): the subscriber is the patient.
    first = multi["PCN0001"]
    assert first.patient == first.subscriber
    assert first.subscriber is not None
    assert first.subscriber.member_id == "SYN000000001"
    assert first.patient is not None
    assert first.patient.relationship_code == "18"
    assert first.patient.birth_date == date(1958, 3, 14)
    # PCN0003/4 are two different patients (2000C) of subscriber HL 3.
    child, spouse = multi["PCN0003"], multi["PCN0004"]
    assert child.subscriber is not None
    assert child.subscriber.last_name == "SAMPLEPARENT"
    assert child.patient is not None
    assert child.patient.last_name == "SAMPLECHILD"
    assert child.patient.relationship_code == "19"
    assert child.patient.birth_date == date(2010, 5, 5)
    assert spouse.patient is not None
    assert spouse.patient.last_name == "SAMPLESPOUSE"
    assert spouse.patient.relationship_code == "01"
    assert child.member_key() == "SYN000000002"  # 5010 patients carry no ID of their own


def test_billing_provider_comes_from_2010aa_not_the_pay_to_address(multi: dict[str, Claim]) -> None:
    billing = multi["PCN0001"].billing_provider
    assert billing is not None
    assert (billing.npi, billing.taxonomy, billing.tax_id, billing.entity_type) == (
        "1234567893", "207Q00000X", "991234567", "2")
    assert billing.address is not None
    assert billing.address.city == "SAMPLETOWN"
    assert multi["PCN0005"].billing_provider is not None
    assert multi["PCN0005"].billing_provider.name == "SECOND SYNTHETIC PRACTICE"


def test_payer_and_rendering_provider(multi: dict[str, Claim]) -> None:
    first = multi["PCN0001"]
    assert first.payer is not None
    assert (first.payer.payer_id, first.payer.name) == ("SYNPAYER1",
                                                                                    "SYNTHETIC HEALTH PLAN")
    assert first.rendering_provider is not None
    assert (first.rendering_provider.npi, first.rendering_provider.taxonomy, first.rendering_provider.name) == (
        "1245319599", "207Q00000X", "DOE, JAMIE")
    assert multi["PCN0003"].referring_provider is not None
    assert multi["PCN0003"].referring_provider.npi == "1679576722"


def test_total_charge_is_clm02_and_equals_the_line_sum(multi: dict[str, Claim]) -> None:
    for claim_ in multi.values():
        assert claim_.total_charge == sum((line.charge or Decimal(0) for line in claim_.lines), Decimal(0))
    assert multi["PCN0001"].total_charge == Decimal("125.00")


def test_service_lines_keep_leading_zeros_modifiers_units_and_pointers(multi: dict[str, Claim]) -> None:
    lines = multi["PCN0001"].lines
    assert [(line.line_number, line.procedure_code, line.modifiers, line.diagnosis_pointers) for line in lines] == [
        (1, "99213", ["25"], [1, 2]),
        (2, "0001U", [], [1]),
    ]
    assert lines[0].procedure_system is ProcedureSystem.HCPCS
    assert (lines[0].charge, lines[0].units, lines[0].unit_type) == (Decimal("100.00"), Decimal(1), "UN")
    assert multi["PCN0004"].lines[0].modifiers == ["GP", "59"]
    assert multi["PCN0004"].lines[0].units == Decimal(4)


def test_header_service_dates_span_the_line_dates(multi: dict[str, Claim]) -> None:
    first = multi["PCN0001"]
    assert (first.service_date_from, first.service_date_to) == (date(2026, 6, 1), date(2026, 6, 3))
    ranged = multi["PCN0003"]  # DTP*472*RD8 on the line
    assert (ranged.lines[0].service_date_from, ranged.lines[0].service_date_to) == (date(2026, 6, 10),
                                                                                     date(2026, 6, 11))
    assert (ranged.service_date_from, ranged.service_date_to) == (date(2026, 6, 10), date(2026, 6, 11))


def test_replacement_claim_carries_frequency_7_and_the_original_reference(multi: dict[str, Claim]) -> None:
    replacement = multi["PCN0002"]
    assert replacement.frequency_code == "7"
    assert replacement.original_claim_id == "PAYERCLAIM0009"
    assert multi["PCN0001"].frequency_code == "1"
    assert multi["PCN0001"].original_claim_id is None


def test_place_of_service_from_clm05_and_line_override(multi: dict[str, Claim]) -> None:
    assert multi["PCN0004"].place_of_service == "22"
    satellite = multi["PCN0005"]
    assert satellite.place_of_service == "11"
    assert satellite.lines[0].place_of_service == "03"
    assert satellite.facility is not None
    assert satellite.facility.name == "SYNTHETIC SATELLITE OFFICE"
    assert satellite.facility.address is not None
    assert satellite.facility.address.city == "OTHERTOWN"
    line_rendering = satellite.lines[0].rendering_provider
    assert line_rendering is not None
    assert (line_rendering.npi, line_rendering.taxonomy) == ("1679576722",
                                                                                            "208D00000X")


def test_medical_record_number_goes_to_the_patient_only(multi: dict[str, Claim]) -> None:
    child = multi["PCN0003"]
    assert child.patient is not None
    assert child.patient.medical_record_number == "MRN000003"
    assert child.subscriber is not None
    assert child.subscriber.medical_record_number is None


def test_source_names_format_file_and_locator(multi: dict[str, Claim]) -> None:
    first = multi["PCN0001"]
    assert first.claim_type is ClaimType.PROFESSIONAL
    assert first.source.format is SourceFormat.X12_837P
    assert first.source.file == "837p_multi.837"
    assert first.source.locator == "ISA 000000101 / ST 0001 / CLM 1 (segment 24)"
    assert multi["PCN0005"].source.locator == "ISA 000000101 / ST 0002 / CLM 1 (segment 86)"


def test_second_interchange_declares_its_own_delimiters(multi: dict[str, Claim]) -> None:
    # The second ISA uses '|' elements and '>' components on one line: read with its own delimiters.
    last = multi["PCN0006"]
    assert last.source.locator is not None
    assert last.source.locator.startswith("ISA 000000102 / ST 0003 / CLM 1")
    assert [d.code for d in last.diagnoses] == ["R0781"]
    assert last.lines[0].procedure_code == "99214"
    assert last.frequency_code == "1"


# ---------------------------------------------------------------------------------------------- 837I
def test_institutional_claim_type_of_bill_revenue_codes_and_statement_period(
    institutional: dict[str, Claim],
) -> None:
    outpatient = institutional["ICN0001"]
    assert outpatient.claim_type is ClaimType.INSTITUTIONAL
    assert outpatient.source.format is SourceFormat.X12_837I
    assert outpatient.type_of_bill == "131"
    assert outpatient.place_of_service is None
    assert (outpatient.service_date_from, outpatient.service_date_to) == (date(2026, 6, 1), date(2026, 6, 3))
    assert [(line.revenue_code, line.procedure_code, line.charge) for line in outpatient.lines] == [
        ("0305", "85025", Decimal("1000.50")),
        ("0450", None, Decimal("250.00")),
    ]
    assert outpatient.total_charge == Decimal("1250.50")


def test_institutional_diagnoses_principal_first_with_poa_and_other_hi_skipped(
    institutional: dict[str, Claim],
) -> None:
    diagnoses = institutional["ICN0001"].diagnoses
    assert [(d.code, d.qualifier, d.present_on_admission) for d in diagnoses] == [
        ("E119", "ABK", "Y"),
        ("R739", "ABJ", None),
        ("I10", "ABF", "N"),
        ("Z794", "ABF", None),
    ]  # BH occurrence, BE value and BG condition codes are not diagnoses
    assert {d.system for d in diagnoses} == {DiagnosisSystem.ICD10CM}


def test_other_subscriber_loop_does_not_overwrite_the_claim_parties(institutional: dict[str, Claim]) -> None:
    outpatient = institutional["ICN0001"]
    assert outpatient.subscriber is not None
    assert outpatient.subscriber.member_id == "SYN000000010"
    assert outpatient.payer is not None
    assert outpatient.payer.payer_id == "SYNPAYER1"
    assert outpatient.attending_provider is not None
    assert (outpatient.attending_provider.npi, outpatient.attending_provider.taxonomy) == ("1245319599",
                                                                                           "207R00000X")
    assert outpatient.patient is not None
    assert outpatient.patient.medical_record_number == "MRNI0001"


def test_institutional_icd9_replacement_with_drg_and_admission(institutional: dict[str, Claim]) -> None:
    inpatient = institutional["ICN0002"]
    assert inpatient.type_of_bill == "117"
    assert inpatient.frequency_code == "7"
    assert inpatient.original_claim_id == "PAYERICN0777"
    assert [(d.code, d.system, d.present_on_admission) for d in inpatient.diagnoses] == [
        ("4280", DiagnosisSystem.ICD9CM, "Y"),
        ("78650", DiagnosisSystem.ICD9CM, None),
        ("4019", DiagnosisSystem.ICD9CM, None),
        ("25000", DiagnosisSystem.ICD9CM, "U"),
    ]
    assert inpatient.drg_code == "291"
    assert inpatient.admission_date == date(2014, 3, 10)
    assert inpatient.discharge_date is None  # DTP*096*TM is the discharge hour, not a date
    assert [(line.revenue_code, line.units, line.unit_type) for line in inpatient.lines] == [
        ("0120", Decimal(4), "DA"), ("0250", Decimal(12), "UN")]


# ---------------------------------------------------------------------------------------------- code systems
@pytest.mark.parametrize(
    ("hi", "expected"),
    [
        ("HI*BK:E119", [("E119", DiagnosisSystem.ICD9CM)]),  # looks like ICD-10, but BK says ICD-9
        ("HI*ABK:4019", [("4019", DiagnosisSystem.ICD10CM)]),  # looks like ICD-9, but ABK says ICD-10
        ("HI*ABK:E119*ABF:I10", [("E119", DiagnosisSystem.ICD10CM), ("I10", DiagnosisSystem.ICD10CM)]),
        ("HI*BK:0340*BF:V7389", [("0340", DiagnosisSystem.ICD9CM), ("V7389", DiagnosisSystem.ICD9CM)]),
        ("HI*ABF:I10*ABK:E119", [("E119", DiagnosisSystem.ICD10CM), ("I10", DiagnosisSystem.ICD10CM)]),
        ("HI*ABK:E11.9", [("E11.9", DiagnosisSystem.ICD10CM)]),  # kept as sent; rules judge the format
    ],
)
def test_hi_qualifier_decides_the_code_system_and_principal_comes_first(
    hi: str, expected: list[tuple[str, DiagnosisSystem]]
) -> None:
    (result,) = parse(interchange([*HEADER, *SUBSCRIBER, *claim(hi=hi)]))
    assert isinstance(result, Claim)
    assert [(d.code, d.system) for d in result.diagnoses] == expected


def test_unknown_hi_qualifier_rejects_only_that_claim() -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim("C1", hi="HI*XYZ:E119"), *claim("C2")]))
    rejection, accepted = results
    assert isinstance(rejection, Rejection)
    assert rejection.reason == X12Reason.BAD_QUALIFIER
    assert rejection.location == "segment 18 (HI) / ST 0001"
    assert isinstance(accepted, Claim)
    assert accepted.claim_id == "C2"


# ---------------------------------------------------------------------------------------------- tolerance
def test_component_separator_differing_from_isa16_is_accepted_with_a_warning() -> None:
    body = [*HEADER, *SUBSCRIBER, *claim(hi="HI*ABK>E119*ABF>I10", clm05="11>B>7",
                                         line="SV1*HC>99213>25*50.00*UN*1***1>2")]
    warnings: list[X12Warning] = []
    (result,) = parse(interchange(body), warnings)
    assert isinstance(result, Claim)
    assert [d.code for d in result.diagnoses] == ["E119", "I10"]
    assert (result.place_of_service, result.frequency_code) == ("11", "7")
    assert (result.lines[0].procedure_code, result.lines[0].modifiers) == ("99213", ["25"])
    assert result.lines[0].diagnosis_pointers == [1, 2]
    assert [w.code for w in warnings] == [X12WarningCode.COMPONENT_SEPARATOR]  # reported once per interchange
    assert "'>'" in warnings[0].message
    assert "':'" in warnings[0].message


@pytest.mark.parametrize("separator", ["~", "~\r\n", "~\n", "~\n\n"])
def test_line_breaks_after_the_terminator_are_tolerated(separator: str) -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim()], separator=separator))
    assert [type(result) for result in results] == [Claim]


def test_missing_final_terminator_is_accepted_with_a_warning() -> None:
    warnings: list[X12Warning] = []
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim()]).rstrip("~\n"), warnings)
    assert [type(result) for result in results] == [Claim]
    assert [w.code for w in warnings] == [X12WarningCode.MISSING_FINAL_TERMINATOR]


# ---------------------------------------------------------------------------------------------- claim rejections
def test_bad_amount_rejects_the_claim_and_reading_continues() -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim("C1", charge="ABC"), *claim("C2")]))
    rejection, accepted = results
    assert isinstance(rejection, Rejection)
    assert rejection.reason == X12Reason.BAD_AMOUNT == "X12_BAD_AMOUNT"
    assert rejection.location == "segment 17 (CLM) / ST 0001"
    assert rejection.message == "CLM02 'ABC' is not a decimal amount at segment 17 (CLM)"
    assert rejection.source.locator == "ISA 000000301 / ST 0001 / CLM 1 (segment 17)"
    assert rejection.source.format is SourceFormat.X12_837P
    assert rejection.source.file == "inline.837"
    assert isinstance(accepted, Claim)
    assert accepted.claim_id == "C2"


@pytest.mark.parametrize("charge", ["NaN", "1E5", "Infinity", "12.3.4", "-", ".", "1,000.00"])
def test_amounts_must_be_x12_decimals(charge: str) -> None:
    (result,) = parse(interchange([*HEADER, *SUBSCRIBER, *claim(charge=charge)]))
    assert isinstance(result, Rejection)
    assert result.reason == X12Reason.BAD_AMOUNT


def test_bad_line_service_date_rejects_the_claim() -> None:
    (result,) = parse(interchange([*HEADER, *SUBSCRIBER, *claim(line_date="DTP*472*D8*20260231")]))
    assert isinstance(result, Rejection)
    assert result.reason == X12Reason.BAD_DATE
    assert result.message == "DTP03 '20260231' is not a CCYYMMDD calendar date (format D8) at segment 21 (DTP)"


def test_bad_birth_date_rejects_every_claim_of_the_subscriber_without_showing_it() -> None:
    subscriber = [segment.replace("19610203", "19611303") for segment in SUBSCRIBER]
    results = parse(interchange([*HEADER, *subscriber, *claim("C1"), *claim("C2")]))
    assert [r.reason for r in rejections_of(results)] == [X12Reason.BAD_DATE, X12Reason.BAD_DATE]
    assert "withheld" in rejections_of(results)[0].message
    assert "19611303" not in rejections_of(results)[0].message
    assert rejections_of(results)[0].location == "segment 15 (DMG) / ST 0001"


def test_bad_diagnosis_pointer_and_units_are_bad_quantities() -> None:
    for line in ("SV1*HC:99213*50.00*UN*1***A", "SV1*HC:99213*50.00*UN*ONE***1"):
        (result,) = parse(interchange([*HEADER, *SUBSCRIBER, *claim(line=line)]))
        assert isinstance(result, Rejection)
        assert result.reason == X12Reason.BAD_QUANTITY


def test_missing_clm01_is_rejected() -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim(""), *claim("C2")]))
    assert [getattr(r, "reason", None) for r in results] == [X12Reason.MISSING_CLM01, None]


def test_claim_without_hl_hierarchy_is_rejected() -> None:
    no_hl = [*HEADER[:3], *claim("C1")]
    under_billing_only = [*HEADER, *claim("C2")]
    orphan_patient = [*HEADER, "HL*3*9*23*0", "PAT*19", "NM1*QC*1*PHIKIDLAST*PHIKIDFIRST", *claim("C3")]
    results = parse(interchange(no_hl, under_billing_only, orphan_patient))
    assert [r.reason for r in rejections_of(results)] == [X12Reason.CLAIM_WITHOUT_HL] * 3
    assert claims_of(results) == []
    assert_no_phi(rejections_of(results))


def test_patient_loop_under_a_subscriber() -> None:
    patient = ["HL*3*2*23*0", "PAT*19", "NM1*QC*1*PHIKIDLAST*PHIKIDFIRST", "DMG*D8*20150405*M"]
    body = [*HEADER, *SUBSCRIBER[:1], SUBSCRIBER[1].replace("*18*", "**"), *SUBSCRIBER[2:], *patient, *claim()]
    (result,) = parse(interchange(body))
    assert isinstance(result, Claim)
    assert result.patient is not None
    assert result.patient.first_name == "PHIKIDFIRST"
    assert result.patient.birth_date == date(2015, 4, 5)
    assert result.patient.gender == "M"
    assert result.subscriber is not None
    assert result.subscriber.relationship_code is None


# ---------------------------------------------------------------------------------------------- envelopes
def test_non_837_transaction_is_rejected_and_skipped() -> None:
    text = interchange([*HEADER, *SUBSCRIBER, *claim()]).replace("ST*837*0001", "ST*835*0001")
    (result,) = parse(text)
    assert isinstance(result, Rejection)
    assert result.reason == X12Reason.UNSUPPORTED_TRANSACTION
    assert result.location == "segment 3 (ST) / ST 0001"


def test_dental_or_unknown_guide_is_unsupported() -> None:
    (result,) = parse(interchange([*HEADER, *SUBSCRIBER, *claim()], guide="005010X224A2"))
    assert isinstance(result, Rejection)
    assert result.reason == X12Reason.UNSUPPORTED_TRANSACTION
    assert "005010X224A2" in result.message


def test_institutional_guide_in_gs08_makes_an_837i() -> None:
    body = [*HEADER, *SUBSCRIBER, *claim(clm05="13:A:1", line="SV2*0305*HC:85025*50.00*UN*1")]
    (result,) = parse(interchange(body, guide="005010X223A3"))
    assert isinstance(result, Claim)
    assert result.claim_type is ClaimType.INSTITUTIONAL
    assert result.type_of_bill == "131"
    assert result.lines[0].revenue_code == "0305"


def test_se01_mismatch_is_an_envelope_rejection_and_claims_still_flow() -> None:
    text = interchange([*HEADER, *SUBSCRIBER, *claim()]).replace("SE*20*0001", "SE*19*0001")
    claim_, rejection = parse(text)
    assert isinstance(claim_, Claim)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == X12Reason.SEGMENT_COUNT
    assert X12Reason.SEGMENT_COUNT in ENVELOPE_REASONS
    assert rejection.location == "segment 22 (SE) / ST 0001"
    assert "20" in rejection.message
    assert "still emitted" in rejection.message


def test_control_number_mismatch_is_an_envelope_rejection() -> None:
    text = interchange([*HEADER, *SUBSCRIBER, *claim()]).replace("IEA*1*000000301", "IEA*1*000000999")
    claim_, rejection = parse(text)
    assert isinstance(claim_, Claim)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == X12Reason.CONTROL_NUMBER


def test_several_transaction_sets_and_group_counts() -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim("C1")], [*HEADER, *SUBSCRIBER, *claim("C2")]))
    assert [c.source.locator for c in claims_of(results)] == [
        "ISA 000000301 / ST 0001 / CLM 1 (segment 17)",
        "ISA 000000301 / ST 0002 / CLM 1 (segment 37)",
    ]
    assert rejections_of(results) == []


# ---------------------------------------------------------------------------------------------- not X12 at all
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", X12Reason.NOT_ISA),
        ("   \n\n", X12Reason.NOT_ISA),
        ('{"resourceType": "Claim"}', X12Reason.NOT_ISA),
        ("GS*HC*A*B*20260101*1200*1*X*005010X222A1~", X12Reason.NOT_ISA),
        ("ISA*00*short*00*x~GS*HC~", X12Reason.BAD_ISA),
        ("ISA" + "*" * 200, X12Reason.BAD_ISA),
        (ISA.replace("*:", "**") + "~", X12Reason.BAD_ISA),  # ISA16 equal to the element separator
        (ISA[:60], X12Reason.TRUNCATED),
        ("IS", X12Reason.TRUNCATED),
    ],
)
def test_garbage_input_is_one_file_level_rejection(text: str, reason: X12Reason) -> None:
    (result,) = parse(text)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.source.format is SourceFormat.X12_837P


def test_garbage_after_the_last_interchange_is_rejected_after_its_claims() -> None:
    results = parse(interchange([*HEADER, *SUBSCRIBER, *claim()]) + "PHILAST,PHIFIRST,19610203\n")
    assert [type(r) for r in results] == [Claim, Rejection]
    rejection = rejections_of(results)[0]
    assert rejection.reason == X12Reason.NOT_ISA
    assert rejection.location == "segment 25"
    assert_no_phi([rejection])


def test_a_new_isa_without_iea_truncates_the_previous_interchange() -> None:
    first = interchange([*HEADER, *SUBSCRIBER, *claim("C1"), *claim("C2")]).split("SE*")[0]
    results = parse(first + interchange([*HEADER, *SUBSCRIBER, *claim("C3")]))
    assert [r.claim_id if isinstance(r, Claim) else r.reason for r in results] == ["C1", X12Reason.TRUNCATED, "C3"]


# ---------------------------------------------------------------------------------------------- entry points
@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"ISA*00*          *00", True),
        (b"\xef\xbb\xbf  \r\nISA|00|", True),
        (b"ISA", True),
        (b"ISAB", False),
        (b"GS*HC", False),
        (b'{"resourceType":"Claim"}', False),
        (b"", False),
    ],
)
def test_sniff_x12(head: bytes, expected: bool) -> None:
    assert sniff_x12(head) is expected


def test_read_x12_streams_across_tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(x12, "CHUNK_BYTES", 7)  # terminators and the ISA header straddle chunk boundaries
    from_file = list(read_x12(MULTI_837P))
    from_text = list(parse_x12_text(MULTI_837P.read_text(), MULTI_837P.name))
    assert from_file == from_text
    assert len(from_file) == 6


def test_claims_are_yielded_before_the_input_is_fully_read() -> None:
    segments = interchange(*[[*HEADER, *SUBSCRIBER, *claim(f"C{n}")] for n in range(1, 4)]).splitlines(True)
    consumed: list[int] = []

    def chunks() -> Iterator[str]:
        for index, segment in enumerate(segments):
            consumed.append(index)
            yield segment

    first = next(iter(X12Parser("stream.837").parse(chunks())))
    assert isinstance(first, Claim)
    assert first.claim_id == "C1"
    assert len(consumed) < len(segments) / 2


def test_read_x12_reports_an_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(InputUnreadableError):
        list(read_x12(tmp_path / "missing.837"))
