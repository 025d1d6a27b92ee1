"""The canonical model: JSON round-trips unchanged, PHI is marked in the model itself."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from libs.model import Claim, PhiKind, phi_fields
from tests.factories import make_institutional_claim, make_professional_claim


@pytest.mark.parametrize("factory", [make_professional_claim, make_institutional_claim])
def test_json_round_trip_is_lossless(factory):
    claim = factory()
    text = claim.model_dump_json()
    again = Claim.model_validate_json(text)
    assert again == claim
    assert again.model_dump_json() == text


def test_amounts_stay_exact_decimals_and_codes_keep_leading_zeros():
    claim = make_institutional_claim()
    data = orjson.loads(claim.model_dump_json())
    assert data["total_charge"] == "89.93"
    assert data["lines"][0]["revenue_code"] == "0305"
    assert Claim.model_validate(data).lines[1].charge == Decimal("76.54")


def test_phi_fields_are_found_by_marker_not_by_name():
    paths = {f.path: f.kind for f in phi_fields()}
    assert paths["patient.birth_date"] is PhiKind.DATE
    assert paths["subscriber.member_id"] is PhiKind.MEMBER_ID
    assert paths["patient.address.postal_code"] is PhiKind.POSTAL_CODE
    # Provider data and administrative codes are not PHI.
    assert not any(p.startswith("billing_provider") for p in paths)
    assert "patient.gender" not in paths
    assert "patient.address.state" not in paths
