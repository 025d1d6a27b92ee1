"""The canonical claim model and its PHI markers."""

from libs.model.claim import (
    Address,
    Claim,
    ClaimType,
    Diagnosis,
    DiagnosisSystem,
    FrequencyCode,
    Payer,
    Person,
    PersonAddress,
    PhiKind,
    ProcedureSystem,
    Provider,
    Rejection,
    ServiceLine,
    Source,
    SourceFormat,
)
from libs.model.phi import PhiField, phi_fields

__all__ = [
    "Address",
    "Claim",
    "ClaimType",
    "Diagnosis",
    "DiagnosisSystem",
    "FrequencyCode",
    "Payer",
    "Person",
    "PersonAddress",
    "PhiField",
    "PhiKind",
    "ProcedureSystem",
    "Provider",
    "Rejection",
    "ServiceLine",
    "Source",
    "SourceFormat",
    "phi_fields",
]
