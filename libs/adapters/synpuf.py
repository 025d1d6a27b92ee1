"""CMS DE-SynPUF adapter: carrier, inpatient and outpatient claim CSVs -> canonical claims.

Why this module exists: the CMS 2008-2010 Data Entrepreneurs' Synthetic Public Use Files are the largest freely
available Medicare claims set, and the pipeline's volume tests and demos run on them. Each CSV row is one claim with
"wide" line slots (HCPCS_CD_1..13 on carrier rows, HCPCS_CD_1..45 on institutional rows); every non-empty slot becomes
a service line. Which file a CSV is comes from its header, not its name.

Mapping decisions (source.format says synpuf-*, so validation can tell these claims apart):
- Codes stay strings (ICD-9 '0416', V and E codes); dates are YYYYMMDD; every diagnosis is ICD-9-CM, the first one
  principal (qualifier BK, the rest BF, as an 837 with ICD-9 would carry them). A line diagnosis (LINE_ICD9_DGNS_CD_n)
  that the header does not list is appended to the claim's diagnoses so the line can point at it.
- DESYNPUF_ID is the member ID of the patient, who is also the subscriber (Medicare beneficiary, relationship 18).
  With a beneficiary summary file, birth date, death date and sex (1 -> M, 2 -> F) are joined in.
- Payer: Medicare fee-for-service (the only payer of these files); no payer ID exists in the data.
- Carrier rows have NO billed-charge column. Each line's LINE_ALOWD_CHRG_AMT is used as its allowed amount AND as its
  charge (Medicare never allows more than was billed, so allowed is the tightest known lower bound of the charge),
  LINE_NCH_PMT_AMT is the line's paid amount; total_charge, allowed_amount and paid_amount are the sums over lines.
  Totals therefore reconcile with lines by construction, and ALLOWED_EXCEEDS_BILLED cannot fire on SynPUF. Carrier
  rows have no billing NPI either: the billing provider carries only the first line tax number (TAX_NUM_n, the
  billing TIN); PRF_PHYSN_NPI_n is each line's rendering provider, the first one also the claim's.
  Deductible, coinsurance, primary-payer and processing-indicator columns have no canonical field and are not mapped.
- Inpatient / outpatient rows are institutional: CLM_PMT_AMT is the paid amount, AT_PHYSN_NPI the attending and
  OP_PHYSN_NPI the rendering (operating) physician, PRVDR_NUM (a CMS certification number, not an NPI) is kept as the
  billing facility's name 'CCN <number>', since the canonical provider has no CCN field. There is no type of bill and
  no charge. HCPCS_CD_n slots become HCPCS lines; ICD9_PRCDR_CD_n become lines in ICD-9-CM procedure coding;
  ADMTNG_ICD9_DGNS_CD is appended as the admitting diagnosis (qualifier BJ).
- A claim split over several rows (SEGMENT 2, 3...) keeps CLM_ID for segment 1; later segments get the claim ID
  '<CLM_ID>-S<segment>' so they are not taken for duplicates of segment 1.
- Beneficiary summary rows that cannot be read are rejected (SYNPUF_BAD_BENEFICIARY) once per run; as SourceFormat
  has no beneficiary value, their source format is synpuf-carrier and their file the beneficiary file.
A row that cannot be mapped (wrong field count, bad date or amount, no CLM_ID, undecodable bytes) becomes a rejection
located by its row number (the header is row 1); messages name columns, never values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError

from libs.adapters.common import describe_validation_error, make_rejection, open_input, parse_decimal
from libs.adapters.errors import UnrecognizedInputError
from libs.model import (
    Claim,
    ClaimType,
    Diagnosis,
    DiagnosisSystem,
    Payer,
    Person,
    ProcedureSystem,
    Provider,
    Rejection,
    ServiceLine,
    Source,
    SourceFormat,
)

CARRIER_LINE_SLOTS = 13
CARRIER_DIAGNOSIS_SLOTS = 8
INSTITUTIONAL_DIAGNOSIS_SLOTS = 10
INSTITUTIONAL_PROCEDURE_SLOTS = 6
INSTITUTIONAL_HCPCS_SLOTS = 45
CARRIER_AMOUNT_PREFIXES = ("LINE_ALOWD_CHRG_AMT", "LINE_NCH_PMT_AMT", "LINE_BENE_PTB_DDCTBL_AMT",
                           "LINE_BENE_PRMRY_PYR_PD_AMT", "LINE_COINSRNC_AMT")
ZERO_TEXTS = frozenset({"", "0", "0.0", "0.00"})
MEDICARE = Payer(name="MEDICARE FEE-FOR-SERVICE")
SELF = "18"
SEX_CODES = {"1": "M", "2": "F"}


class SynpufRejectionReason(StrEnum):
    """Why a SynPUF row did not become a claim."""

    BAD_ROW = "SYNPUF_BAD_ROW"  # wrong number of fields, undecodable bytes, CSV syntax error
    BAD_DATE = "SYNPUF_BAD_DATE"  # a date column that is not YYYYMMDD
    BAD_AMOUNT = "SYNPUF_BAD_AMOUNT"  # an amount column that is not a decimal number
    MISSING_CLAIM_ID = "SYNPUF_MISSING_CLAIM_ID"  # CLM_ID empty
    BAD_BENEFICIARY = "SYNPUF_BAD_BENEFICIARY"  # a beneficiary summary row that cannot be joined
    UNMAPPABLE = "SYNPUF_UNMAPPABLE"  # mapped values do not form a canonical claim


class SynpufFile(StrEnum):
    """The DE-SynPUF file kinds this adapter recognises by header."""

    CARRIER = "carrier"
    INPATIENT = "inpatient"
    OUTPATIENT = "outpatient"
    BENEFICIARY = "beneficiary"


FILE_FORMATS: Mapping[SynpufFile, SourceFormat] = {
    SynpufFile.CARRIER: SourceFormat.SYNPUF_CARRIER,
    SynpufFile.INPATIENT: SourceFormat.SYNPUF_INPATIENT,
    SynpufFile.OUTPATIENT: SourceFormat.SYNPUF_OUTPATIENT,
}


def classify_header(columns: list[str]) -> SynpufFile | None:
    """Which SynPUF file a header row belongs to, or None when it is not a SynPUF header."""
    names = {column.strip().upper() for column in columns}
    kind: SynpufFile | None = None
    if "DESYNPUF_ID" not in names:
        kind = None
    elif "BENE_BIRTH_DT" in names:
        kind = SynpufFile.BENEFICIARY
    elif "CLM_ID" not in names:
        kind = None
    elif "LINE_NCH_PMT_AMT_1" in names or "PRF_PHYSN_NPI_1" in names:
        kind = SynpufFile.CARRIER
    elif "CLM_ADMSN_DT" in names or "CLM_DRG_CD" in names:
        kind = SynpufFile.INPATIENT
    elif "PRVDR_NUM" in names:
        kind = SynpufFile.OUTPATIENT
    return kind


# ------------------------------------------------------------------------------------------------ beneficiaries


@dataclass(frozen=True)
class Beneficiary:
    """The beneficiary summary facts a claim needs (PHI: birth and death dates)."""

    birth_date: date | None
    death_date: date | None
    gender: str | None


@dataclass(frozen=True)
class BeneficiaryIndex:
    """Beneficiaries by DESYNPUF_ID, with the rows that could not be read (reported once, as rejections)."""

    members: Mapping[str, Beneficiary]
    rejections: tuple[Rejection, ...]


def load_beneficiaries(path: Path) -> BeneficiaryIndex:
    """Read a beneficiary summary file; a member listed in several yearly files keeps the latest non-empty facts.

    The whole file is held in memory (three small facts per member), which is what makes the join streaming-friendly
    for the much larger claim files.
    """
    members: dict[str, Beneficiary] = {}
    rejections: list[Rejection] = []
    file = str(path)
    for row_number, row in _rows(path, SynpufFile.BENEFICIARY, rejections):
        member_id = row.get("DESYNPUF_ID", "").strip()
        try:
            birth = _date(row, "BENE_BIRTH_DT")
            death = _date(row, "BENE_DEATH_DT")
        except _RowError as exc:
            rejections.append(make_rejection(SourceFormat.SYNPUF_CARRIER, file, f"row {row_number}",
                                             SynpufRejectionReason.BAD_BENEFICIARY.value, exc.message))
            continue
        if not member_id:
            rejections.append(make_rejection(SourceFormat.SYNPUF_CARRIER, file, f"row {row_number}",
                                             SynpufRejectionReason.BAD_BENEFICIARY.value,
                                             "expected a DESYNPUF_ID, found an empty value"))
            continue
        previous = members.get(member_id)
        gender = SEX_CODES.get(row.get("BENE_SEX_IDENT_CD", "").strip())
        if previous is not None:
            birth = birth or previous.birth_date
            death = death or previous.death_date
            gender = gender or previous.gender
        members[member_id] = Beneficiary(birth_date=birth, death_date=death, gender=gender)
    return BeneficiaryIndex(members=members, rejections=tuple(rejections))


# ------------------------------------------------------------------------------------------------------ reading


def read_synpuf(path: Path | str, beneficiary_file: Path | None = None) -> Iterator[Claim | Rejection]:
    """Yield one claim or rejection per row of a carrier, inpatient or outpatient CSV (beneficiary rejections first)."""
    beneficiaries = load_beneficiaries(beneficiary_file) if beneficiary_file is not None else None
    if beneficiaries is not None:
        yield from beneficiaries.rejections
    yield from read_synpuf_claims(Path(path), beneficiaries.members if beneficiaries is not None else {})


def read_synpuf_claims(path: Path, beneficiaries: Mapping[str, Beneficiary]) -> Iterator[Claim | Rejection]:
    """The claim rows of one SynPUF CSV joined with already loaded beneficiaries (the registry loads them once)."""
    kind = sniff_synpuf_file(path)
    if kind is None or kind is SynpufFile.BENEFICIARY:
        found = "a beneficiary summary file (pass it as the beneficiary file)" if kind else "no SynPUF claim header"
        raise UnrecognizedInputError(
            f"{path}: expected a DE-SynPUF carrier, inpatient or outpatient CSV header, found {found}"
        )
    fmt = FILE_FORMATS[kind]
    file = str(path)
    row_rejections: list[Rejection] = []
    for row_number, row in _rows(path, kind, row_rejections):
        yield from row_rejections
        row_rejections.clear()
        location = f"row {row_number}"
        source = Source(format=fmt, file=file, locator=location)
        try:
            if kind is SynpufFile.CARRIER:
                yield _carrier_claim(row, source, beneficiaries)
            else:
                yield _institutional_claim(row, kind, source, beneficiaries)
        except _RowError as exc:
            yield make_rejection(fmt, file, location, exc.reason.value, exc.message)
        except ValidationError as exc:
            yield make_rejection(fmt, file, location, SynpufRejectionReason.UNMAPPABLE.value,
                                 f"row maps to an invalid canonical claim: {describe_validation_error(exc)}")
    yield from row_rejections


def sniff_synpuf_file(path: Path) -> SynpufFile | None:
    """The SynPUF file kind from the header line of `path`, or None."""
    with open_input(path) as stream:
        header = stream.readline(1 << 16).decode("utf-8-sig", errors="replace")
    try:
        columns = next(csv.reader([header]), [])
    except csv.Error:
        return None
    return classify_header(columns)


def _rows(path: Path, kind: SynpufFile, rejections: list[Rejection]) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, column -> value) for each well-formed data row; malformed rows are appended to `rejections`.

    Bytes that are not UTF-8 are decoded as U+FFFD so that one bad row cannot stop the file; such a row is rejected.
    """
    fmt = FILE_FORMATS.get(kind, SourceFormat.SYNPUF_CARRIER)
    file = str(path)
    with open_input(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text:
        reader = csv.reader(text)
        try:
            header = [column.strip().upper() for column in next(reader)]
        except (StopIteration, csv.Error):
            return
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                rejections.append(make_rejection(fmt, file, f"row {reader.line_num}",
                                                 SynpufRejectionReason.BAD_ROW.value,
                                                 f"expected a CSV row, found a syntax error ({type(exc).__name__})"))
                continue
            row_number = reader.line_num
            if not values or all(not value.strip() for value in values):
                continue
            problem = _row_problem(values, len(header))
            if problem:
                rejections.append(make_rejection(fmt, file, f"row {row_number}",
                                                 SynpufRejectionReason.BAD_ROW.value, problem))
                continue
            yield row_number, dict(zip(header, values, strict=True))


def _row_problem(values: list[str], expected: int) -> str | None:
    if len(values) != expected:
        return f"expected {expected} fields as in the header, found {len(values)}"
    if any("\ufffd" in value or "\x00" in value for value in values):
        return "expected UTF-8 text, found undecodable bytes"
    return None


class _RowError(Exception):
    def __init__(self, reason: SynpufRejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _text(row: Mapping[str, str], column: str) -> str | None:
    value = row.get(column, "").strip()
    return value or None


def _date(row: Mapping[str, str], column: str) -> date | None:
    value = _text(row, column)
    if value is None:
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError(value)
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise _RowError(SynpufRejectionReason.BAD_DATE,
                        f"{column}: expected a YYYYMMDD date, found {len(value)} characters that are not one") from None


def _amount(row: Mapping[str, str], column: str) -> Decimal | None:
    value = _text(row, column)
    if value is None:
        return None
    amount = parse_decimal(value)
    if amount is None:
        raise _RowError(SynpufRejectionReason.BAD_AMOUNT,
                        f"{column}: expected a decimal amount, found non-numeric text")
    return amount


def _claim_id(row: Mapping[str, str]) -> str:
    claim_id = _text(row, "CLM_ID")
    if claim_id is None:
        raise _RowError(SynpufRejectionReason.MISSING_CLAIM_ID, "CLM_ID: expected a claim ID, found an empty value")
    segment = _text(row, "SEGMENT")
    return claim_id if segment in (None, "1") else f"{claim_id}-S{segment}"


def _beneficiary_person(row: Mapping[str, str], beneficiaries: Mapping[str, Beneficiary]) -> Person | None:
    member_id = _text(row, "DESYNPUF_ID")
    if member_id is None:
        return None
    facts = beneficiaries.get(member_id)
    if facts is None:
        return Person(member_id=member_id, relationship_code=SELF)
    return Person(member_id=member_id, birth_date=facts.birth_date, death_date=facts.death_date, gender=facts.gender,
                  relationship_code=SELF)


def _npi_provider(npi: str | None, entity_type: str = "1") -> Provider | None:
    return Provider(npi=npi, entity_type=entity_type) if npi else None


class _Diagnoses:
    """ICD-9-CM diagnoses in claim order, de-duplicated, so line diagnoses can be pointed at."""

    def __init__(self) -> None:
        self.items: list[Diagnosis] = []

    def add(self, code: str | None, qualifier: str | None = None) -> int | None:
        """The 1-based position of `code`, appending it when new; None for an empty slot."""
        if code is None:
            return None
        for position, existing in enumerate(self.items, start=1):
            if existing.code == code:
                return position
        if qualifier is None:
            qualifier = "BK" if not self.items else "BF"
        self.items.append(Diagnosis(code=code, system=DiagnosisSystem.ICD9CM, qualifier=qualifier))
        return len(self.items)


def _sum(values: list[Decimal | None]) -> Decimal | None:
    present = [value for value in values if value is not None]
    return sum(present, Decimal(0)) if present else None


# ------------------------------------------------------------------------------------------------------ carrier


def _carrier_claim(row: Mapping[str, str], source: Source, beneficiaries: Mapping[str, Beneficiary]) -> Claim:
    claim_id = _claim_id(row)
    diagnoses = _Diagnoses()
    for slot in range(1, CARRIER_DIAGNOSIS_SLOTS + 1):
        diagnoses.add(_text(row, f"ICD9_DGNS_CD_{slot}"))
    lines: list[ServiceLine] = []
    for slot in range(1, CARRIER_LINE_SLOTS + 1):
        line = _carrier_line(row, slot, len(lines) + 1, diagnoses)
        if line is not None:
            lines.append(line)
    person = _beneficiary_person(row, beneficiaries)
    tax_id = next((line.rendering_provider.tax_id for line in lines
                   if line.rendering_provider is not None and line.rendering_provider.tax_id), None)
    return Claim(
        claim_id=claim_id,
        claim_type=ClaimType.PROFESSIONAL,
        billing_provider=Provider(tax_id=tax_id) if tax_id else None,
        rendering_provider=next((line.rendering_provider for line in lines
                                 if line.rendering_provider is not None and line.rendering_provider.npi), None),
        payer=MEDICARE,
        subscriber=person,
        patient=person,
        service_date_from=_date(row, "CLM_FROM_DT"),
        service_date_to=_date(row, "CLM_THRU_DT"),
        diagnoses=diagnoses.items,
        lines=lines,
        total_charge=_sum([line.charge for line in lines]),
        allowed_amount=_sum([line.allowed_amount for line in lines]),
        paid_amount=_sum([line.paid_amount for line in lines]),
        source=source,
    )


def _carrier_line(row: Mapping[str, str], slot: int, line_number: int, diagnoses: _Diagnoses) -> ServiceLine | None:
    """The service line in slot `slot`, or None when the slot is empty (no codes, no provider, zero amounts)."""
    hcpcs = _text(row, f"HCPCS_CD_{slot}")
    npi = _text(row, f"PRF_PHYSN_NPI_{slot}")
    line_diagnosis = _text(row, f"LINE_ICD9_DGNS_CD_{slot}")
    tax_id = _text(row, f"TAX_NUM_{slot}")
    amount_columns = [f"{prefix}_{slot}" for prefix in CARRIER_AMOUNT_PREFIXES]
    # Most of the 13 slots are empty ('' or '0' amounts): skip them before parsing any decimal.
    identified = bool(hcpcs or npi or line_diagnosis or tax_id)
    if not identified and all(row.get(column, "").strip() in ZERO_TEXTS for column in amount_columns):
        return None
    amounts = {column: _amount(row, column) for column in amount_columns}
    if not (identified or any(amounts.values())):
        return None
    allowed = amounts[f"LINE_ALOWD_CHRG_AMT_{slot}"]
    paid = amounts[f"LINE_NCH_PMT_AMT_{slot}"]
    pointer = diagnoses.add(line_diagnosis)
    rendering = Provider(npi=npi, tax_id=tax_id, entity_type="1" if npi else None) if npi or tax_id else None
    return ServiceLine(
        line_number=line_number,
        procedure_code=hcpcs,
        procedure_system=ProcedureSystem.HCPCS if hcpcs else None,
        # No billed-charge column exists: the allowed amount stands in for the charge (see the module docstring).
        charge=allowed,
        allowed_amount=allowed,
        paid_amount=paid,
        diagnosis_pointers=[pointer] if pointer is not None else [],
        rendering_provider=rendering,
    )


# ------------------------------------------------------------------------------------------------ institutional


def _institutional_claim(row: Mapping[str, str], kind: SynpufFile, source: Source,
                         beneficiaries: Mapping[str, Beneficiary]) -> Claim:
    claim_id = _claim_id(row)
    diagnoses = _Diagnoses()
    for slot in range(1, INSTITUTIONAL_DIAGNOSIS_SLOTS + 1):
        diagnoses.add(_text(row, f"ICD9_DGNS_CD_{slot}"))
    admitting = _text(row, "ADMTNG_ICD9_DGNS_CD")
    if admitting is not None and all(d.code != admitting for d in diagnoses.items):
        diagnoses.add(admitting, qualifier="BJ")
    lines: list[ServiceLine] = []
    for slot in range(1, INSTITUTIONAL_HCPCS_SLOTS + 1):
        hcpcs = _text(row, f"HCPCS_CD_{slot}")
        if hcpcs:
            lines.append(ServiceLine(line_number=len(lines) + 1, procedure_code=hcpcs,
                                     procedure_system=ProcedureSystem.HCPCS))
    for slot in range(1, INSTITUTIONAL_PROCEDURE_SLOTS + 1):
        procedure = _text(row, f"ICD9_PRCDR_CD_{slot}")
        if procedure:
            lines.append(ServiceLine(line_number=len(lines) + 1, procedure_code=procedure,
                                     procedure_system=ProcedureSystem.ICD9PCS))
    person = _beneficiary_person(row, beneficiaries)
    provider_number = _text(row, "PRVDR_NUM")
    return Claim(
        claim_id=claim_id,
        claim_type=ClaimType.INSTITUTIONAL,
        billing_provider=Provider(name=f"CCN {provider_number}", entity_type="2") if provider_number else None,
        attending_provider=_npi_provider(_text(row, "AT_PHYSN_NPI")),
        rendering_provider=_npi_provider(_text(row, "OP_PHYSN_NPI")),
        payer=MEDICARE,
        subscriber=person,
        patient=person,
        service_date_from=_date(row, "CLM_FROM_DT"),
        service_date_to=_date(row, "CLM_THRU_DT"),
        admission_date=_date(row, "CLM_ADMSN_DT") if kind is SynpufFile.INPATIENT else None,
        discharge_date=_date(row, "NCH_BENE_DSCHRG_DT") if kind is SynpufFile.INPATIENT else None,
        diagnoses=diagnoses.items,
        lines=lines,
        paid_amount=_amount(row, "CLM_PMT_AMT"),
        drg_code=_text(row, "CLM_DRG_CD"),
        source=source,
    )
