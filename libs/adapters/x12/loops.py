"""Mapping of 837 loops to canonical claim values: parties (2000A/B/C) and the claim itself (2300/2310/2400/2420).

Why separate from the envelope walker: the walker decides *which* segments belong to a billing provider, a subscriber,
a patient or a claim; this module decides what they *mean*, as pure functions of those segment lists. Values are built
as plain dicts and validated once, as a whole Claim, by pydantic, which is cheaper than building nested models one
by one and gives each claim its own objects.

Which loop a segment belongs to is decided by the segment that opens the loop (NM1 by its entity code, SBR for the
2320 other-subscriber loop, LX for a service line), as the implementation guides define: the same N3/N4/REF/PRV tags
mean different things in different loops, and a 2320 NM1*IL must never overwrite the subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from libs.adapters.x12.reasons import X12Reason
from libs.adapters.x12.segments import CompositeSplitter, Segment
from libs.adapters.x12.values import (
    DateRange,
    X12ValueError,
    parse_amount,
    parse_date_value,
    parse_pointer,
    parse_quantity,
)
from libs.model import ClaimType, DiagnosisSystem, ProcedureSystem

# HI code list qualifiers (element 1270). The qualifier, never the shape of the code, decides the code system.
ICD10_DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "ABF", "ABJ", "ABN", "APR", "ABZ"})
ICD9_DIAGNOSIS_QUALIFIERS = frozenset({"BK", "BF", "BJ", "BN", "PR", "BZ"})
PRINCIPAL_DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "BK"})
DRG_QUALIFIER = "DR"
# Qualifiers of HI composites that are not diagnoses: occurrence (BH), occurrence span (BI), value (BE), condition
# (BG), ICD procedures (BBR/BBQ/BR/BQ/CAH), anesthesia HCPCS procedures (BP/BO) and treatment codes (TC).
NON_DIAGNOSIS_QUALIFIERS = frozenset({"BH", "BI", "BE", "BG", "BBR", "BBQ", "BR", "BQ", "CAH", "BP", "BO", "TC"})
HI_ELEMENTS = range(1, 13)  # HI01..HI12
POA_COMPONENT = 8  # HI0x-09, 0-based
PROCEDURE_QUALIFIER_SYSTEMS = {"HC": ProcedureSystem.HCPCS}  # ER, IV, WK, HP codes keep procedure_system None
MAX_MODIFIERS = 4

# NM101 entity identifier codes.
BILLING_PROVIDER = "85"
SUBSCRIBER = "IL"
PAYER = "PR"
PATIENT = "QC"
CLAIM_PROVIDER_ROLES = {
    "82": "rendering_provider",  # 2310B (837P) / 2310D (837I) rendering
    "71": "attending_provider",  # 2310A (837I)
    "DN": "referring_provider",  # 2310A (837P) / 2310F (837I)
    "77": "facility",  # 2310C (837P) / 2310E (837I) service facility location
    "FA": "facility",  # the facility entity code some 837I senders still use
}
LINE_RENDERING = "82"  # 2420A (837P) / 2420C (837I)


@dataclass(frozen=True, slots=True)
class Parties:
    """What the HL hierarchy above a claim contributes: billing provider, subscriber, payer and patient."""

    billing_provider: dict[str, Any] | None
    subscriber: dict[str, Any] | None
    payer: dict[str, Any] | None
    patient: dict[str, Any] | None


def split_by_entity(segments: list[Segment]) -> tuple[list[Segment], dict[str, list[Segment]]]:
    """Segments before the first NM1, and the segments of each NM1 loop keyed by its entity code (first one wins)."""
    head: list[Segment] = []
    loops: dict[str, list[Segment]] = {}
    current: list[Segment] | None = None
    for segment in segments:
        if segment.tag == "NM1":
            current = [segment]
            loops.setdefault(segment.get(1), current)
        elif current is not None:
            current.append(segment)
        else:
            head.append(segment)
    return head, loops


def _address(segments: list[Segment]) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for segment in segments:
        if segment.tag == "N3":
            values.update(line1=segment.get(1) or None, line2=segment.get(2) or None)
        elif segment.tag == "N4":
            values.update(city=segment.get(1) or None, state=segment.get(2) or None, postal_code=segment.get(3) or None)
    return values or None


def _first(segments: list[Segment], tag: str, qualifier: str | None = None) -> Segment | None:
    for segment in segments:
        if segment.tag == tag and (qualifier is None or segment.get(1) == qualifier):
            return segment
    return None


def provider_values(loop: list[Segment]) -> dict[str, Any]:
    """A Provider from an NM1 loop: NM1 name and NPI (NM108 'XX'), PRV03 taxonomy, N3/N4 address, REF*EI tax ID."""
    nm1 = loop[0]
    entity_type, last, first = nm1.get(2), nm1.get(3), nm1.get(4)
    name = f"{last}, {first}" if entity_type == "1" and last and first else (last or None)
    values: dict[str, Any] = {
        "name": name,
        "entity_type": entity_type or None,
        "npi": (nm1.get(9) or None) if nm1.get(8) == "XX" else None,
    }
    prv = _first(loop, "PRV")
    if prv is not None and prv.get(3):
        values["taxonomy"] = prv.get(3)
    tax_id = _first(loop, "REF", "EI")
    if tax_id is not None and tax_id.get(2):
        values["tax_id"] = tax_id.get(2)
    address = _address(loop)
    if address is not None:
        values["address"] = address
    return values


def billing_provider_values(segments: list[Segment]) -> dict[str, Any] | None:
    """2000A: PRV*BI taxonomy at the HL level, then the 2010AA NM1*85 loop (2010AB pay-to N3/N4 are not mixed in)."""
    head, loops = split_by_entity(segments)
    loop = loops.get(BILLING_PROVIDER)
    values = provider_values(loop) if loop is not None else {}
    prv = _first(head, "PRV", "BI") or _first(head, "PRV")
    if prv is not None and prv.get(3):
        values["taxonomy"] = prv.get(3)
    return values or None


def _death_date(pat: Segment | None) -> date | None:
    # PAT05 'D8' + PAT06 is the date of death (when the patient is deceased).
    if pat is None or not pat.get(6):
        return None
    period = parse_date_value(pat, 5, 6, phi=True)
    return period.start if period is not None else None


def person_values(loop: list[Segment], pat: Segment | None, relationship: str | None) -> dict[str, Any]:
    """A Person from an NM1*IL / NM1*QC loop: names, NM109 member ID, N3/N4, DMG birth date and gender, REF*SY."""
    nm1 = loop[0]
    values: dict[str, Any] = {
        "last_name": nm1.get(3) or None,
        "first_name": nm1.get(4) or None,
        "middle_name": nm1.get(5) or None,
        "member_id": nm1.get(9) or None,
        "relationship_code": relationship or None,
        "death_date": _death_date(pat),
    }
    dmg = _first(loop, "DMG")
    if dmg is not None:
        birth = parse_date_value(dmg, 1, 2, phi=True)
        values["birth_date"] = birth.start if birth is not None else None
        values["gender"] = dmg.get(3) or None
    ssn = _first(loop, "REF", "SY")
    if ssn is not None and ssn.get(2):
        values["ssn"] = ssn.get(2)
    address = _address(loop)
    if address is not None:
        values["address"] = address
    return values


def subscriber_values(segments: list[Segment]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """2000B: SBR02 relationship, optional PAT, 2010BA NM1*IL subscriber and 2010BB NM1*PR payer."""
    head, loops = split_by_entity(segments)
    sbr = _first(head, "SBR")
    relationship = sbr.get(2) if sbr is not None else None
    loop = loops.get(SUBSCRIBER)
    subscriber = person_values(loop, _first(head, "PAT"), relationship) if loop is not None else None
    payer_loop = loops.get(PAYER)
    payer = None
    if payer_loop is not None:
        payer = {"name": payer_loop[0].get(3) or None, "payer_id": payer_loop[0].get(9) or None}
    return subscriber, payer


def patient_values(segments: list[Segment]) -> dict[str, Any] | None:
    """2000C: PAT01 relationship to the subscriber and the 2010CA NM1*QC patient."""
    head, loops = split_by_entity(segments)
    pat = _first(head, "PAT")
    loop = loops.get(PATIENT)
    if loop is None:
        return None
    return person_values(loop, pat, pat.get(1) if pat is not None else None)


@dataclass(slots=True)
class _LineSegments:
    lx: Segment
    segments: list[Segment] = field(default_factory=list)
    providers: list[list[Segment]] = field(default_factory=list)


@dataclass(slots=True)
class _ClaimSegments:
    header: list[Segment] = field(default_factory=list)
    providers: list[list[Segment]] = field(default_factory=list)
    lines: list[_LineSegments] = field(default_factory=list)


def _split_claim(segments: list[Segment]) -> _ClaimSegments:
    """Assign each segment after CLM to 2300, a 2310 provider loop, the 2320/2330 other-payer loops (dropped), a 2400
    line or a line's 2420 provider loop; 2410 drug (LIN/CTP) segments stay with their line."""
    parts = _ClaimSegments()
    in_provider = in_other_subscriber = False
    for segment in segments:
        tag = segment.tag
        if tag == "LX":
            parts.lines.append(_LineSegments(segment))
        elif parts.lines:
            line = parts.lines[-1]
            if tag == "NM1":
                line.providers.append([segment])
            elif line.providers:
                line.providers[-1].append(segment)
            else:
                line.segments.append(segment)
        elif tag == "SBR":
            in_other_subscriber = True  # 2320 and its 2330 loops: other payers' data, not this claim's parties
        elif in_other_subscriber:
            continue
        elif tag == "NM1":
            parts.providers.append([segment])
            in_provider = True
        elif in_provider:
            parts.providers[-1].append(segment)
        else:
            parts.header.append(segment)
    return parts


