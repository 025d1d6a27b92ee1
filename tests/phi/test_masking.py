"""Masked views outside production: names -> initials, dates -> year, ZIP -> 3 digits, identifiers -> last four."""

from __future__ import annotations

from datetime import date

import pytest

from libs.model import PhiKind
from libs.phi.masking import mask_record, mask_revealed, mask_value, masked_view
from libs.settings import Environment, SecuritySettings
from tests.phi.conftest import make_marker_claim


@pytest.mark.parametrize(("kind", "value", "masked"), [
    (PhiKind.NAME, "ZZMARKERNAME", "Z."),
    (PhiKind.NAME, "MARY ANN", "M.A."),
    (PhiKind.NAME, "O'BRIEN-SMITH", "O.B.S."),
    (PhiKind.DATE, "1933-03-03", "1933"),
    (PhiKind.DATE, date(1933, 3, 3), "1933"),
    (PhiKind.DATE, "03/03/1933", "***"),
    (PhiKind.POSTAL_CODE, "17111-2222", "171"),
    (PhiKind.MEMBER_ID, "SYN000123456", "****3456"),
    (PhiKind.SSN, "078051120", "****1120"),
    (PhiKind.PHONE, "5550001234", "****1234"),
    (PhiKind.ACCOUNT_NUMBER, "ACC1", "****"),
    (PhiKind.MEDICAL_RECORD_NUMBER, "MRN778899", "****8899"),
    (PhiKind.ADDRESS, "ZZMARKER STREET", "***"),
    (PhiKind.NAME, None, None),
])
def test_mask_rules_per_phi_kind(kind: PhiKind, value: object, masked: object):
    assert mask_value(kind, value) == masked


def test_tokens_and_ciphertext_are_left_as_they_are():
    assert mask_value(PhiKind.MEMBER_ID, "tok:v1:1:abcdef") == "tok:v1:1:abcdef"
    assert mask_value(PhiKind.NAME, "enc:v1:1:abc:xyz") == "enc:v1:1:abc:xyz"


def test_masked_claim_keeps_non_phi_and_masks_every_phi_leaf():
    record = make_marker_claim().model_dump(mode="json")
    masked = mask_record(record)
    patient = masked["patient"]
    assert patient["last_name"] == "Z."
    assert patient["birth_date"] == "1933"
    assert patient["address"]["postal_code"] == "999"
    assert patient["address"]["line1"] == "***"
    assert patient["member_id"] == "****ER01"
    assert patient["address"]["state"] == "PA"
    assert masked["billing_provider"] == record["billing_provider"]
    assert record["patient"]["last_name"] == "ZZMARKERNAME"  # the input is not modified
    assert "ZZMARKERNAME" not in str(masked)


def test_masked_view_masks_outside_production_only():
    record = make_marker_claim().model_dump(mode="json")
    assert masked_view(record, SecuritySettings(environment=Environment.DEV))["patient"]["last_name"] == "Z."
    assert masked_view(record, SecuritySettings(environment=Environment.PROD))["patient"]["last_name"] == "ZZMARKERNAME"


def test_revealed_values_are_masked_by_their_path():
    assert mask_revealed({"patient.last_name": "ZZMARKERNAME", "subscriber.birth_date": "1933-03-03",
                          "patient.address.postal_code": "99999"}) == {
        "patient.last_name": "Z.", "subscriber.birth_date": "1933", "patient.address.postal_code": "999"}
