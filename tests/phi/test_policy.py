"""The PHI policy file gives exactly one action to every PHI field of the claim model, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.model import phi_fields
from libs.phi.errors import PolicyError
from libs.phi.policy import PhiAction, load_policy, parse_policy
from libs.settings import SecuritySettings

POLICY_FILE = SecuritySettings().phi_policy_file


def _raw() -> dict:
    return json.loads(POLICY_FILE.read_text(encoding="utf-8"))


def test_shipped_policy_gives_every_phi_field_exactly_one_action_and_no_unknown_paths():
    policy = load_policy(POLICY_FILE)
    model_paths = [f.path for f in phi_fields()]
    assert sorted(policy.paths()) == sorted(model_paths)
    assert len(policy.paths()) == len(set(policy.paths()))
    assert set(_raw()["fields"]) == set(model_paths)
    assert all(isinstance(rule.action, PhiAction) for rule in policy.fields)


def test_shipped_policy_keeps_member_ids_joinable_and_drops_ssn():
    policy = load_policy(POLICY_FILE)
    assert policy.field("patient.member_id").action is PhiAction.TOKENIZE
    assert policy.field("patient.ssn").action is PhiAction.DROP
    assert policy.field("patient.birth_date").action is PhiAction.ENCRYPT


def test_policy_missing_a_phi_field_is_rejected_naming_the_field():
    raw = _raw()
    del raw["fields"]["patient.birth_date"]
    with pytest.raises(PolicyError, match=r"missing \['patient.birth_date'\]"):
        parse_policy(json.dumps(raw), "test-policy")


def test_policy_with_an_unknown_path_is_rejected_naming_the_path():
    raw = _raw()
    raw["fields"]["patient.shoe_size"] = {"action": "drop", "why": "not a field"}
    with pytest.raises(PolicyError, match=r"unknown \['patient.shoe_size'\]"):
        parse_policy(json.dumps(raw), "test-policy")


def test_policy_stating_a_field_twice_is_rejected_instead_of_keeping_the_last():
    text = POLICY_FILE.read_text(encoding="utf-8").replace(
        '"patient.ssn": {', '"patient.ssn": {"action": "encrypt", "why": "dup"},\n    "patient.ssn": {', 1)
    with pytest.raises(PolicyError, match=r"duplicate key 'patient\.ssn'"):
        parse_policy(text, "test-policy")


def test_policy_with_an_unknown_action_is_rejected():
    raw = _raw()
    raw["fields"]["patient.ssn"]["action"] = "hash"
    with pytest.raises(PolicyError, match=r"fields\.patient\.ssn\.action"):
        parse_policy(json.dumps(raw), "test-policy")


def test_role_field_patterns_decide_what_a_role_may_reveal():
    policy = load_policy(POLICY_FILE)
    assert policy.role_may_reveal("privacy-officer", "patient.email")
    assert policy.role_may_reveal("phi-reader", "patient.last_name")
    assert policy.role_may_reveal("phi-reader", "subscriber.address.postal_code")
    assert not policy.role_may_reveal("phi-reader", "patient.email")
    assert not policy.role_may_reveal("analyst", "patient.last_name")


def test_unreadable_policy_file_is_reported_with_its_path(tmp_path: Path):
    with pytest.raises(PolicyError, match="cannot read the PHI policy"):
        load_policy(tmp_path / "absent.json")