def _procedure(splitter: CompositeSplitter, segment: Segment, position: int) -> dict[str, Any]:
    """SV101 / SV202 composite: qualifier, code, up to four modifiers (the 7th component is a description)."""
    components = splitter.split(segment, position)
    if not components:
        return {}
    return {
        "procedure_code": components[1] if len(components) > 1 and components[1] else None,
        "procedure_system": PROCEDURE_QUALIFIER_SYSTEMS.get(components[0]),
        "modifiers": [modifier for modifier in components[2 : 2 + MAX_MODIFIERS] if modifier],
    }


def _line_values(
    line: _LineSegments, ordinal: int, claim_type: ClaimType, splitter: CompositeSplitter
) -> dict[str, Any]:
    lx_number = line.lx.get(1)
    numbered = len(lx_number) <= 6 and lx_number.isascii() and lx_number.isdecimal() and int(lx_number) > 0
    values: dict[str, Any] = {"line_number": int(lx_number) if numbered else ordinal}
    for segment in line.segments:
        tag = segment.tag
        if tag == "SV1" and claim_type is ClaimType.PROFESSIONAL:
            values.update(_procedure(splitter, segment, 1))
            values["charge"] = parse_amount(segment, 2)
            values["unit_type"] = segment.get(3) or None
            values["units"] = parse_quantity(segment, 4)
            values["place_of_service"] = segment.get(5) or None
            values["diagnosis_pointers"] = [
                parse_pointer(segment, 7, pointer) for pointer in splitter.split(segment, 7) if pointer
            ]
        elif tag == "SV2" and claim_type is ClaimType.INSTITUTIONAL:
            values["revenue_code"] = segment.get(1) or None
            values.update(_procedure(splitter, segment, 2))
            values["charge"] = parse_amount(segment, 3)
            values["unit_type"] = segment.get(4) or None
            values["units"] = parse_quantity(segment, 5)
        elif tag == "DTP" and segment.get(1) == "472":
            period = parse_date_value(segment, 2, 3)
            if period is not None:
                values["service_date_from"], values["service_date_to"] = period.start, period.end
        elif tag == "LIN" and segment.get(2) == "N4" and segment.get(3):
            values["ndc"] = segment.get(3)  # 2410 drug identification: N4 is the 11-digit NDC
    for loop in line.providers:
        if loop[0].get(1) == LINE_RENDERING:
            values["rendering_provider"] = provider_values(loop)
    return values


