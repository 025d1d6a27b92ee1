"""FHIR R4 Claim / ExplanationOfBenefit -> canonical claim: the field mapping and reference resolution.

Why a module of its own: `fhir` deals with documents (JSON, Bundles, NDJSON) and turns failures into rejections; this
module knows what each FHIR element means for a claim. It receives resources already validated by fhir.resources and
raises MappingError (with a reason code) for what cannot be represented.

Mapping notes:
- claim_id: the identifier typed 'uc' (CARIN unique claim ID), else the first identifier, else the resource id.
- claim_type: type code 'professional' or 'institutional'; pharmacy, oral and vision claims are rejected.
- Providers: Claim.provider is the billing provider; careTeam roles rendering/performing/primary, attending and
  referring fill the other roles. A reference is resolved in `contained`, then in the enclosing Bundle ('Type/id',
  fullUrl, or an absolute URL ending in Type/id); NPIs come from identifiers with system us-npi. An unresolvable
  reference still yields its logical identifier and display.
- Patient: the referenced Patient (names, birth date, gender, address, identifiers typed MB/um as member ID, MR, SS);
  without a member ID of its own, the focal Coverage's subscriberId when the patient is the subscriber.
- total_charge is what the file says (Claim.total, EOB total 'submitted'); it is never recomputed from lines, because
  EOB lines may carry negative adjustments that the header total already nets. 'eligible'/'allowed' -> allowed,
  'benefit'/'paid'/'paidtoprovider' -> paid, at header and line level.
- Line charge: item.net, else unitPrice x quantity x factor, else the line's 'submitted' adjudication.
- Header place of service: supportingInfo 'placeofservice', else the first line's location; a line keeps its own only
  when it differs. Type of bill from supportingInfo 'typeofbill' ('0111' -> '111').
- Partial FHIR dates ('1950', '2020-08') cannot be represented by the canonical model and are left empty.
- Frequency: the last digit of the type of bill when there is one; else '8' (void) for a cancelled resource; else '7'
  (replacement) when `related` names a prior / replaced claim; else '1'.
- CMS Blue Button 2.0 / BFD EOBs: `http://hl7.org/fhir/sid/icd-10` codings are ICD-10-CM (that is how CMS labels
  them); amounts are recognised by their CMS variable codes (rev_cntr_tot_chrg_amt, line_sbmtd_chrg_amt,
  nch_carr_clm_sbmtd_chrg_amt, ...), which take precedence over generic categories that CMS puts on several entries
  (an outpatient line has three 'submitted' adjudications: rate, total charge, payment); the type of bill is composed
  from the facility-type, service-classification and frequency codes CMS sends separately; the revenue code 0001
  line (UB-04 total of all lines) is not a service line. The principal diagnosis (type 'principal') comes first.
  Element repairs and these conversions are reported through the `note` callback (path, message).
Messages never contain values from the file other than code-system URIs and FHIR type codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from libs.adapters.common import date_or_none, describe_validation_error
from libs.adapters.fhir_lenient import PLACEHOLDER_SYSTEM, is_placeholder_concept
from libs.model import (
    Claim,
    ClaimType,
    Diagnosis,
    DiagnosisSystem,
    FrequencyCode,
    Payer,
    Person,
    PersonAddress,
    ProcedureSystem,
    Provider,
    ServiceLine,
    Source,
)

# fhir.resources models declare their fields with generated alias types (abc.MoneyType, ...), which type checkers
# cannot follow; values read from them are therefore handled as `Any` inside this module.
FhirObject = Any


class FhirRejectionReason(StrEnum):
    """Why a FHIR record did not become a claim."""

    MALFORMED_JSON = "FHIR_MALFORMED_JSON"  # the document or NDJSON line is not JSON
    NOT_A_RESOURCE = "FHIR_NOT_A_RESOURCE"  # JSON, but not an object with a resourceType
    INVALID_RESOURCE = "FHIR_INVALID_RESOURCE"  # fails the FHIR R4 structure (or a referenced resource does)
    UNSUPPORTED_RESOURCE = "FHIR_UNSUPPORTED_RESOURCE"  # a resource type that is neither a claim nor claim context
    UNSUPPORTED_CLAIM_TYPE = "FHIR_UNSUPPORTED_CLAIM_TYPE"  # pharmacy, oral, vision, or no professional/institutional
    MISSING_CLAIM_ID = "FHIR_MISSING_CLAIM_ID"  # neither identifier nor id
    UNSUPPORTED_DIAGNOSIS = "FHIR_UNSUPPORTED_DIAGNOSIS"  # no ICD-10-CM / ICD-9-CM coding, or a Condition reference
    UNMAPPABLE = "FHIR_UNMAPPABLE"  # mapped values do not form a canonical claim


NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
EIN_SYSTEMS = frozenset({"urn:oid:2.16.840.1.113883.4.4", "http://hl7.org/fhir/sid/us-ein"})
NUCC_TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"
# The Blue Button 2.0 API labels ICD-10-CM diagnoses with the base ICD-10 system URI.
ICD10CM_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90",
                             "http://hl7.org/fhir/sid/icd-10"})
ICD9CM_SYSTEMS = frozenset(
    {
        "http://hl7.org/fhir/sid/icd-9-cm",
        "http://hl7.org/fhir/sid/icd-9-cm/diagnosis",
        "urn:oid:2.16.840.1.113883.6.103",
    }
)
HCPCS_SYSTEMS = frozenset(
    {
        "http://www.ama-assn.org/go/cpt",  # CPT is HCPCS Level I
        "urn:oid:2.16.840.1.113883.6.12",
        "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
        "http://www.cms.gov/medicare/coding/hcpcsreleasecodesets",
        "https://www.cms.gov/medicare/coding/hcpcsreleasecodesets",
        "urn:oid:2.16.840.1.113883.6.285",
    }
)
ICD10PCS_SYSTEMS = frozenset({"http://www.cms.gov/medicare/coding/icd10", "http://hl7.org/fhir/sid/icd-10-pcs"})
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"

# Identifier type codes (v2-0203 and CARIN C4BBIdentifierType) that mark a patient's plan member number.
MEMBER_ID_TYPES = ("MB", "um", "MC", "MA")
CLAIM_ID_TYPE = "uc"
GENDER_CODES = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
# Coverage.relationship (subscriber-relationship) -> X12 individual relationship code (SBR02 / PAT01).
RELATIONSHIP_CODES = {"self": "18", "spouse": "01", "child": "19", "parent": "32", "common": "53", "other": "G8"}
RENDERING_ROLES = ("rendering", "performing", "primary")
RELATED_REPLACES = frozenset({"prior", "replaces", "replaced"})
ALLOWED_CATEGORIES = ("eligible", "allowed")
PAID_CATEGORIES = ("benefit", "paid", "paidtoprovider")
# CMS (Blue Button / BFD) variable codes of adjudication and total entries -> canonical amount.
CMS_VARIABLES = "https://bluebutton.cms.gov/resources/variables/"
CMS_AMOUNT_VARIABLES = {
    "rev_cntr_tot_chrg_amt": "submitted", "line_sbmtd_chrg_amt": "submitted", "clm_tot_chrg_amt": "submitted",
    "nch_carr_clm_sbmtd_chrg_amt": "submitted", "line_alowd_chrg_amt": "allowed", "nch_carr_clm_alowd_amt": "allowed",
    "line_nch_pmt_amt": "paid", "rev_cntr_pmt_amt_amt": "paid",
}
# Generic adjudication categories that, on a CMS entry, do not name what the amount is (the CMS variable does).
CMS_FACILITY_TYPE = CMS_VARIABLES + "clm_fac_type_cd"
CMS_SERVICE_CLASSIFICATION = CMS_VARIABLES + "clm_srvc_clsfctn_type_cd"
CMS_FREQUENCY = CMS_VARIABLES + "clm_freq_cd"
UB04_TOTAL_REVENUE_CODE = "0001"  # the UB-04 'total charge' line: the sum of the other lines, not a service
Note = Callable[[str, str], None]


def _ignore(_path: str, _message: str) -> None:
    """The default `note`: conversions are not reported."""


class InvalidReferenceError(Exception):
    """A resolvable reference points at a Bundle entry that is not valid FHIR."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"referenced {where} is not valid FHIR R4: {detail}")


