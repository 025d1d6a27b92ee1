"""FHIR R4 adapter: Claim / ExplanationOfBenefit mapping, Bundles, NDJSON, rejections without PHI, robustness."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.adapters import FhirRejectionReason, InputUnreadableError, read_fhir
from libs.model import Claim, ClaimType, DiagnosisSystem, ProcedureSystem, Rejection, SourceFormat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fhir"
PHI_VALUES = ("TESTPATIENT", "ALEX", "SYN000123456", "1958-03-14", "SAMPLETOWN", "BUNDLEPATIENT", "TRUNCATED")


def _one_claim(path: Path) -> Claim:
    records = list(read_fhir(path))
    assert len(records) == 1
    assert isinstance(records[0], Claim), records[0]
    return records[0]


def _write(tmp_path: Path, resource: dict, name: str = "resource.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(resource))
    return path


def _minimal_claim(**overrides: object) -> dict:
    resource: dict = {
        "resourceType": "Claim",
        "identifier": [{"value": "MIN0001"}],
        "status": "active",
        "type": {"coding": [{"code": "professional"}]},
        "use": "claim",
        "patient": {"identifier": {"value": "SYN000000001"}},
        "created": "2026-01-01",
        "provider": {"display": "SYNTHETIC PROVIDER"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "SYNTHETIC PLAN"}}],
    }
    resource.update(overrides)
    return resource


def test_professional_claim_maps_header_parties_and_providers() -> None:
    claim = _one_claim(FIXTURES / "claim_professional.json")
    assert claim.claim_id == "PCLM0001"
    assert claim.claim_type is ClaimType.PROFESSIONAL
    assert claim.source.format is SourceFormat.FHIR_CLAIM
    assert claim.service_date_from == claim.service_date_to == date(2026, 6, 15)
    assert claim.total_charge == Decimal("165.50")
    assert claim.billing_provider is not None
    assert (claim.billing_provider.npi, claim.billing_provider.tax_id) == ("1234567893", "991234567")
    assert claim.billing_provider.entity_type == "2"
    assert claim.rendering_provider is not None
    assert (claim.rendering_provider.npi, claim.rendering_provider.name) == ("1245319599", "DOE, JAMIE")
    assert claim.rendering_provider.taxonomy == "207Q00000X"
    assert claim.referring_provider is not None
    assert claim.referring_provider.npi == "1679576722"
    assert claim.payer is not None
    assert (claim.payer.payer_id, claim.payer.name) == ("SYNPAYER1", "SYNTHETIC HEALTH PLAN")


def test_contained_patient_becomes_patient_and_self_subscriber() -> None:
    claim = _one_claim(FIXTURES / "claim_professional.json")
    assert claim.patient is not None
    assert claim.patient.member_id == "SYN000123456"
    assert (claim.patient.last_name, claim.patient.first_name, claim.patient.middle_name) == (
        "TESTPATIENT", "ALEX", "Q")
    assert claim.patient.birth_date == date(1958, 3, 14)
    assert claim.patient.gender == "F"
    assert claim.patient.medical_record_number == "MRN-778899"
    assert claim.patient.address is not None
    assert claim.patient.address.postal_code == "17111"
    assert claim.patient.relationship_code == "18"
    assert claim.subscriber == claim.patient


def test_diagnoses_are_ordered_by_sequence_undotted_and_pointed_at() -> None:
    claim = _one_claim(FIXTURES / "claim_professional.json")
    assert [(d.code, d.system) for d in claim.diagnoses] == [
        ("E119", DiagnosisSystem.ICD10CM),
        ("I10", DiagnosisSystem.ICD10CM),
    ]
    assert [line.diagnosis_pointers for line in claim.lines] == [[1, 2], [1]]


def test_professional_lines_map_codes_charges_dates_and_place_of_service() -> None:
    claim = _one_claim(FIXTURES / "claim_professional.json")
    first, second = claim.lines
    assert (first.procedure_code, first.procedure_system, first.modifiers) == ("99213", ProcedureSystem.HCPCS, ["25"])
    assert first.charge == Decimal("125.00")
    assert first.rendering_provider is not None
    assert first.rendering_provider.npi == "1245319599"
    # Without net, the charge is unitPrice x quantity.
    assert (second.procedure_code, second.units, second.charge) == ("83036", Decimal(2), Decimal("40.50"))
    assert second.service_date_from == date(2026, 6, 15)
    # The header takes the first line's place of service; a line keeps its own only when it differs.
    assert claim.place_of_service == "11"
    assert (first.place_of_service, second.place_of_service) == (None, "81")


def test_related_prior_claim_makes_a_replacement() -> None:
    claim = _one_claim(FIXTURES / "claim_professional.json")
    assert claim.original_claim_id == "PCLM0000"
    assert claim.frequency_code == "7"


def test_institutional_eob_maps_supporting_info_and_adjudication() -> None:
    claim = _one_claim(FIXTURES / "eob_institutional.json")
    assert claim.claim_id == "ICLM0001"  # the 'uc' identifier
    assert claim.claim_type is ClaimType.INSTITUTIONAL
    assert claim.source.format is SourceFormat.FHIR_EOB
    assert claim.source.received_date == date(2026, 5, 10)
    assert claim.type_of_bill == "111"  # '0111' on the UB-04 form
    assert claim.frequency_code == "1"
    assert (claim.admission_date, claim.discharge_date) == (date(2026, 5, 1), date(2026, 5, 4))
    assert claim.drg_code == "194"
    assert claim.place_of_service is None
    assert [(d.code, d.present_on_admission) for d in claim.diagnoses] == [("J189", "Y"), ("E119", "N")]
    assert (claim.total_charge, claim.allowed_amount, claim.paid_amount) == (
        Decimal("3150.10"), Decimal("2400.00"), Decimal("2090.06"))
    room, lab = claim.lines
    assert (room.revenue_code, room.procedure_code, room.units) == ("0120", None, Decimal(3))
    assert (room.charge, room.allowed_amount, room.paid_amount) == (
        Decimal("3000.00"), Decimal("2400.00"), Decimal("2000.00"))
    assert (room.service_date_from, room.service_date_to) == (date(2026, 5, 1), date(2026, 5, 3))
    assert (lab.revenue_code, lab.procedure_code, lab.charge, lab.paid_amount) == (
        "0300", "80053", Decimal("150.10"), Decimal("90.06"))
    assert claim.attending_provider is not None
    assert claim.attending_provider.npi == "1245319599"
    assert claim.payer is not None
    assert (claim.payer.payer_id, claim.payer.name) == ("SYNPAYER2", "SYNTHETIC CARE PLAN")


def test_partial_birth_date_is_left_empty_and_death_date_kept() -> None:
    claim = _one_claim(FIXTURES / "eob_institutional.json")
    assert claim.patient is not None
    assert claim.patient.birth_date is None  # '1949' cannot be a full date
    assert claim.patient.death_date == date(2026, 7, 1)
    assert claim.patient.member_id == "SYN000987654"


def test_bundle_resolves_references_and_reports_each_entry() -> None:
    records = list(read_fhir(FIXTURES / "bundle.json"))
    by_location = {str(record.source.locator): record for record in records}
    # Context entries (Patient, Organization, Practitioner, Coverage: entries 1-4) are not records of their own.
    assert sorted(by_location) == ["entry 5", "entry 6", "entry 7", "entry 8", "entry 9"]
    claim = by_location["entry 5"]
    assert isinstance(claim, Claim)
    assert claim.diagnoses[0].code == "25000"
    assert claim.diagnoses[0].system is DiagnosisSystem.ICD9CM
    assert claim.billing_provider is not None
    assert claim.billing_provider.npi == "1234567893"
    assert claim.rendering_provider is not None
    assert claim.rendering_provider.name == "SMITH, JORDAN"  # absolute fullUrl matched by Type/id
    assert claim.referring_provider is not None
    assert claim.referring_provider.name == "REFERRING, DOCTOR"
    assert claim.patient is not None
    assert (claim.patient.member_id, claim.patient.relationship_code, claim.patient.gender) == (
        "SYN000555001", "19", "U")
    assert claim.subscriber is not None
    assert claim.subscriber.member_id == "SYN000555000"
    reasons = {loc: rec.reason for loc, rec in by_location.items() if isinstance(rec, Rejection)}
    assert reasons == {
        "entry 6": FhirRejectionReason.UNSUPPORTED_RESOURCE,
        "entry 7": FhirRejectionReason.INVALID_RESOURCE,
        "entry 8": FhirRejectionReason.UNSUPPORTED_CLAIM_TYPE,
        "entry 9": FhirRejectionReason.UNSUPPORTED_DIAGNOSIS,
    }


def test_ndjson_malformed_line_is_rejected_and_other_lines_still_read() -> None:
    records = list(read_fhir(FIXTURES / "resources.ndjson"))
    summary = [(r.source.locator, r.reason if isinstance(r, Rejection) else r.claim_id) for r in records]
    assert summary == [
        ("line 1", "NCLM0001"),
        ("line 2", FhirRejectionReason.MALFORMED_JSON),
        ("line 3", "NEOB0003"),
        ("line 5", FhirRejectionReason.NOT_A_RESOURCE),
        ("line 6", FhirRejectionReason.NOT_A_RESOURCE),
    ]


def test_cancelled_eob_is_a_void_and_logical_references_are_used() -> None:
    records = list(read_fhir(FIXTURES / "resources.ndjson"))
    claim, eob = (r for r in records if isinstance(r, Claim))
    assert claim.patient is not None
    assert claim.patient.member_id == "SYN000777001"  # patient.identifier of a logical reference
    assert claim.billing_provider is not None
    assert claim.billing_provider.npi == "1234567893"
    assert eob.frequency_code == "8"
    assert (eob.total_charge, eob.paid_amount) == (Decimal("95.00"), Decimal(0))


def test_ndjson_with_broken_first_line_keeps_the_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "broken-first.ndjson"
    path.write_text('{"resourceType": "Claim", \n' + json.dumps(_minimal_claim()) + "\n")
    records = list(read_fhir(path))
    assert [type(r).__name__ for r in records] == ["Rejection", "Claim"]
    assert records[0].source.locator == "line 1"


def test_total_charge_is_what_the_file_says_even_with_negative_lines(tmp_path: Path) -> None:
    items = [
        {"sequence": 1, "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "75710"}]},
         "net": {"value": 68.8}},
        {"sequence": 2, "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "75710"}]},
         "net": {"value": -68.8}},
    ]
    claim = _one_claim(_write(tmp_path, _minimal_claim(item=items, total={"value": 820.0})))
    assert claim.total_charge == Decimal("820.0")
    assert [line.charge for line in claim.lines] == [Decimal("68.8"), Decimal("-68.8")]


def test_invalid_resource_message_names_paths_not_values(tmp_path: Path) -> None:
    resource = _minimal_claim(created="TESTPATIENT ALEX", patient={"reference": 12})
    (rejection,) = read_fhir(_write(tmp_path, resource))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == FhirRejectionReason.INVALID_RESOURCE
    assert "created" in rejection.message
    assert "patient.reference" in rejection.message
    assert "TESTPATIENT" not in rejection.message


@pytest.mark.parametrize("fixture", ["claim_professional.json", "eob_institutional.json", "bundle.json",
                                     "resources.ndjson"])
def test_no_phi_in_rejection_messages(fixture: str) -> None:
    for record in read_fhir(FIXTURES / fixture):
        if isinstance(record, Rejection):
            assert not any(value in record.message for value in PHI_VALUES), record.message


def test_resource_without_identifier_uses_its_id_and_without_either_is_rejected(tmp_path: Path) -> None:
    with_id = _minimal_claim(id="logical-1")
    del with_id["identifier"]
    assert _one_claim(_write(tmp_path, with_id, "a.json")).claim_id == "logical-1"
    without = _minimal_claim()
    del without["identifier"]
    (rejection,) = read_fhir(_write(tmp_path, without, "b.json"))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == FhirRejectionReason.MISSING_CLAIM_ID


def test_non_claim_top_level_resource_is_unsupported(tmp_path: Path) -> None:
    (rejection,) = read_fhir(_write(tmp_path, {"resourceType": "Patient", "id": "x"}))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == FhirRejectionReason.UNSUPPORTED_RESOURCE
    assert rejection.location == "resource"


def test_missing_file_raises_input_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputUnreadableError, match=r"missing\.json"):
        list(read_fhir(tmp_path / "missing.json"))


VALID_DOCUMENT = (FIXTURES / "claim_professional.json").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(VALID_DOCUMENT)), noise=st.binary(max_size=40))
def test_truncated_or_noisy_input_never_raises(tmp_path: Path, cut: int, noise: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(VALID_DOCUMENT[:cut] + noise)
    for record in read_fhir(path):
        assert isinstance(record, Claim | Rejection)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
claim_keys = st.sampled_from(["identifier", "type", "item", "diagnosis", "total", "billablePeriod", "careTeam",
                              "supportingInfo", "related", "insurance", "patient", "provider", "contained"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(claim_keys, json_values, max_size=4),
       resource_type=st.sampled_from(["Claim", "ExplanationOfBenefit", "Bundle"]))
def test_random_resource_content_never_raises(tmp_path: Path, changes: dict, resource_type: str) -> None:
    resource = {**_minimal_claim(), **changes, "resourceType": resource_type}
    for record in read_fhir(_write(tmp_path, resource)):
        assert isinstance(record, Claim | Rejection)