def _diagnoses(header: list[Segment], splitter: CompositeSplitter) -> tuple[list[dict[str, Any]], str | None]:
    """Diagnoses from every HI segment, principal (ABK/BK) first then in file order; and the DRG (HI*DR), if any."""
    principal: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    drg: str | None = None
    for segment in header:
        if segment.tag != "HI":
            continue
        for position in HI_ELEMENTS:
            components = splitter.split(segment, position)
            if not components:
                continue
            qualifier = components[0]
            code = components[1] if len(components) > 1 else ""
            if qualifier in ICD10_DIAGNOSIS_QUALIFIERS:
                system = DiagnosisSystem.ICD10CM
            elif qualifier in ICD9_DIAGNOSIS_QUALIFIERS:
                system = DiagnosisSystem.ICD9CM
            elif qualifier == DRG_QUALIFIER:
                drg = code or None
                continue
            elif qualifier in NON_DIAGNOSIS_QUALIFIERS:
                continue
            else:
                raise X12ValueError(
                    X12Reason.BAD_QUALIFIER, segment,
                    f"HI{position:02d}-01 code list qualifier {qualifier[:8]!r} is not one the 837 guides define "
                    f"(diagnoses: ABK/ABF/ABJ/ABN/APR/ABZ for ICD-10-CM, BK/BF/BJ/BN/PR/BZ for ICD-9-CM) "
                    f"at {segment.where()}",
                )
            poa = components[POA_COMPONENT] if len(components) > POA_COMPONENT else ""
            diagnosis = {"code": code, "system": system, "qualifier": qualifier, "present_on_admission": poa or None}
            (principal if qualifier in PRINCIPAL_DIAGNOSIS_QUALIFIERS else others).append(diagnosis)
    return principal + others, drg


