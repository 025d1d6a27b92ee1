"""Fixtures for the PHI tests: settings pointing keys and audit log into a temporary directory, and a claim whose
PHI fields hold marker values that must never appear in protected output or logs."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from libs.model import Claim, PersonAddress
from libs.phi.protector import PhiProtector
from libs.settings import Settings, load_settings
from tests.factories import make_person, make_professional_claim

MARKERS = ("ZZMARKER", "zzmarker", "1933-03-03", "19330303", "03/03/1933", "5550001234", "555-000-1234", "99999",
           "078051120", "078-05-1120")


def make_marker_claim(**overrides: Any) -> Claim:
    """A professional claim whose every PHI field holds a recognisable marker value."""

    def person() -> Any:
        return make_person(
            member_id="ZZMARKER01", last_name="ZZMARKERNAME", first_name="ZZMARKERFIRST",
            middle_name="ZZMARKERMIDDLE", birth_date=date(1933, 3, 3), death_date=date(2026, 6, 1),
            ssn="078051120", phone="5550001234", email="zzmarker@example.com", account_number="ZZMARKERACCT",
            medical_record_number="ZZMARKERMRN",
            address=PersonAddress(line1="ZZMARKER STREET", line2="ZZMARKER APT 1", city="ZZMARKERCITY",
                                  state="PA", postal_code="99999"),
        )

    values: dict[str, Any] = {"subscriber": person(), "patient": person()}
    values.update(overrides)
    return make_professional_claim(**values)


def phi_settings(tmp_path: Path, **security: Any) -> Settings:
    """Settings whose keyring and audit log live under `tmp_path`."""
    values: dict[str, Any] = {"local_key_file": tmp_path / "keys" / "keyring.json",
                              "audit_log": tmp_path / "audit" / "audit.jsonl"}
    values.update(security)
    return load_settings(security=values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return phi_settings(tmp_path)


@pytest.fixture
def protector(settings: Settings) -> PhiProtector:
    return PhiProtector.from_settings(settings)
