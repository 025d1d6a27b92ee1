"""Factories for realistic, valid, synthetic claims; tests override only the fields they are about."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from libs.model import (
    Claim,
    ClaimType,
    Diagnosis,
    DiagnosisSystem,
    Payer,
    Person,
    PersonAddress,
    ProcedureSystem,
    Provider,
    ServiceLine,
    Source,
    SourceFormat,
)

AS_OF = date(2026, 11, 30)
SERVICE_DATE = date(2026, 6, 15)
VALID_NPI = "1234567893"  # passes the Luhn check with the 80840 prefix
VALID_NPI_2 = "1245319599"


def make_person(**overrides: Any) -> Person:
    """A synthetic member: every PHI field filled so that PHI handling can be observed."""
    values: dict[str, Any] = {
        "member_id": "SYN000123456",
        "last_name": "TESTPATIENT",
        "first_name": "ALEX",
        "middle_name": "Q",
        "birth_date": date(1958, 3, 14),
        "phone": "5555550100",
        "address": PersonAddress(line1="1 SYNTHETIC WAY", city="SAMPLETOWN", state="PA", postal_code="17111"),
        "gender": "F",
        "relationship_code": "18",
    }
    values.update(overrides)
    return Person(**values)


def make_professional_claim(**overrides: Any) -> Claim:
    """A valid 837P-shaped office visit with two lines."""
    values: dict[str, Any] = {
        "claim_id": "PCLM0001",
        "claim_type": ClaimType.PROFESSIONAL,
        "frequency_code": "1",
        "billing_provider": Provider(npi=VALID_NPI, taxonomy="207Q00000X", name="SYNTHETIC FAMILY CLINIC",
                                     entity_type="2"),
        "rendering_provider": Provider(npi=VALID_NPI_2, taxonomy="207Q00000X", name="DOE, JAMIE", entity_type="1"),
        "payer": Payer(payer_id="SYNPAYER1", name="SYNTHETIC HEALTH PLAN"),
        "subscriber": make_person(),
        "patient": make_person(),
        "place_of_service": "11",
        "service_date_from": SERVICE_DATE,
        "service_date_to": SERVICE_DATE,
        "diagnoses": [
            Diagnosis(code="E119", system=DiagnosisSystem.ICD10CM, qualifier="ABK"),
            Diagnosis(code="I10", system=DiagnosisSystem.ICD10CM, qualifier="ABF"),
        ],
        "lines": [
            ServiceLine(line_number=1, procedure_code="99213", procedure_system=ProcedureSystem.HCPCS,
                        units=Decimal("1"), unit_type="UN", charge=Decimal("125.00"),
                        service_date_from=SERVICE_DATE, service_date_to=SERVICE_DATE, diagnosis_pointers=[1, 2]),
            ServiceLine(line_number=2, procedure_code="83036", procedure_system=ProcedureSystem.HCPCS,
                        units=Decimal("1"), unit_type="UN", charge=Decimal("40.50"),
                        service_date_from=SERVICE_DATE, service_date_to=SERVICE_DATE, diagnosis_pointers=[1]),
        ],
        "total_charge": Decimal("165.50"),
        "source": Source(format=SourceFormat.SYNTHETIC, file="factory", locator="claim 1"),
    }
    values.update(overrides)
    return Claim(**values)


def make_institutional_claim(**overrides: Any) -> Claim:
    """A valid 837I-shaped outpatient hospital claim (type of bill 131) with two revenue lines."""
    values: dict[str, Any] = {
        "claim_id": "ICLM0001",
        "claim_type": ClaimType.INSTITUTIONAL,
        "frequency_code": "1",
        "billing_provider": Provider(npi=VALID_NPI, taxonomy="282N00000X", name="SYNTHETIC GENERAL HOSPITAL",
                                     entity_type="2"),
        "attending_provider": Provider(npi=VALID_NPI_2, name="DOE, JAMIE", entity_type="1"),
        "payer": Payer(payer_id="SYNPAYER1", name="SYNTHETIC HEALTH PLAN"),
        "subscriber": make_person(),
        "patient": make_person(),
        "type_of_bill": "131",
        "service_date_from": SERVICE_DATE,
        "service_date_to": SERVICE_DATE,
        "diagnoses": [Diagnosis(code="R079", system=DiagnosisSystem.ICD10CM, qualifier="ABK")],
        "lines": [
            ServiceLine(line_number=1, revenue_code="0305", procedure_code="85025",
                        procedure_system=ProcedureSystem.HCPCS, units=Decimal("1"), unit_type="UN",
                        charge=Decimal("13.39"), service_date_from=SERVICE_DATE, service_date_to=SERVICE_DATE),
            ServiceLine(line_number=2, revenue_code="0730", procedure_code="93005",
                        procedure_system=ProcedureSystem.HCPCS, units=Decimal("3"), unit_type="UN",
                        charge=Decimal("76.54"), service_date_from=SERVICE_DATE, service_date_to=SERVICE_DATE),
        ],
        "total_charge": Decimal("89.93"),
        "source": Source(format=SourceFormat.SYNTHETIC, file="factory", locator="claim 2"),
    }
    values.update(overrides)
    return Claim(**values)
