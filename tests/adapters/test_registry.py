"""Format registry: content sniffing, eager input checks, dispatch to adapters, one beneficiary join for all files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from libs.adapters import (
    InputFormat,
    InputUnreadableError,
    UnrecognizedInputError,
    detect_format,
    read_claims,
    sniff_format,
)
from libs.adapters.errors import AdapterError
from libs.model import Claim, Rejection, SourceFormat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# A small synthetic 837P (005010X222A1) written for this test: one claim, one line.
X12_837P = (
    "ISA*00*          *00*          *ZZ*SYNSUBMIT      *ZZ*SYNPAYER       *260701*1200*^*00501*000000001*0*T*:~"
    "GS*HC*SYNSUBMIT*SYNPAYER*20260701*1200*1*X*005010X222A1~"
    "ST*837*0001*005010X222A1~"
    "BHT*0019*00*0001*20260701*1200*CH~"
    "NM1*41*2*SYNTHETIC SUBMITTER*****46*SYN01~"
    "PER*IC*SUPPORT*TE*5555550100~"
    "NM1*40*2*SYNTHETIC PAYER*****46*SYNPAYER~"
    "HL*1**20*1~"
    "NM1*85*2*SYNTHETIC CLINIC*****XX*1234567893~"
    "N3*1 CLINIC WAY~"
    "N4*SAMPLETOWN*PA*17111~"
    "REF*EI*991234567~"
    "HL*2*1*22*0~"
    "SBR*P*18*******CI~"
    "NM1*IL*1*TESTPATIENT*ALEX****MI*SYN000123456~"
    "DMG*D8*19580314*F~"
    "NM1*PR*2*SYNTHETIC PAYER*****PI*SYNPAYER~"
    "CLM*X12CLM001*125.00***11:B:1*Y*A*Y*Y~"
    "HI*ABK:E119~"
    "LX*1~"
    "SV1*HC:99213*125.00*UN*1***1~"
    "DTP*472*D8*20260615~"
    "SE*21*0001~"
    "GE*1*1~"
    "IEA*1*000000001~"
)


@pytest.fixture
def x12_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.txt"  # the name says nothing: the content decides
    path.write_text(X12_837P)
    return path


@pytest.mark.parametrize(("relative", "expected"), [
    ("fhir/claim_professional.json", InputFormat.FHIR),
    ("fhir/bundle.json", InputFormat.FHIR),
    ("fhir/resources.ndjson", InputFormat.FHIR),
    ("json/claims.ndjson", InputFormat.JSON),
    ("json/claim.json", InputFormat.JSON),
    ("json/claims_array.json", InputFormat.JSON),
    ("synpuf/carrier.csv", InputFormat.SYNPUF),
    ("synpuf/inpatient.csv", InputFormat.SYNPUF),
    ("synpuf/outpatient.csv", InputFormat.SYNPUF),
])
def test_fixtures_are_detected_by_content(relative: str, expected: InputFormat) -> None:
    assert detect_format(FIXTURES / relative) is expected


def test_misleading_extension_does_not_fool_detection(tmp_path: Path, x12_file: Path) -> None:
    disguised = tmp_path / "really-fhir.csv"
    shutil.copy(FIXTURES / "fhir" / "eob_institutional.json", disguised)
    assert detect_format(disguised) is InputFormat.FHIR
    assert detect_format(x12_file) is InputFormat.X12


@pytest.mark.parametrize(("head", "expected"), [
    (b"\xef\xbb\xbf  ISA*00*          *00*", InputFormat.X12),
    (b'\n\n{"resourceType": "Bundle"}', InputFormat.FHIR),
    (b'[{"claim_id": "A", "note": "resourceType"}]', InputFormat.JSON),
    (b'{"claim_id": "A"}', InputFormat.JSON),
    (b'"DESYNPUF_ID","CLM_ID","CLM_FROM_DT","CLM_THRU_DT","ICD9_DGNS_CD_1","PRF_PHYSN_NPI_1"\n', InputFormat.SYNPUF),
    (b"name,date\nA,B\n", None),
    (b"", None),
])
def test_sniff_format(head: bytes, expected: InputFormat | None) -> None:
    assert sniff_format(head) is expected


def test_unrecognised_and_empty_files_raise_naming_the_file(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(UnrecognizedInputError, match=r"notes\.txt"):
        detect_format(other)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(UnrecognizedInputError, match="empty file"):
        detect_format(empty)


def test_missing_file_and_directory_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputUnreadableError, match=r"nope\.json"):
        detect_format(tmp_path / "nope.json")
    with pytest.raises(InputUnreadableError, match="directory"):
        read_claims([tmp_path], InputFormat.JSON)


def test_errors_share_one_root() -> None:
    assert issubclass(InputUnreadableError, AdapterError)
    assert issubclass(UnrecognizedInputError, AdapterError)


def test_read_claims_checks_every_input_before_reading_any(tmp_path: Path) -> None:
    # read_claims raises at call time, so no caller can emit half a conversion.
    with pytest.raises(InputUnreadableError):
        read_claims([FIXTURES / "json" / "claim.json", tmp_path / "missing.ndjson"])


def test_read_claims_mixes_formats_in_input_order(x12_file: Path) -> None:
    records = list(read_claims([x12_file, FIXTURES / "fhir" / "claim_professional.json",
                                FIXTURES / "synpuf" / "outpatient.csv", FIXTURES / "json" / "claim.json"]))
    formats = [record.source.format for record in records]
    assert formats[0] in (SourceFormat.X12_837P, SourceFormat.X12_837I)
    assert formats[1:] == [SourceFormat.FHIR_CLAIM, SourceFormat.SYNPUF_OUTPATIENT, SourceFormat.SYNTHETIC]
    assert all(isinstance(record, Claim) for record in records)


def test_explicit_format_skips_detection(tmp_path: Path) -> None:
    path = tmp_path / "not-json.txt"
    path.write_text("plain text\n")
    (rejection,) = read_claims([path], InputFormat.JSON)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "JSON_MALFORMED"


def test_beneficiary_file_is_loaded_once_for_all_synpuf_inputs() -> None:
    synpuf = FIXTURES / "synpuf"
    records = list(read_claims([synpuf / "carrier.csv", synpuf / "outpatient.csv"],
                               beneficiary_file=synpuf / "beneficiary.csv"))
    beneficiary_rejections = [r for r in records if isinstance(r, Rejection) and r.reason == "SYNPUF_BAD_BENEFICIARY"]
    assert len(beneficiary_rejections) == 1
    outpatient = [r for r in records if isinstance(r, Claim) and r.source.format is SourceFormat.SYNPUF_OUTPATIENT]
    assert outpatient[0].patient is not None
    assert outpatient[0].patient.gender == "M"


def test_beneficiary_file_must_be_a_beneficiary_summary() -> None:
    with pytest.raises(UnrecognizedInputError, match="beneficiary summary"):
        read_claims([FIXTURES / "synpuf" / "carrier.csv"], beneficiary_file=FIXTURES / "synpuf" / "inpatient.csv")


def test_beneficiary_file_given_as_claims_input_is_unrecognised() -> None:
    with pytest.raises(UnrecognizedInputError, match="beneficiary"):
        read_claims([FIXTURES / "synpuf" / "beneficiary.csv"])