def _set_period(values: dict[str, Any], period: DateRange | None, start_key: str, end_key: str | None) -> None:
    if period is None:
        return
    values[start_key] = period.start
    if end_key is not None:
        values[end_key] = period.end


def _clm05_values(clm: Segment, claim_type: ClaimType, splitter: CompositeSplitter) -> dict[str, Any]:
    """CLM05: facility code (837P place of service / 837I facility type) : qualifier : claim frequency code."""
    location = splitter.split(clm, 5)
    facility_code = location[0] if location else ""
    frequency = location[2] if len(location) > 2 else ""
    values: dict[str, Any] = {"frequency_code": frequency} if frequency else {}
    if claim_type is ClaimType.PROFESSIONAL:
        values["place_of_service"] = facility_code or None
    elif facility_code:
        # Type of bill = facility type (2 digits) + frequency: '13' + '1' -> '131'. A leading zero, as printed in
        # UB-04 form locator 4 ('013'), is not part of the X12 code.
        facility_type = facility_code[1:] if len(facility_code) == 3 and facility_code[0] == "0" else facility_code
        values["type_of_bill"] = facility_type + frequency
    return values


def _header_values(header: list[Segment], patient: dict[str, Any] | None) -> dict[str, Any]:
    """2300 DTP dates, REF*F8 original claim and REF*EA medical record number (which goes on the patient)."""
    values: dict[str, Any] = {}
    for segment in header:
        tag, qualifier = segment.tag, segment.get(1)
        if tag == "DTP":
            if qualifier in ("434", "472"):  # statement period (837I) / service date
                _set_period(values, parse_date_value(segment, 2, 3), "service_date_from", "service_date_to")
            elif qualifier == "435":  # admission date (D8, or DT with the hour)
                _set_period(values, parse_date_value(segment, 2, 3), "admission_date", None)
            elif qualifier == "096":  # discharge date (837P D8); the 837I sends only the hour (TM), which is skipped
                _set_period(values, parse_date_value(segment, 2, 3), "discharge_date", None)
            # Other dates (431 onset, 454 initial treatment, 439 accident...) have no canonical field.
        elif tag == "REF" and qualifier == "F8" and segment.get(2):
            values["original_claim_id"] = segment.get(2)  # payer claim control number of the claim replaced/voided
        elif tag == "REF" and qualifier == "EA" and segment.get(2):
            values["patient"] = {**(patient or {}), "medical_record_number": segment.get(2)}
    return values


def claim_values(
    segments: list[Segment], claim_type: ClaimType, parties: Parties, splitter: CompositeSplitter
) -> dict[str, Any]:
    """The canonical claim fields of one 2300 loop (CLM first) with its 2310 providers and 2400 lines.

    Raises X12ValueError for a value the guide's type forbids (amount, date, quantity, HI qualifier).
    """
    clm = segments[0]
    claim_id = clm.get(1)
    if not claim_id.strip():
        raise X12ValueError(X12Reason.MISSING_CLM01, clm, f"CLM01 (patient control number) is empty at {clm.where()}")
    values: dict[str, Any] = {
        "claim_id": claim_id,
        "claim_type": claim_type,
        "total_charge": parse_amount(clm, 2),
        "billing_provider": parties.billing_provider,
        "subscriber": parties.subscriber,
        "payer": parties.payer,
        # Without a 2000C loop the subscriber is the patient.
        "patient": parties.patient if parties.patient is not None else parties.subscriber,
    }
    values.update(_clm05_values(clm, claim_type, splitter))
    parts = _split_claim(segments[1:])
    values.update(_header_values(parts.header, values["patient"]))
    values["diagnoses"], values["drg_code"] = _diagnoses(parts.header, splitter)

    for loop in parts.providers:
        role = CLAIM_PROVIDER_ROLES.get(loop[0].get(1))
        if role is not None and role not in values:
            values[role] = provider_values(loop)

    lines = [_line_values(line, index, claim_type, splitter) for index, line in enumerate(parts.lines, start=1)]
    values["lines"] = lines
    if "service_date_from" not in values:
        # No header dates (the usual 837P case): the claim spans its lines' service dates.
        starts = [line["service_date_from"] for line in lines if line.get("service_date_from")]
        ends = [line["service_date_to"] for line in lines if line.get("service_date_to")]
        if starts:
            values["service_date_from"], values["service_date_to"] = min(starts), max(ends or starts)
    return values

