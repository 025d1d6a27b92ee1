"""Canonical JSON adapter: NDJSON, single object and array shapes, exact decimals, rejections without PHI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.adapters import JsonRejectionReason, read_canonical
from libs.model import Claim, Rejection, SourceFormat
from tests.factories import make_institutional_claim, make_professional_claim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "json"


def _summary(path: Path) -> list[tuple[str | None, str]]:
    return [(r.source.locator if isinstance(r, Rejection) else r.claim_id,
             r.reason if isinstance(r, Rejection) else "claim") for r in read_canonical(path)]


def test_ndjson_yields_one_record_per_non_blank_line() -> None:
    assert _summary(FIXTURES / "claims.ndjson") == [
        ("PCLM0001", "claim"),
        ("PCLM0002", "claim"),
        ("line 3", JsonRejectionReason.MALFORMED),
        ("PCLM0004", "claim"),
        ("line 6", JsonRejectionReason.INVALID_CLAIM),
        ("line 7", JsonRejectionReason.NOT_AN_OBJECT),
    ]


def test_round_trip_preserves_the_claim_and_its_original_source() -> None:
    first = next(iter(read_canonical(FIXTURES / "claims.ndjson")))
    assert first == make_professional_claim()
    assert first.source.format is SourceFormat.SYNTHETIC


def test_claim_without_source_gets_this_file_and_line() -> None:
    claim = [r for r in read_canonical(FIXTURES / "claims.ndjson") if isinstance(r, Claim)][2]
    assert claim.claim_id == "PCLM0004"
    assert claim.source.format is SourceFormat.JSON
    assert claim.source.locator == "line 5"
    assert claim.source.file is not None
    assert claim.source.file.endswith("claims.ndjson")


def test_invalid_claim_message_lists_locations_and_types_only() -> None:
    rejection = [r for r in read_canonical(FIXTURES / "claims.ndjson") if isinstance(r, Rejection)][1]
    assert rejection.message == "expected a canonical claim: claim_type (enum); lines.0.charge (decimal_parsing)"
    assert "TESTPATIENT" not in rejection.message


def test_pretty_printed_single_object_is_one_claim() -> None:
    (claim,) = read_canonical(FIXTURES / "claim.json")
    assert claim == make_institutional_claim()


def test_array_elements_are_located_by_position() -> None:
    assert _summary(FIXTURES / "claims_array.json") == [
        ("PCLM0001", "claim"),
        ("element 2", JsonRejectionReason.INVALID_CLAIM),
        ("element 3", JsonRejectionReason.NOT_AN_OBJECT),
    ]


def test_amounts_are_exact_decimals_even_when_written_as_json_numbers(tmp_path: Path) -> None:
    data = json.loads(make_professional_claim().model_dump_json())
    path = tmp_path / "numbers.ndjson"
    path.write_text(json.dumps(data).replace('"165.50"', "165.50").replace('"40.50"', "40.50") + "\n")
    (claim,) = read_canonical(path)
    assert isinstance(claim, Claim)
    assert claim.total_charge == Decimal("165.50")
    assert str(claim.lines[1].charge) == "40.50"


def test_ndjson_with_broken_first_line_keeps_the_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "broken.ndjson"
    path.write_text('{"claim_id": \n' + make_professional_claim().model_dump_json() + "\n")
    assert [type(r).__name__ for r in read_canonical(path)] == ["Rejection", "Claim"]


def test_malformed_document_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "claim_id": "TESTPATIENT",\n  "claim_type": \n')
    (rejection,) = read_canonical(path)
    assert isinstance(rejection, Rejection)
    assert (rejection.location, rejection.reason) == ("document", JsonRejectionReason.MALFORMED)
    assert "TESTPATIENT" not in rejection.message


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_text("\n\n")
    assert list(read_canonical(path)) == []


NDJSON_BYTES = (FIXTURES / "claims.ndjson").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(NDJSON_BYTES)), noise=st.binary(max_size=40))
def test_truncated_or_noisy_input_never_raises(tmp_path: Path, cut: int, noise: bytes) -> None:
    path = tmp_path / "fuzz.ndjson"
    path.write_bytes(noise + NDJSON_BYTES[:cut])
    assert all(isinstance(record, Claim | Rejection) for record in read_canonical(path))
