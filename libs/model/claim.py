"""The canonical claim: one shape for X12 837P/837I, FHIR R4, CMS SynPUF, generated and JSON claims.

Why this module exists: every stage (adapters, rules, producer, Spark, warehouse) must agree on one structure, so it is
defined exactly once here; the Spark schema is derived from it and the PHI policy walks its PHI markers.

The model is deliberately *lenient about business rules* (negative amounts, malformed NPIs, unknown codes are all
representable) because judging a claim is the validation rules' job, which report reason codes. It is strict about
*types* (dates are dates, amounts are Decimal, codes are strings so leading zeros survive) and about what the lake can
hold: every claim the model accepts fits the Spark schema derived from it (libs.lake.schema), so an amount beyond
decimal(18,4), a count beyond 64 bits or an amount in text with spaces around it is refused here, with its path,
instead of becoming a null or an unreadable row in the lake (tests/streaming/test_validation_parity.py).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError


class ClaimType(StrEnum):
    """837P is professional (CMS-1500), 837I is institutional (UB-04)."""

    PROFESSIONAL = "professional"
    INSTITUTIONAL = "institutional"


class FrequencyCode(StrEnum):
    """Claim frequency (CLM05-3 / last digit of the type of bill) values with pipeline semantics."""

    ORIGINAL = "1"
    REPLACEMENT = "7"
    VOID = "8"


class DiagnosisSystem(StrEnum):
    """Diagnosis code system; in X12 the HI qualifier decides it (ABK/ABF/ABJ/ABN/APR vs BK/BF/BJ/BN/PR)."""

    ICD10CM = "ICD-10-CM"
    ICD9CM = "ICD-9-CM"


class ProcedureSystem(StrEnum):
    """Procedure code system of a service line (HC = HCPCS, which includes CPT as Level I)."""

    HCPCS = "HCPCS"
    ICD10PCS = "ICD-10-PCS"
    ICD9PCS = "ICD-9-CM-PROC"


class SourceFormat(StrEnum):
    """Where a canonical claim came from."""

    X12_837P = "x12-837p"
    X12_837I = "x12-837i"
    FHIR_CLAIM = "fhir-claim"
    FHIR_EOB = "fhir-eob"
    SYNPUF_CARRIER = "synpuf-carrier"
    SYNPUF_INPATIENT = "synpuf-inpatient"
    SYNPUF_OUTPATIENT = "synpuf-outpatient"
    JSON = "json"
    SYNTHETIC = "synthetic"


class PhiKind(StrEnum):
    """The kind of protected health information a field holds.

    Named after the HIPAA Safe Harbor identifier categories (45 CFR 164.514(b)(2)(i)) so that masking, tokenization
    and de-identified export can decide per kind without a second list of field names.
    """

    NAME = "name"
    ADDRESS = "address"  # street, city, county: geographic subdivisions smaller than a state
    POSTAL_CODE = "postal_code"
    DATE = "date"  # birth, death dates (service dates are not marked: they are the claim's business facts)
    PHONE = "phone"
    SSN = "ssn"
    MEMBER_ID = "member_id"  # health plan beneficiary number
    ACCOUNT_NUMBER = "account_number"
    MEDICAL_RECORD_NUMBER = "medical_record_number"
    EMAIL = "email"


PHI_MARKER = "phi"


def Phi(kind: PhiKind, description: str) -> Any:  # noqa: N802  (reads like a type annotation at use sites)
    """A pydantic Field marked as PHI of `kind`; `phi_fields()` and the PHI policy find it by this marker."""
    return Field(default=None, description=description, json_schema_extra={PHI_MARKER: kind.value})


AMOUNT_LIMIT = Decimal(10) ** 14  # decimal(18,4) in the lake: 14 integer digits
INT64_MAX = 2**63 - 1


def _decimal(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An amount from a Decimal, an int, a float or its text; the text must be just the number.

    Converted here so that strict parsing (the wire, libs.phi.view) still takes amounts as JSON strings or numbers,
    and refused here when padded with spaces, which the lake's JSON reader would not read.
    """
    if isinstance(value, str):
        if value != value.strip():
            msg = "expected a decimal number without surrounding spaces"
            raise ValueError(msg)
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise PydanticCustomError("decimal_parsing", "Input should be a valid decimal") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        value = Decimal(str(value))
    return handler(value)


