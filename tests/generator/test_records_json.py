"""The fast writer path (orjson over plain records) yields exactly the canonical claims the model validates."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from libs.generator import Label, claim_json
from libs.generator.labels import LabelKind
from libs.model import Claim


def test_claim_json_reads_back_as_the_validated_claim_for_every_record(defect_heavy_records):
    # Every injector's output goes through both paths: orjson of the record, and model validation of the record.
    for record, _ in defect_heavy_records:
        text = claim_json(record)
        assert Claim.model_validate_json(text) == Claim.model_validate(record)
        assert b":null" not in text  # null fields are omitted, keeping lines compact


def test_amounts_are_exact_decimal_strings():
    record = {"total_charge": Decimal("125.30")}
    assert orjson.loads(claim_json(record)) == {"total_charge": "125.30"}


def test_label_round_trips_and_names_a_bad_kind():
    label = Label(claim_id="SYN1-000000001", kind=LabelKind.FRAUD, rule="FRAUD_UPCODING")
    assert label.to_dict() == {"claim_id": "SYN1-000000001", "kind": "fraud", "rule": "FRAUD_UPCODING"}
    assert Label.from_dict(label.to_dict()) == label
    with pytest.raises(ValueError, match=r"one of defect, fraud, found 'typo'"):
        Label.from_dict({"claim_id": "x", "kind": "typo", "rule": "R"})
