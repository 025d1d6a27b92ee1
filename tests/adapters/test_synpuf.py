"""CMS DE-SynPUF adapter: header detection, wide line slots, beneficiary join, row rejections, robustness."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.adapters import SynpufRejectionReason, UnrecognizedInputError, load_beneficiaries, read_synpuf
from libs.adapters.synpuf import SynpufFile, sniff_synpuf_file
from libs.model import Claim, ClaimType, DiagnosisSystem, ProcedureSystem, Rejection, SourceFormat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "synpuf"
CARRIER = FIXTURES / "carrier.csv"
INPATIENT = FIXTURES / "inpatient.csv"
OUTPATIENT = FIXTURES / "outpatient.csv"
BENEFICIARY = FIXTURES / "beneficiary.csv"


def _claims(path: Path, beneficiary: Path | None = None) -> list[Claim]:
    return [record for record in read_synpuf(path, beneficiary) if isinstance(record, Claim)]


def _rejections(path: Path, beneficiary: Path | None = None) -> list[Rejection]:
    return [record for record in read_synpuf(path, beneficiary) if isinstance(record, Rejection)]


@pytest.mark.parametrize(("path", "kind"), [(CARRIER, SynpufFile.CARRIER), (INPATIENT, SynpufFile.INPATIENT),
                                            (OUTPATIENT, SynpufFile.OUTPATIENT),
                                            (BENEFICIARY, SynpufFile.BENEFICIARY)])
def test_file_kind_is_detected_from_the_header(path: Path, kind: SynpufFile) -> None:
    assert sniff_synpuf_file(path) is kind


def test_carrier_row_maps_header_codes_and_member() -> None:
    claim = _claims(CARRIER)[0]
    assert claim.claim_id == "900000000000001"
    assert claim.claim_type is ClaimType.PROFESSIONAL
    assert claim.source.format is SourceFormat.SYNPUF_CARRIER
    assert claim.source.locator == "row 2"
    assert (claim.service_date_from, claim.service_date_to) == (date(2009, 3, 1), date(2009, 3, 2))
    # Codes stay strings with their leading zeros; all diagnoses are ICD-9-CM, the first principal.
    assert [d.code for d in claim.diagnoses] == ["0416", "V5869", "4019", "V048"]
    assert {d.system for d in claim.diagnoses} == {DiagnosisSystem.ICD9CM}
    assert [d.qualifier for d in claim.diagnoses] == ["BK", "BF", "BF", "BF"]
    assert claim.patient is not None
    assert claim.patient.member_id == "00000SYNTH00001A"
    assert claim.member_key() == "00000SYNTH00001A"


def test_carrier_wide_slots_become_lines_with_allowed_as_charge() -> None:
    claim = _claims(CARRIER)[0]
    assert [line.procedure_code for line in claim.lines] == ["99213", "G0008"]  # 11 empty slots skipped
    first, second = claim.lines
    assert first.procedure_system is ProcedureSystem.HCPCS
    assert (first.charge, first.allowed_amount, first.paid_amount) == (
        Decimal("85.00"), Decimal("85.00"), Decimal("60.00"))
    assert first.rendering_provider is not None
    assert (first.rendering_provider.npi, first.rendering_provider.tax_id) == ("1234567893", "990000001")
    # A line diagnosis the header lacks is appended so the line can point at it.
    assert (first.diagnosis_pointers, second.diagnosis_pointers) == ([1], [4])
    assert (claim.total_charge, claim.allowed_amount, claim.paid_amount) == (
        Decimal("110.50"), Decimal("110.50"), Decimal("80.50"))
    assert claim.billing_provider is not None
    assert (claim.billing_provider.npi, claim.billing_provider.tax_id) == (None, "990000001")
    assert claim.payer is not None


def test_bad_carrier_rows_are_rejected_with_row_numbers_and_columns() -> None:
    rejections = _rejections(CARRIER)
    assert [(r.location, r.reason) for r in rejections] == [
        ("row 4", SynpufRejectionReason.BAD_DATE),
        ("row 5", SynpufRejectionReason.BAD_AMOUNT),
        ("row 6", SynpufRejectionReason.MISSING_CLAIM_ID),
        ("row 7", SynpufRejectionReason.BAD_ROW),
    ]
    assert "CLM_FROM_DT" in rejections[0].message
    assert "2010-01-15" not in rejections[0].message
    assert "LINE_ALOWD_CHRG_AMT_1" in rejections[1].message
    assert "twelve" not in rejections[1].message
    assert "expected 142 fields" in rejections[3].message
    assert "00000SYNTH" not in " ".join(r.message for r in rejections)


def test_every_carrier_row_becomes_a_claim_or_a_rejection() -> None:
    records = list(read_synpuf(CARRIER))
    assert [r.source.locator for r in records] == [f"row {n}" for n in range(2, 8)]


def test_inpatient_row_maps_institutional_fields() -> None:
    claim = _claims(INPATIENT)[0]
    assert claim.claim_type is ClaimType.INSTITUTIONAL
    assert claim.source.format is SourceFormat.SYNPUF_INPATIENT
    assert (claim.admission_date, claim.discharge_date) == (date(2009, 2, 8), date(2009, 2, 10))
    assert claim.drg_code == "494"
    assert claim.paid_amount == Decimal("13000")
    assert claim.total_charge is None  # no billed charge in the file
    assert claim.attending_provider is not None
    assert claim.attending_provider.npi == "1234567893"
    assert claim.rendering_provider is not None
    assert claim.rendering_provider.npi == "1245319599"
    assert claim.billing_provider is not None
    assert claim.billing_provider.name == "CCN 3900XY"
    assert [(d.code, d.qualifier) for d in claim.diagnoses] == [
        ("71537", "BK"), ("0416", "BF"), ("4019", "BF"), ("7295", "BJ")]
    assert [(line.procedure_code, line.procedure_system) for line in claim.lines] == [
        ("8154", ProcedureSystem.ICD9PCS), ("9904", ProcedureSystem.ICD9PCS)]


def test_later_segments_get_a_distinct_claim_id() -> None:
    assert [claim.claim_id for claim in _claims(INPATIENT)] == ["910000000000001", "910000000000001-S2"]


def test_outpatient_row_maps_hcpcs_lines_without_inpatient_dates() -> None:
    (claim,) = _claims(OUTPATIENT)
    assert claim.source.format is SourceFormat.SYNPUF_OUTPATIENT
    assert [line.procedure_code for line in claim.lines] == ["80053", "36415"]
    assert claim.admission_date is None
    assert [d.code for d in claim.diagnoses] == ["V7231", "4019"]  # admitting diagnosis already listed


def test_beneficiary_file_joins_birth_death_and_sex() -> None:
    first, second = _claims(CARRIER, BENEFICIARY)[:2]
    assert first.patient is not None
    assert (first.patient.birth_date, first.patient.death_date, first.patient.gender) == (
        date(1923, 5, 1), None, "F")
    assert second.patient is not None
    assert (second.patient.birth_date, second.patient.death_date, second.patient.gender) == (
        date(1940, 1, 2), date(2010, 12, 1), "M")
    assert first.subscriber == first.patient


def test_bad_beneficiary_row_is_reported_once_without_its_values() -> None:
    index = load_beneficiaries(BENEFICIARY)
    assert sorted(index.members) == ["00000SYNTH00001A", "00000SYNTH00002B"]
    (rejection,) = index.rejections
    assert (rejection.location, rejection.reason) == ("row 4", SynpufRejectionReason.BAD_BENEFICIARY)
    assert "1940XX02" not in rejection.message
    assert "00000SYNTH00009Z" not in rejection.message


def test_non_synpuf_file_is_unrecognized(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("A,B,C\n1,2,3\n")
    with pytest.raises(UnrecognizedInputError, match=r"other\.csv"):
        list(read_synpuf(path))


def test_beneficiary_file_as_claims_input_is_unrecognized() -> None:
    with pytest.raises(UnrecognizedInputError, match="beneficiary"):
        list(read_synpuf(BENEFICIARY))


def test_undecodable_bytes_reject_only_their_row(tmp_path: Path) -> None:
    lines = OUTPATIENT.read_bytes().splitlines(keepends=True)
    path = tmp_path / "outpatient.csv"
    path.write_bytes(lines[0] + lines[1].replace(b"3901AB", b"39\xff1AB") + lines[1])
    records = list(read_synpuf(path))
    assert [type(r).__name__ for r in records] == ["Rejection", "Claim"]
    assert isinstance(records[0], Rejection)
    assert records[0].reason == SynpufRejectionReason.BAD_ROW


CARRIER_BYTES = CARRIER.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(CARRIER_BYTES)), noise=st.binary(max_size=60),
       position=st.integers(min_value=0, max_value=len(CARRIER_BYTES)))
def test_truncated_or_corrupted_csv_never_raises(tmp_path: Path, cut: int, noise: bytes, position: int) -> None:
    corrupted = CARRIER_BYTES[:position] + noise + CARRIER_BYTES[position:]
    path = tmp_path / "carrier.csv"
    path.write_bytes(corrupted[: max(cut, CARRIER_BYTES.index(b"\n") + 1)])
    try:
        records = list(read_synpuf(path))
    except UnrecognizedInputError:
        return  # noise landed in the header: the file is no longer a SynPUF file, which is an input error
    assert all(isinstance(record, Claim | Rejection) for record in records)