Amount = Annotated[Decimal, WrapValidator(_decimal), Field(gt=-AMOUNT_LIMIT, lt=AMOUNT_LIMIT)]
Count = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, populate_by_name=True)


class Address(_Model):
    """A postal address. On people it is PHI; on providers it is public directory data."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None


class PersonAddress(_Model):
    """A patient's or subscriber's address: every part below the state is PHI."""

    line1: str | None = Phi(PhiKind.ADDRESS, "Street line 1 (N301).")
    line2: str | None = Phi(PhiKind.ADDRESS, "Street line 2 (N302).")
    city: str | None = Phi(PhiKind.ADDRESS, "City (N401).")
    state: str | None = Field(default=None, description="State code (N402); Safe Harbor allows the state.")
    postal_code: str | None = Phi(PhiKind.POSTAL_CODE, "ZIP or ZIP+4 (N403).")


class Person(_Model):
    """Subscriber or patient. Every identifying field is marked PHI; gender and relationship are not identifiers."""

    member_id: str | None = Phi(PhiKind.MEMBER_ID, "Health plan member / beneficiary ID (NM109 of IL).")
    last_name: str | None = Phi(PhiKind.NAME, "Family name (NM103).")
    first_name: str | None = Phi(PhiKind.NAME, "Given name (NM104).")
    middle_name: str | None = Phi(PhiKind.NAME, "Middle name or initial (NM105).")
    birth_date: date | None = Phi(PhiKind.DATE, "Date of birth (DMG02).")
    death_date: date | None = Phi(PhiKind.DATE, "Date of death (PAT06 or the SynPUF beneficiary file).")
    ssn: str | None = Phi(PhiKind.SSN, "Social Security number (REF*SY).")
    phone: str | None = Phi(PhiKind.PHONE, "Telephone number (PER).")
    email: str | None = Phi(PhiKind.EMAIL, "E-mail address.")
    account_number: str | None = Phi(PhiKind.ACCOUNT_NUMBER, "Patient account number at the provider.")
    medical_record_number: str | None = Phi(PhiKind.MEDICAL_RECORD_NUMBER, "Medical record number (REF*EA).")
    address: PersonAddress | None = None
    gender: str | None = Field(default=None, description="Administrative gender code: M, F or U (DMG03).")
    relationship_code: str | None = Field(
        default=None, description="Patient's relationship to the subscriber (SBR02 / PAT01); '18' is self."
    )


class Provider(_Model):
    """A provider in one role (billing, rendering, attending, referring, facility): public NPPES data, not PHI."""

    npi: str | None = Field(default=None, description="National Provider Identifier, 10 digits.")
    taxonomy: str | None = Field(default=None, description="Health care provider taxonomy code (PRV03).")
    name: str | None = Field(default=None, description="Organisation name or 'LAST, FIRST' of a person.")
    entity_type: str | None = Field(default=None, description="1 person, 2 organisation (NM102).")
    tax_id: str | None = Field(default=None, description="EIN or other tax identifier (REF*EI).")
    specialty: str | None = Field(default=None, description="Specialty label, when the source carries one.")
    address: Address | None = None


class Payer(_Model):
    """The payer the claim is sent to."""

    payer_id: str | None = Field(default=None, description="Payer identifier (NM109 of PR).")
    name: str | None = Field(default=None, description="Payer name (NM103 of PR).")


class Diagnosis(_Model):
    """One diagnosis in claim order; the first is the principal diagnosis."""

    code: str = Field(description="Diagnosis code without the dot, e.g. 'E119' or '8540'.")
    system: DiagnosisSystem = Field(description="ICD-10-CM or ICD-9-CM, decided by the source qualifier.")
    present_on_admission: str | None = Field(default=None, description="POA indicator Y, N, U, W or 1.")
    qualifier: str | None = Field(default=None, description="Source qualifier, e.g. ABK, ABF, BK, BF.")


class ServiceLine(_Model):
    """One service line (LX loop, FHIR item, SynPUF line slot)."""

    line_number: Count = Field(description="1-based line number in the claim.")
    procedure_code: str | None = Field(default=None, description="HCPCS/CPT code, e.g. '99213' or '0001U'.")
    procedure_system: ProcedureSystem | None = Field(default=None, description="Code system of procedure_code.")
    modifiers: list[str] = Field(default_factory=list, description="Up to four procedure modifiers.")
    revenue_code: str | None = Field(default=None, description="Institutional revenue code, 4 digits ('0305').")
    units: Amount | None = Field(default=None, description="Service units (SV104 / SV205).")
    unit_type: str | None = Field(default=None, description="Unit basis: UN units, MJ minutes, DA days.")
    charge: Amount | None = Field(default=None, description="Line billed charge (SV102 / SV203).")
    allowed_amount: Amount | None = Field(default=None, description="Allowed amount, where the source has it.")
    paid_amount: Amount | None = Field(default=None, description="Paid amount, where the source has it.")
    service_date_from: date | None = Field(default=None, description="Line service date (DTP*472).")
    service_date_to: date | None = Field(default=None, description="Line service end date.")
    place_of_service: str | None = Field(default=None, description="Line place of service, when it overrides.")
    diagnosis_pointers: list[Count] = Field(default_factory=list, description="1-based indexes into diagnoses.")
    rendering_provider: Provider | None = None
    ndc: str | None = Field(default=None, description="National Drug Code for drug lines.")


class Source(_Model):
    """Where a claim came from, precisely enough to find the record again."""

    format: SourceFormat
    file: str | None = Field(default=None, description="Input file name (or 'kafka:<topic>').")
    locator: str | None = Field(default=None, description="Record position: 'ST 0021 / CLM 2', 'line 14', ...")
    received_date: date | None = Field(default=None, description="When the payer received the claim.")


class Claim(_Model):
    """A medical claim: header, parties, diagnoses and service lines."""

    claim_id: str = Field(min_length=1, description="Claim identifier (CLM01, FHIR identifier, SynPUF CLM_ID).")
    claim_type: ClaimType
    frequency_code: str = Field(default=FrequencyCode.ORIGINAL.value, description="1 original, 7 replace, 8 void.")
    original_claim_id: str | None = Field(default=None, description="Claim replaced or voided (REF*F8).")
    billing_provider: Provider | None = None
    rendering_provider: Provider | None = None
    attending_provider: Provider | None = None
    referring_provider: Provider | None = None
    facility: Provider | None = None
    payer: Payer | None = None
    subscriber: Person | None = None
    patient: Person | None = None
    place_of_service: str | None = Field(default=None, description="Professional: CMS place of service code.")
    type_of_bill: str | None = Field(default=None, description="Institutional: 3-digit type of bill ('131').")
    service_date_from: date | None = Field(default=None, description="Statement / first service date.")
    service_date_to: date | None = Field(default=None, description="Statement / last service date.")
    admission_date: date | None = Field(default=None, description="Inpatient admission date.")
    discharge_date: date | None = Field(default=None, description="Inpatient discharge date.")
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    lines: list[ServiceLine] = Field(default_factory=list)
    total_charge: Amount | None = Field(default=None, description="Header billed total (CLM02).")
    allowed_amount: Amount | None = Field(default=None, description="Header allowed, where present.")
    paid_amount: Amount | None = Field(default=None, description="Header paid, where present.")
    drg_code: str | None = Field(default=None, description="Diagnosis-related group, institutional inpatient.")
    source: Source

    def member_key(self) -> str | None:
        """The identity rules use for a member: the patient's member ID, else the subscriber's."""
        for person in (self.patient, self.subscriber):
            if person is not None and person.member_id:
                return person.member_id
        return None


class Rejection(_Model):
    """A record an adapter could not turn into a claim. The message never carries PHI."""

    source: Source
    location: str = Field(description="Where in the input: 'line 12', 'segment 37 (CLM)', 'entry 3'.")
    reason: str = Field(description="Stable reason code, e.g. X12_TRUNCATED, JSON_MALFORMED.")
    message: str = Field(description="What was expected and what was found, without PHI.")
