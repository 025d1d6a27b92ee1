"""Safe Harbor export (45 CFR 164.514(b)(2)): one test per identifier kind, plus the generalisation rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from libs.model import PersonAddress, Source, SourceFormat
from libs.phi.deidentify import Deidentifier, export_age
from libs.phi.export import export_deidentified
from libs.phi.protector import PhiProtector
from tests.factories import VALID_NPI, make_person, make_professional_claim
from tests.phi.conftest import make_marker_claim

KEY = b"k" * 32


@pytest.fixture
def deidentifier() -> Deidentifier:
    return Deidentifier(KEY)


@pytest.fixture
def protected(protector: PhiProtector) -> dict[str, Any]:
    return protector.protect(make_marker_claim(
        admission_date=date(2026, 6, 14), discharge_date=date(2026, 6, 16),
        source=Source(format=SourceFormat.JSON, file="ZZMARKERFILE.json", locator="line 7",
                      received_date=date(2026, 6, 20))))


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _both(deidentifier: Deidentifier, protected: dict[str, Any], **claim_overrides: Any) -> list[str]:
    """The export of the protected record and of the equivalent canonical claim, as JSON text."""
    canonical = make_marker_claim(**claim_overrides).model_dump(mode="json")
    return [_text(deidentifier.deidentify(protected)), _text(deidentifier.deidentify(canonical))]


# ---- the 18 identifier kinds -----------------------------------------------------------------------------------

def test_1_names_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "ZZMARKERNAME" not in text
        assert "ZZMARKERFIRST" not in text
        assert "DOE, JAMIE" not in text  # provider person names are free text too
    assert "last_name" not in _text(deidentifier.deidentify(protected))


def test_2_geography_below_state_is_removed_and_zip_reduced_to_zip3(deidentifier: Deidentifier,
                                                                     protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "ZZMARKER STREET" not in text
        assert "ZZMARKERCITY" not in text
        assert "99999" not in text
    out = deidentifier.deidentify(protected)
    assert out["patient"]["state"] == "PA"
    assert out["patient"]["zip3"] == "999"


@pytest.mark.parametrize("zip3", ["036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
                                  "878", "879", "884", "890", "893"])
def test_2_restricted_zip3_becomes_000(deidentifier: Deidentifier, zip3: str):
    claim = make_professional_claim(patient=make_person(address=PersonAddress(state="WY", postal_code=f"{zip3}01")))
    assert deidentifier.deidentify(claim.model_dump(mode="json"))["patient"]["zip3"] == "000"


def test_3_all_dates_are_reduced_to_the_year(deidentifier: Deidentifier, protected: dict[str, Any]):
    out = deidentifier.deidentify(protected)
    text = _text(out)
    for fragment in ("2026-06", "1933-03-03", "06-15", "06-14", "06-16", "06-20"):
        assert fragment not in text
    assert (out["service_year_from"], out["admission_year"], out["discharge_year"], out["received_year"]) == (
        2026, 2026, 2026, 2026)
    assert out["lines"][0]["service_year_from"] == 2026
    assert "birth" not in text
    assert out["patient"]["service_after_death"] is True  # died 2026-06-01, served 2026-06-15: a flag, no dates


def test_3_ages_over_89_are_aggregated_as_90_plus(deidentifier: Deidentifier, protected: dict[str, Any]):
    assert deidentifier.deidentify(protected)["patient"]["age"] == "90+"
    assert "1933" not in _text(deidentifier.deidentify(protected))  # no birth year for the 90+ group
    assert (export_age(89), export_age(90), export_age(104), export_age(-1), export_age(None)) == (
        "89", "90+", "90+", None, None)


def test_4_telephone_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "5550001234" not in text
        assert "phone" not in text


def test_5_fax_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["patient"]["fax"] = "5550009999"
    protected["fax_number"] = "5550009999"
    assert "5550009999" not in _text(deidentifier.deidentify(protected))


def test_6_email_addresses_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "zzmarker@example.com" not in text
        assert "email" not in text


def test_7_social_security_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "078051120" not in text
        assert "ssn" not in text


def test_8_medical_record_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "ZZMARKERMRN" not in text
        assert "medical_record" not in text


def test_9_health_plan_beneficiary_numbers_and_their_tokens_are_removed(deidentifier: Deidentifier,
                                                                        protected: dict[str, Any]):
    token = protected["patient"]["member_id"]
    for text in _both(deidentifier, protected):
        assert "ZZMARKER01" not in text
        assert token not in text
        assert "tok:" not in text
        assert "member_id" not in text


def test_10_account_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    for text in _both(deidentifier, protected):
        assert "ZZMARKERACCT" not in text


def test_11_certificate_and_license_numbers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["billing_provider"]["tax_id"] = "ZZLICENSE123"  # a sole proprietor's TIN can be an SSN
    protected["rendering_provider"]["license_number"] = "ZZLICENSE456"
    protected["patient"]["drivers_license"] = "ZZLICENSE789"
    assert "ZZLICENSE" not in _text(deidentifier.deidentify(protected))


def test_12_vehicle_identifiers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["accident_vehicle_vin"] = "1HGZZVIN000000001"
    assert "ZZVIN" not in _text(deidentifier.deidentify(protected))


def test_13_device_identifiers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["lines"][0]["device_udi"] = "(01)ZZDEVICE0001"
    assert "ZZDEVICE" not in _text(deidentifier.deidentify(protected))


def test_14_urls_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["attachment_url"] = "https://zzmarker.example.com/chart/1"
    protected["source"]["file"] = "https://zzmarker.example.com/inbox.json"
    assert "https://" not in _text(deidentifier.deidentify(protected))


def test_15_ip_addresses_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["submitter_ip"] = "203.0.113.77"
    assert "203.0.113.77" not in _text(deidentifier.deidentify(protected))


def test_16_biometric_identifiers_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["patient"]["fingerprint_hash"] = "ZZBIOMETRIC"
    assert "ZZBIOMETRIC" not in _text(deidentifier.deidentify(protected))


def test_17_photographs_are_removed(deidentifier: Deidentifier, protected: dict[str, Any]):
    protected["patient"]["photo"] = "data:image/png;base64,ZZPHOTO"
    assert "ZZPHOTO" not in _text(deidentifier.deidentify(protected))


def test_18_other_unique_identifiers_claim_ids_become_keyed_surrogates(deidentifier: Deidentifier,
                                                                       protected: dict[str, Any]):
    protected["original_claim_id"] = "PCLM0000"
    out = deidentifier.deidentify(protected)
    text = _text(out)
    assert "PCLM000" not in text
    assert "ZZMARKERFILE" not in text  # source file names and locators are dropped
    assert "line 7" not in text
    assert out["claim_key"] == deidentifier.surrogate("PCLM0001")
    assert out["original_claim_key"] == deidentifier.surrogate("PCLM0000")
    assert Deidentifier(b"x" * 32).surrogate("PCLM0001") != out["claim_key"]  # keyed: unlinkable without the key


def test_free_text_and_nested_objects_cannot_ride_along_in_code_fields(deidentifier: Deidentifier,
                                                                       protected: dict[str, Any]):
    protected["remarks"] = "patient ZZFREETEXT called"
    protected["drg_code"] = {"note": "ZZNESTED"}
    text = _text(deidentifier.deidentify(protected))
    assert "ZZFREETEXT" not in text
    assert "ZZNESTED" not in text


def test_provider_npis_codes_and_amounts_are_kept(deidentifier: Deidentifier, protected: dict[str, Any]):
    out = deidentifier.deidentify(protected)
    assert out["billing_provider"]["npi"] == VALID_NPI
    assert out["diagnoses"][0]["code"] == "E119"
    assert out["lines"][0]["procedure_code"] == "99213"
    assert out["total_charge"] == "165.50"
    assert out["patient"]["gender"] == "F"


def test_protected_and_canonical_inputs_give_the_same_export(deidentifier: Deidentifier, protected: dict[str, Any]):
    canonical = make_marker_claim(
        admission_date=date(2026, 6, 14), discharge_date=date(2026, 6, 16),
        source=Source(format=SourceFormat.JSON, file="ZZMARKERFILE.json", locator="line 7",
                      received_date=date(2026, 6, 20))).model_dump(mode="json")
    assert deidentifier.deidentify(canonical) == deidentifier.deidentify(protected)


def test_export_writes_every_record_or_a_located_rejection(tmp_path: Path, deidentifier: Deidentifier,
                                                           protected: dict[str, Any]):
    source = tmp_path / "silver.ndjson"
    source.write_bytes(orjson.dumps(protected) + b"\n\n{not json\n" + orjson.dumps({"claim_id": "ZZ1"}) + b"\n")
    out = tmp_path / "export" / "claims.ndjson"
    summary = export_deidentified(source, out, deidentifier)
    assert (summary.read, summary.written, len(summary.rejections)) == (3, 1, 2)
    assert [r["location"] for r in summary.rejections] == [f"{source}:3", f"{source}:4"]
    assert [r["reason"] for r in summary.rejections] == ["EXPORT_JSON_MALFORMED", "EXPORT_NOT_A_CLAIM"]
    rejects = out.with_name("claims.ndjson.rejects.ndjson").read_text()
    assert "ZZ1" not in rejects
    assert "ZZMARKER" not in out.read_text()