class MappingError(Exception):
    """A validated resource that cannot be represented as a canonical claim."""

    def __init__(self, reason: FhirRejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---------------------------------------------------------------------------------------------- reference lookup


class BundleIndex:
    """Bundle entries by 'Type/id' and fullUrl, validated lazily when a claim references them."""

    def __init__(self, raw: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self._raw = raw
        self._parsed: dict[int, FhirObject] = {}

    @classmethod
    def build(cls, entries: list[Any]) -> BundleIndex:
        raw: dict[str, tuple[int, dict[str, Any]]] = {}
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                continue
            resource = entry["resource"]
            if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
                raw[f"{resource['resourceType']}/{resource['id']}"] = (number, resource)
            if isinstance(entry.get("fullUrl"), str):
                raw[entry["fullUrl"]] = (number, resource)
        return cls(raw)

    def lookup(self, reference: str) -> FhirObject | None:
        found = self._raw.get(reference)
        if found is None and "/" in reference:
            # An absolute URL 'https://server/fhir/Patient/1' matches an entry whose fullUrl differs only by base.
            found = self._raw.get("/".join(reference.rstrip("/").split("/")[-2:]))
        if found is None:
            return None
        number, raw = found
        if number not in self._parsed:
            try:
                self._parsed[number] = get_fhir_model_class(str(raw["resourceType"])).model_validate(raw)
            except ValidationError as exc:
                raise InvalidReferenceError(f"entry {number}", describe_validation_error(exc)) from exc
            except Exception as exc:
                raise InvalidReferenceError(f"entry {number}", type(exc).__name__) from exc
        return self._parsed[number]


class Resolver:
    """Resolves references against the resource's contained resources, then the enclosing Bundle."""

    def __init__(self, resource: FhirObject, bundle: BundleIndex) -> None:
        self._contained = {item.id: item for item in _items(resource.contained) if item.id}
        self._bundle = bundle

    def resolve(self, reference: FhirObject | None) -> FhirObject | None:
        target = getattr(reference, "reference", None) if reference is not None else None
        if not target:
            return None
        if target.startswith("#"):
            return self._contained.get(target[1:])
        return self._bundle.lookup(target)


# ------------------------------------------------------------------------------------------------------ mapping


def map_resource(resource: FhirObject, source: Source, resolver: Resolver, note: Note | None = None) -> Claim:
    """The canonical claim for a validated Claim / ExplanationOfBenefit; raises MappingError or
    InvalidReferenceError when it cannot be one, and pydantic ValidationError if mapped values break the model.

    `note(path, message)` hears of every element read by a documented convention rather than by R4 (CMS quirks)."""
    note = note or _ignore
    claim_type = _claim_type(resource)
    claim_id = _claim_id(resource)
    diagnoses, sequence_to_position = _diagnoses(resource)
    info = _SupportingInfo.collect(resource)
    if info.type_of_bill is None or len(info.type_of_bill) != 3:
        composed = _cms_type_of_bill(resource, info.frequency)
        if composed is not None:
            note("supportingInfo", f"type of bill composed from the CMS facility type, service classification and "
                                   f"frequency codes: {composed}")
            info.type_of_bill = composed
    if info.received_date is not None:
        source = source.model_copy(update={"received_date": info.received_date})
    care_team = _care_team(resource, resolver)
    header_pos = info.place_of_service or _first_line_place_of_service(resource)
    lines = [
        _service_line(item, position, sequence_to_position, care_team, header_pos, note=note)
        for position, item in enumerate(_items(resource.item), start=1)
        if not _is_total_line(item, position, note)
    ]
    totals = _header_totals(resource, note)
    patient, subscriber = _patient_and_subscriber(resource, resolver)
    if patient is None and subscriber is None and (logical := _logical_patient_id(resource)) is not None:
        # The Blue Button API names the beneficiary only by its Patient resource id (the BFD beneficiary id).
        patient = Person(member_id=logical)
        note("patient", "the unresolved Patient reference's id is the member ID")
    period_from = date_or_none(getattr(resource.billablePeriod, "start", None))
    period_to = date_or_none(getattr(resource.billablePeriod, "end", None))
    line_dates = [d for line in lines for d in (line.service_date_from, line.service_date_to) if d is not None]
    original_claim_id = _original_claim_id(resource)
    return Claim(
        claim_id=claim_id,
        claim_type=claim_type,
        frequency_code=_frequency_code(info.type_of_bill, resource.status, original_claim_id),
        original_claim_id=original_claim_id,
        billing_provider=_provider(resource.provider, resolver),
        rendering_provider=care_team.by_role("rendering"),
        attending_provider=care_team.by_role("attending"),
        referring_provider=care_team.by_role("referring") or _provider(getattr(resource, "referral", None), resolver),
        facility=_provider(resource.facility, resolver),
        payer=_payer(resource, resolver),
        subscriber=subscriber,
        patient=patient,
        place_of_service=header_pos if claim_type is ClaimType.PROFESSIONAL else None,
        type_of_bill=info.type_of_bill,
        # The billable period is the claim's service span; without one, the span of the line dates is used.
        service_date_from=period_from or (min(line_dates) if line_dates else None),
        service_date_to=period_to or (max(line_dates) if line_dates else None),
        admission_date=info.admission_date,
        discharge_date=info.discharge_date,
        diagnoses=diagnoses,
        lines=lines,
        total_charge=totals.get("submitted"),
        allowed_amount=totals.get("allowed"),
        paid_amount=totals.get("paid"),
        drg_code=info.drg_code or _package_code(resource),
        source=source,
    )


def _items(values: list[FhirObject] | None) -> list[FhirObject]:
    """The non-null elements of a FHIR list: JSON arrays of primitives may hold nulls (their extensions sit aside)."""
    return [value for value in values or [] if value is not None]


def _int(value: object, default: int) -> int:
    """A FHIR positiveInt as int, `default` when absent."""
    try:
        return int(str(value)) if value is not None else default
    except ValueError:
        return default


def _codes(concept: FhirObject | None) -> list[tuple[str, str]]:
    """(normalised system, code) pairs of a CodeableConcept; systems are compared case-insensitively."""
    pairs = []
    for coding in _items(getattr(concept, "coding", None)):
        if coding.code:
            pairs.append(((coding.system or "").rstrip("/").lower(), str(coding.code).strip()))
    return pairs


def _first_code(concept: FhirObject | None) -> str | None:
    codes = _codes(concept)
    return codes[0][1] if codes else None


def _claim_type(resource: FhirObject) -> ClaimType:
    for _system, code in _codes(resource.type):
        if code.lower() == "professional":
            return ClaimType.PROFESSIONAL
        if code.lower() == "institutional":
            return ClaimType.INSTITUTIONAL
    found = ", ".join(sorted({code for _s, code in _codes(resource.type) if code.isalnum()})) or "no type code"
    raise MappingError(FhirRejectionReason.UNSUPPORTED_CLAIM_TYPE,
                       f"expected type code 'professional' or 'institutional', found {found}")


def _claim_id(resource: FhirObject) -> str:
    identifiers = [ident for ident in _items(resource.identifier) if ident.value and str(ident.value).strip()]
    for ident in identifiers:
        if any(code == CLAIM_ID_TYPE for _s, code in _codes(ident.type)):
            return str(ident.value).strip()
    if identifiers:
        return str(identifiers[0].value).strip()
    if resource.id:
        return str(resource.id)
    raise MappingError(FhirRejectionReason.MISSING_CLAIM_ID, "expected an identifier or id, found neither")


def _diagnoses(resource: FhirObject) -> tuple[list[Diagnosis], dict[int, int]]:
    """Diagnoses in sequence order, and FHIR diagnosis sequence -> 1-based canonical position (for line pointers)."""
    entries = [entry for entry in _items(resource.diagnosis)
               if not is_placeholder_concept(entry.diagnosisCodeableConcept)]
    # The principal diagnosis first (CMS numbers admitting before principal), then by sequence.
    entries.sort(key=lambda entry: (not _is_principal(entry), _int(entry.sequence, 0)))
    diagnoses: list[Diagnosis] = []
    positions: dict[int, int] = {}
    for entry in entries:
        if entry.diagnosisCodeableConcept is None:
            raise MappingError(FhirRejectionReason.UNSUPPORTED_DIAGNOSIS,
                               f"diagnosis sequence {entry.sequence}: expected diagnosisCodeableConcept, "
                               "found a Condition reference")
        system, code = _diagnosis_code(entry)
        poa = _first_code(entry.onAdmission)
        diagnoses.append(Diagnosis(code=code, system=system, present_on_admission=poa.upper() if poa else None))
        positions[_int(entry.sequence, len(diagnoses))] = len(diagnoses)
    return diagnoses, positions


def _is_principal(entry: FhirObject) -> bool:
    return any(code.lower() == "principal" for concept in _items(entry.type) for _s, code in _codes(concept))


def _diagnosis_code(entry: FhirObject) -> tuple[DiagnosisSystem, str]:
    codes = _codes(entry.diagnosisCodeableConcept)
    for system, code in codes:
        if system in ICD10CM_SYSTEMS:
            return DiagnosisSystem.ICD10CM, _undotted(code)
        if system in ICD9CM_SYSTEMS:
            return DiagnosisSystem.ICD9CM, _undotted(code)
    systems = ", ".join(sorted({system or "(no system)" for system, _c in codes})) or "no coding"
    raise MappingError(FhirRejectionReason.UNSUPPORTED_DIAGNOSIS,
                       f"diagnosis sequence {entry.sequence}: expected an ICD-10-CM or ICD-9-CM coding, "
                       f"found {systems}")


def _undotted(code: str) -> str:
    """Canonical diagnosis codes carry no dot: FHIR 'I70.249' is X12 'I70249'."""
    return code.replace(".", "").strip().upper()


class _SupportingInfo:
    """What the header needs from supportingInfo (CARIN categories, and R4 base 'hospitalized')."""

    def __init__(self) -> None:
        self.type_of_bill: str | None = None
        self.place_of_service: str | None = None
        self.received_date: date | None = None
        self.admission_date: date | None = None
        self.discharge_date: date | None = None
        self.drg_code: str | None = None
        self.frequency: str | None = None  # CMS clm_freq_cd, sent apart from the facility and classification digits

    @classmethod
    def collect(cls, resource: FhirObject) -> _SupportingInfo:
        info = cls()
        for item in _items(resource.supportingInfo):
            categories = {code.lower() for _s, code in _codes(item.category)}
            frequency = next((code for system, code in _codes(item.code) if system == CMS_FREQUENCY), None)
            if frequency is not None or CMS_FREQUENCY in categories:
                info.frequency = frequency or _first_code(item.code)
                continue
            if "typeofbill" in categories:
                info.type_of_bill = _type_of_bill(_first_code(item.code))
            elif "placeofservice" in categories or "pos" in categories:
                info.place_of_service = _first_code(item.code)
            elif "clmrecvddate" in categories:
                info.received_date = date_or_none(item.timingDate)
            elif categories & {"admissionperiod", "hospitalized"}:
                info.admission_date = date_or_none(getattr(item.timingPeriod, "start", None))
                info.discharge_date = date_or_none(getattr(item.timingPeriod, "end", None))
            elif "drg" in categories:
                info.drg_code = _first_code(item.code)
        return info


def _type_of_bill(code: str | None) -> str | None:
    """NUBC type of bill as the canonical 3 digits: the UB-04 form prints a leading zero ('0131' -> '131')."""
    if code is None:
        return None
    return code[1:] if len(code) == 4 and code.startswith("0") else code


def _cms_type_of_bill(resource: FhirObject, frequency: str | None) -> str | None:
    """facility type (clm_fac_type_cd, on `facility`) + service classification (clm_srvc_clsfctn_type_cd) + frequency
    (clm_freq_cd): the three digits of the type of bill as CMS's claim files keep them apart."""
    def extension_code(extensions: list[FhirObject] | None, url: str) -> str | None:
        for extension in _items(extensions):
            if extension.url == url and extension.valueCoding is not None and extension.valueCoding.code:
                return str(extension.valueCoding.code)
        return None

    facility = extension_code(getattr(resource.facility, "extension", None), CMS_FACILITY_TYPE)
    classification = extension_code(resource.extension, CMS_SERVICE_CLASSIFICATION)
    digits = (facility, classification, frequency)
    if all(d is not None and len(d) == 1 and d.isdigit() for d in digits):
        return "".join(d for d in digits if d is not None)
    return None


def _package_code(resource: FhirObject) -> str | None:
    """R4 base carries the DRG as diagnosis.packageCode."""
    for entry in _items(resource.diagnosis):
        code = _first_code(entry.packageCode)
        if code:
            return code
    return None


def _frequency_code(type_of_bill: str | None, status: str | None, original_claim_id: str | None) -> str:
    if type_of_bill and len(type_of_bill) == 3:
        return type_of_bill[-1]
    if status == "cancelled":
        return FrequencyCode.VOID.value
    if original_claim_id:
        return FrequencyCode.REPLACEMENT.value
    return FrequencyCode.ORIGINAL.value


def _original_claim_id(resource: FhirObject) -> str | None:
    for related in _items(resource.related):
        if not any(code.lower() in RELATED_REPLACES for _s, code in _codes(related.relationship)):
            continue
        if related.reference is not None and related.reference.value:
            return str(related.reference.value)
        claim = related.claim
        if claim is not None:
            if claim.identifier is not None and claim.identifier.value:
                return str(claim.identifier.value)
            if claim.reference:
                return str(claim.reference).rstrip("/").split("/")[-1]
    return None


# ------------------------------------------------------------------------------------------------------ parties


def _npi(identifiers: list[FhirObject] | None) -> str | None:
    for ident in _items(identifiers):
        if (ident.system or "").rstrip("/") == NPI_SYSTEM and ident.value:
            return str(ident.value).strip()
    return None


def _tax_id(identifiers: list[FhirObject] | None) -> str | None:
    for ident in _items(identifiers):
        typed_tax = any(code == "TAX" for _s, code in _codes(ident.type))
        if ident.value and ((ident.system or "") in EIN_SYSTEMS or typed_tax):
            return str(ident.value).strip()
    return None


def _human_name(values: list[FhirObject] | None) -> FhirObject | None:
    names = _items(values)
    if not names:
        return None
    return next((name for name in names if name.use == "official"), names[0])


def _provider(reference: FhirObject | None, resolver: Resolver) -> Provider | None:
    """A provider from a reference: the resolved Practitioner / Organization / PractitionerRole, else the reference's
    own identifier and display (a logical reference)."""
    if reference is None:
        return None
    values: dict[str, Any] = {}
    target = resolver.resolve(reference)
    if target is not None:
        values = _provider_values(target, resolver)
    ref_identifier = getattr(reference, "identifier", None)
    if not values.get("npi") and ref_identifier is not None:
        values["npi"] = _npi([ref_identifier])
    if not values.get("name") and getattr(reference, "display", None):
        values["name"] = str(reference.display)
    values = {key: value for key, value in values.items() if value}
    return Provider(**values) if values else None


def _provider_values(target: FhirObject, resolver: Resolver) -> dict[str, Any]:
    resource_type = target.get_resource_type()
    if resource_type == "Practitioner":
        name = _human_name(target.name)
        display = None
        if name is not None:
            given = " ".join(str(part) for part in _items(name.given))
            display = ", ".join(part for part in (name.family, given) if part) or name.text
        taxonomy = next((code for q in _items(target.qualification) for system, code in _codes(q.code)
                         if system == NUCC_TAXONOMY_SYSTEM), None)
        return {"npi": _npi(target.identifier), "name": display, "entity_type": "1",
                "tax_id": _tax_id(target.identifier), "taxonomy": taxonomy}
    if resource_type == "Organization":
        return {"npi": _npi(target.identifier), "name": target.name, "entity_type": "2",
                "tax_id": _tax_id(target.identifier)}
    if resource_type == "PractitionerRole":
        practitioner = resolver.resolve(target.practitioner)
        # Only a Practitioner is followed: a role pointing at a role must not recurse.
        is_person = practitioner is not None and practitioner.get_resource_type() == "Practitioner"
        values = _provider_values(practitioner, resolver) if is_person else {}
        values["npi"] = _npi(target.identifier) or values.get("npi")
        values["taxonomy"] = next((code for concept in _items(target.specialty) for system, code in _codes(concept)
                                   if system == NUCC_TAXONOMY_SYSTEM), values.get("taxonomy"))
        return values
    if resource_type == "Location":
        return {"npi": _npi(target.identifier), "name": target.name, "entity_type": "2"}
    return {}


class _CareTeam:
    """careTeam members by sequence and by role code."""

    def __init__(self) -> None:
        self.by_sequence: dict[int, tuple[set[str], Provider | None]] = {}

    def by_role(self, role: str) -> Provider | None:
        roles = RENDERING_ROLES if role == "rendering" else (role,)
        for wanted in roles:
            for member_roles, provider in self.by_sequence.values():
                if wanted in member_roles and provider is not None:
                    return provider
        return None


def _care_team(resource: FhirObject, resolver: Resolver) -> _CareTeam:
    team = _CareTeam()
    for member in _items(resource.careTeam):
        roles = {code.lower() for _s, code in _codes(member.role)}
        team.by_sequence[_int(member.sequence, 0)] = (roles, _provider(member.provider, resolver))
    return team


def _payer(resource: FhirObject, resolver: Resolver) -> Payer | None:
    """The insurer; an EOB may also name the payer through its Coverage.payor."""
    references = [resource.insurer]
    for coverage in _coverages(resource, resolver):
        references.extend(_items(coverage.payor))
    for reference in references:
        if reference is None:
            continue
        target = resolver.resolve(reference)
        payer_id = None
        name = getattr(reference, "display", None)
        if target is not None and target.get_resource_type() == "Organization":
            name = target.name or name
            payer_id = next((str(i.value) for i in _items(target.identifier) if i.value), None)
        if payer_id is None and getattr(reference, "identifier", None) is not None:
            payer_id = reference.identifier.value
        if payer_id or name:
            return Payer(payer_id=payer_id, name=name)
    return None


def _coverages(resource: FhirObject, resolver: Resolver) -> list[FhirObject]:
    """Resolved Coverage resources, the focal one first."""
    insurance = sorted(_items(resource.insurance), key=lambda entry: not entry.focal)
    found = []
    for entry in insurance:
        coverage = resolver.resolve(entry.coverage)
        if coverage is not None and coverage.get_resource_type() == "Coverage":
            found.append(coverage)
    return found


def _patient_and_subscriber(resource: FhirObject, resolver: Resolver) -> tuple[Person | None, Person | None]:
    coverages = _coverages(resource, resolver)
    coverage = coverages[0] if coverages else None
    relationship = None
    subscriber_id = None
    if coverage is not None:
        relationship = RELATIONSHIP_CODES.get((_first_code(coverage.relationship) or "").lower())
        subscriber_id = coverage.subscriberId or next(
            (str(i.value) for i in _items(coverage.identifier) if i.value), None
        )
    target = resolver.resolve(resource.patient)
    patient_values: dict[str, Any] = {}
    if target is not None and target.get_resource_type() == "Patient":
        patient_values = _person_values(target)
    elif getattr(resource.patient, "identifier", None) is not None and resource.patient.identifier.value:
        patient_values = {"member_id": str(resource.patient.identifier.value)}
    # The coverage's subscriber ID is the patient's member ID when the patient is the subscriber (or nothing says
    # otherwise); a dependent keeps only what their own Patient resource says.
    if not patient_values.get("member_id") and subscriber_id and relationship in (None, "18"):
        patient_values["member_id"] = subscriber_id
    if relationship:
        patient_values["relationship_code"] = relationship
    patient = Person(**patient_values) if patient_values else None
    subscriber: Person | None = None
    if relationship == "18" and patient is not None:
        subscriber = patient
    elif coverage is not None:
        subscriber_target = resolver.resolve(coverage.subscriber)
        subscriber_values: dict[str, Any] = {}
        if subscriber_target is not None and subscriber_target.get_resource_type() in ("Patient", "RelatedPerson"):
            subscriber_values = _person_values(subscriber_target)
        if subscriber_id:
            subscriber_values["member_id"] = subscriber_id
        subscriber = Person(**subscriber_values) if subscriber_values else None
    return patient, subscriber


def _logical_patient_id(resource: FhirObject) -> str | None:
    """'Patient/<id>' of an unresolvable patient reference: the id, which identifies the member at the sender."""
    reference = getattr(resource.patient, "reference", None) or ""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def _person_values(target: FhirObject) -> dict[str, Any]:
    values: dict[str, Any] = {}
    name = _human_name(target.name)
    if name is not None:
        given = [str(part) for part in _items(name.given)]
        values["last_name"] = name.family
        values["first_name"] = given[0] if given else None
        values["middle_name"] = " ".join(given[1:]) or None
    values["birth_date"] = date_or_none(target.birthDate)
    values["death_date"] = date_or_none(getattr(target, "deceasedDateTime", None))
    values["gender"] = GENDER_CODES.get(target.gender or "")
    for ident in _items(target.identifier):
        if not ident.value:
            continue
        type_codes = {code for _s, code in _codes(ident.type)}
        if type_codes & set(MEMBER_ID_TYPES) and not values.get("member_id"):
            values["member_id"] = str(ident.value)
        elif "MR" in type_codes and not values.get("medical_record_number"):
            values["medical_record_number"] = str(ident.value)
        elif ("SS" in type_codes or (ident.system or "") == SSN_SYSTEM) and not values.get("ssn"):
            values["ssn"] = str(ident.value)
    for contact in _items(target.telecom):
        if contact.system == "phone" and not values.get("phone"):
            values["phone"] = contact.value
        elif contact.system == "email" and not values.get("email"):
            values["email"] = contact.value
    addresses = _items(target.address)
    address = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
    if address is not None:
        street = [str(part) for part in _items(address.line)]
        values["address"] = PersonAddress(
            line1=street[0] if street else None,
            line2=", ".join(street[1:]) or None,
            city=address.city,
            state=address.state,
            postal_code=address.postalCode,
        )
    return {key: value for key, value in values.items() if value is not None}


# -------------------------------------------------------------------------------------------------------- lines


def _first_line_place_of_service(resource: FhirObject) -> str | None:
    for item in _items(resource.item):
        code = _first_code(item.locationCodeableConcept)
        if code:
            return code
    return None


def _procedure(item: FhirObject) -> tuple[str | None, ProcedureSystem | None, str | None]:
    """(procedure code, its system, NDC) from productOrService; an unknown system keeps the code without a system."""
    codes = _codes(item.productOrService)
    ndc = next((code for system, code in codes if system == NDC_SYSTEM), None)
    for system, code in codes:
        if system in HCPCS_SYSTEMS:
            return code, ProcedureSystem.HCPCS, ndc
        if system in ICD10PCS_SYSTEMS:
            return code, ProcedureSystem.ICD10PCS, ndc
    # data-absent-reason codings ('not-applicable' on institutional lines) say there is no procedure code.
    unknown = [code for system, code in codes
               if system not in (NDC_SYSTEM, PLACEHOLDER_SYSTEM) and "data-absent-reason" not in system]
    return (unknown[0] if unknown else None), None, ndc


def _hcpcs_in_modifier(item: FhirObject) -> str | None:
    """A 5-character HCPCS code that CMS put in item.modifier (modifiers are 2 characters, so it is the procedure)."""
    for concept in _items(item.modifier):
        for system, code in _codes(concept):
            if system in HCPCS_SYSTEMS and len(code) == 5:
                return code
    return None


def _is_total_line(item: FhirObject, position: int, note: Note) -> bool:
    """Whether the item is the UB-04 revenue code 0001 total line (reported and left out of the service lines)."""
    if _first_code(item.revenue) != UB04_TOTAL_REVENUE_CODE:
        return False
    note(f"item[{position - 1}].revenue", "revenue code 0001 is the UB-04 total of all lines, not a service line; "
                                          "left out of the lines")
    return True


def _adjudication_amounts(adjudications: list[FhirObject] | None) -> dict[str, Decimal]:
    """'submitted' / 'allowed' / 'paid' amounts from adjudication (or EOB total) entries, by category code."""
    by_code: dict[str, Decimal] = {}
    cms: dict[str, Decimal] = {}
    for entry in _items(adjudications):
        amount = getattr(entry.amount, "value", None)
        if amount is None:
            continue
        codes = [code for _system, code in _codes(entry.category)]
        variables = [CMS_AMOUNT_VARIABLES.get(code.removeprefix(CMS_VARIABLES)) for code in codes
                     if code.startswith(CMS_VARIABLES)]
        if any(code.startswith(CMS_VARIABLES) for code in codes):
            # A CMS entry is what its variable says; its generic category is only a grouping.
            for canonical in variables:
                if canonical is not None:
                    cms.setdefault(canonical, Decimal(amount))
            continue
        for code in codes:
            by_code.setdefault(code.lower(), Decimal(amount))
    amounts: dict[str, Decimal] = dict(cms)
    if amounts:
        return amounts
    if "submitted" in by_code:
        amounts["submitted"] = by_code["submitted"]
    allowed = next((by_code[c] for c in ALLOWED_CATEGORIES if c in by_code), None)
    if allowed is not None:
        amounts["allowed"] = allowed
    paid = next((by_code[c] for c in PAID_CATEGORIES if c in by_code), None)
    if paid is not None:
        amounts["paid"] = paid
    return amounts


def _header_totals(resource: FhirObject, note: Note = _ignore) -> dict[str, Decimal]:
    """Claim.total is one Money (the submitted total); EOB.total is a list of categorised amounts.

    CMS carrier EOBs put the claim's submitted charge in benefitBalance (nch_carr_clm_sbmtd_chrg_amt) and label their
    `total` entry 'priorpayerpaid'; an uncategorised total (a repaired R4 break) is the submitted charge."""
    total = resource.total
    if isinstance(total, list):
        amounts = _adjudication_amounts([t for t in total if not is_placeholder_concept(t.category)])
        if amounts.get("submitted") is not None and _is_cms_mislabelled_total(total):
            amounts.pop("submitted")
        balance = _benefit_balance_amounts(resource)
        for key, value in balance.items():
            amounts.setdefault(key, value)
        uncategorised = [t for t in total if is_placeholder_concept(t.category) and getattr(t.amount, "value", None)
                         is not None]
        if "submitted" not in amounts and len(uncategorised) == 1:
            amounts["submitted"] = Decimal(uncategorised[0].amount.value)
            note(f"total[{total.index(uncategorised[0])}]", "an uncategorised total is read as the submitted charge")
        payment_value = getattr(getattr(getattr(resource, "payment", None), "amount", None), "value", None)
        if "paid" not in amounts and payment_value is not None:
            amounts["paid"] = Decimal(payment_value)
        return amounts
    if total is not None and total.value is not None:
        return {"submitted": Decimal(total.value)}
    return {}


def _is_cms_mislabelled_total(total: list[FhirObject]) -> bool:
    """CMS carrier EOBs send clm_tot_chrg_amt under the category 'priorpayerpaid' (with 0.00): not the charge."""
    for entry in total:
        codes = {code.lower() for _s, code in _codes(entry.category)}
        if "priorpayerpaid" in codes and any(c.endswith("/clm_tot_chrg_amt") for c in codes):
            return True
    return False


def _benefit_balance_amounts(resource: FhirObject) -> dict[str, Decimal]:
    """Submitted / allowed claim totals that CMS carries as benefitBalance financial entries (carrier claims)."""
    amounts: dict[str, Decimal] = {}
    for balance in _items(getattr(resource, "benefitBalance", None)):
        for financial in _items(balance.financial):
            value = getattr(financial.usedMoney, "value", None)
            if value is None:
                continue
            for _system, code in _codes(financial.type):
                canonical = CMS_AMOUNT_VARIABLES.get(code.removeprefix(CMS_VARIABLES))
                if code.startswith(CMS_VARIABLES) and canonical is not None:
                    amounts.setdefault(canonical, Decimal(value))
    return amounts


def _line_charge(item: FhirObject, adjudicated: Mapping[str, Decimal]) -> Decimal | None:
    if item.net is not None and item.net.value is not None:
        return Decimal(item.net.value)
    if item.unitPrice is not None and item.unitPrice.value is not None:
        quantity = Decimal(item.quantity.value) if item.quantity is not None and item.quantity.value else Decimal(1)
        factor = Decimal(item.factor) if item.factor is not None else Decimal(1)
        return Decimal(item.unitPrice.value) * quantity * factor
    return adjudicated.get("submitted")


def _service_line(item: FhirObject, position: int, sequence_to_position: Mapping[int, int], care_team: _CareTeam,
                  header_pos: str | None, *, note: Note = _ignore) -> ServiceLine:
    code, system, ndc = _procedure(item)
    modifiers = [code for concept in _items(item.modifier) for code in [_first_code(concept)] if code]
    if code is None and (moved := _hcpcs_in_modifier(item)) is not None:
        code, system = moved, ProcedureSystem.HCPCS
        modifiers = [m for m in modifiers if m != moved]
        note(f"item[{position - 1}].modifier", "a 5-character HCPCS code in item.modifier is the line's procedure "
                                               "code (modifiers have 2 characters)")
    adjudicated = _adjudication_amounts(getattr(item, "adjudication", None))  # EOB items only
    pos = _first_code(item.locationCodeableConcept)
    date_from = date_or_none(item.servicedDate) or date_or_none(getattr(item.servicedPeriod, "start", None))
    date_to = date_or_none(item.servicedDate) or date_or_none(getattr(item.servicedPeriod, "end", None))
    # Claim.item uses diagnosisSequence, ExplanationOfBenefit.item uses diagnosisSequence too (R4); a pointer that
    # names no diagnosis keeps its raw value so validation reports DIAGNOSIS_POINTER_INVALID instead of losing it.
    sequences = [_int(value, 0) for value in _items(item.diagnosisSequence)]
    pointers = [sequence_to_position.get(sequence, sequence) for sequence in sequences]
    rendering = None
    for sequence in _items(item.careTeamSequence):
        roles, provider = care_team.by_sequence.get(_int(sequence, 0), (set(), None))
        if roles & set(RENDERING_ROLES) and provider is not None:
            rendering = provider
            break
    quantity = getattr(item.quantity, "value", None)
    return ServiceLine(
        line_number=_int(item.sequence, position),
        procedure_code=code,
        procedure_system=system,
        modifiers=modifiers,
        revenue_code=_first_code(item.revenue),
        units=Decimal(quantity) if quantity is not None else None,
        unit_type=getattr(item.quantity, "code", None),
        charge=_line_charge(item, adjudicated),
        allowed_amount=adjudicated.get("allowed"),
        paid_amount=adjudicated.get("paid"),
        service_date_from=date_from,
        service_date_to=date_to,
        place_of_service=pos if pos != header_pos else None,
        diagnosis_pointers=pointers,
        rendering_provider=rendering,
        ndc=ndc,
    )
