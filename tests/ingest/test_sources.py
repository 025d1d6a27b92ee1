"""Bodies and files to records: media types, bodies refused as a whole (HTTP 400/415), and the fixtures of every
format read from bytes exactly as from their files, with no temporary path leaking into a record."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.adapters.registry import read_claims
from libs.ingest import (
    MediaType,
    UnreadableInputError,
    UnsupportedMediaTypeError,
    media_type,
    records_from_bytes,
    records_from_files,
)
from libs.model import Claim, Rejection
from libs.settings import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.mark.parametrize(("header", "expected"), [
    ("application/json", MediaType.JSON),
    ("application/json; charset=utf-8", MediaType.JSON),
    ("Application/X-NDJSON", MediaType.NDJSON),
    ("application/ndjson", MediaType.NDJSON),
    ("application/edi-x12", MediaType.X12),
    ("application/fhir+json; fhirVersion=4.0", MediaType.FHIR),
    ("application/fhir+ndjson", MediaType.FHIR_NDJSON),
])
def test_media_types_map_to_their_adapter(header, expected):
    assert media_type(header) is expected


@pytest.mark.parametrize("header", ["text/plain", "application/xml", "", None])
def test_unknown_media_type_names_the_supported_ones(header):
    with pytest.raises(UnsupportedMediaTypeError) as raised:
        media_type(header)
    message = str(raised.value)
    assert "application/edi-x12" in message
    assert "application/fhir+json" in message
    assert message.endswith("found " + (header or "none"))


@pytest.mark.parametrize(("body", "kind", "expected"), [
    (b"", MediaType.JSON, "found an empty one"),
    (b"  \n ", MediaType.NDJSON, "found an empty one"),
    (b'{"claim_id": "\xff"}', MediaType.JSON, "not UTF-8 at offset 14"),
    (b'{"claim_id": ', MediaType.JSON, "found invalid JSON at line 1"),
    (b'{"resourceType": "Claim",', MediaType.FHIR, "found invalid JSON at line 1"),
    (b"GS*HC*SENDER~ST*837*0001~", MediaType.X12, "starting with an ISA segment, found none"),
])
def test_a_body_not_in_its_declared_format_is_refused_whole(body, kind, expected):
    with pytest.raises(UnreadableInputError, match=expected):
        records_from_bytes(body, kind, "request:t")


def test_ndjson_lines_that_are_not_json_are_rejections_not_a_refused_body():
    good = (FIXTURES / "json" / "claims.ndjson").read_bytes().splitlines()[0]
    records = records_from_bytes(good + b"\n{not json\n", MediaType.NDJSON, "request:t")
    assert [type(record) for record in records] == [Claim, Rejection]
    rejection = records[1]
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.location) == ("JSON_MALFORMED", "line 2")


@pytest.mark.parametrize(("fixture", "kind"), [
    ("x12/837p_multi.837", MediaType.X12),
    ("x12/837i_institutional.837", MediaType.X12),
    ("fhir/bundle.json", MediaType.FHIR),
    ("fhir/claim_professional.json", MediaType.FHIR),
    ("fhir/eob_institutional.json", MediaType.FHIR),
    ("fhir/resources.ndjson", MediaType.FHIR_NDJSON),
    ("json/claim.json", MediaType.JSON),
    ("json/claims_array.json", MediaType.JSON),
    ("json/claims.ndjson", MediaType.NDJSON),
])
def test_a_body_gives_the_same_records_as_its_file(fixture, kind):
    path = FIXTURES / fixture
    from_file = list(read_claims([path]))
    from_body = records_from_bytes(path.read_bytes(), kind, "request:abc")
    assert len(from_body) == len(from_file) > 0
    for body_record, file_record in zip(from_body, from_file, strict=True):
        assert type(body_record) is type(file_record)
        if isinstance(body_record, Claim) and isinstance(file_record, Claim):
            assert body_record.claim_id == file_record.claim_id
            assert body_record.model_dump(exclude={"source"}) == file_record.model_dump(exclude={"source"})
        # The body's records say where they came from: the request, never a temporary file.
        dumped = body_record.model_dump_json()
        assert "claims-ingest-" not in dumped
        assert "/tmp" not in dumped
    assert {record.source.file for record in from_body} <= {"request:abc", *(r.source.file for r in from_file)}


def test_missing_files_are_named_before_anything_is_read(tmp_path: Path):
    with pytest.raises(UnreadableInputError, match=r"found no such file: .*nope\.837"):
        records_from_files([FIXTURES / "x12" / "837p_multi.837", tmp_path / "nope.837"])


def test_a_file_in_no_known_format_is_refused(tmp_path: Path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("just some text\n", encoding="utf-8")
    with pytest.raises(UnreadableInputError, match=r"notes\.txt"):
        records_from_files([unknown])
