"""Inputs to records: claim files and request bodies, through the adapters, as claims and rejections.

Why here and not in each caller: `claims produce FILE...` and `POST /v1/claims` must accept exactly the same formats
and turn the same bytes into the same claims. Files are sniffed by content (libs.adapters.registry); a request body
declares its format with its media type, and a body that is not in that format at all (not UTF-8, not JSON, no ISA
segment) is refused as a whole (`UnreadableInputError`, HTTP 400) before anything is produced. Inside a readable
input every record becomes a claim or a rejection with a reason code and a location, as the adapters promise.

Bodies are read by the same file adapters as files: the bytes are written to a private temporary file (0600, in a
0700 directory, removed at once) and the records' `source.file` is set to the caller's name for the body (for the
API `request:<correlation id>`), so no temporary path leaks into Kafka or into an answer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path

import orjson

from libs.adapters.errors import AdapterError
from libs.adapters.registry import InputFormat, read_claims
from libs.adapters.x12 import sniff_x12
from libs.ingest.errors import UnreadableInputError, UnsupportedMediaTypeError
from libs.model import Claim, Rejection

Record = Claim | Rejection


class MediaType(StrEnum):
    """Request body media types the ingestion API reads, and the adapter each one goes to."""

    JSON = "application/json"  # one canonical claim or an array of them
    NDJSON = "application/x-ndjson"  # canonical claims, one per line
    X12 = "application/edi-x12"  # an X12 837P/837I interchange
    FHIR = "application/fhir+json"  # a Claim, an ExplanationOfBenefit or a Bundle of them
    FHIR_NDJSON = "application/fhir+ndjson"  # FHIR bulk data: one resource (or Bundle) per line

    @property
    def input_format(self) -> InputFormat:
        """The adapter that reads this media type."""
        return _FORMATS[self]


_FORMATS = {
    MediaType.JSON: InputFormat.JSON,
    MediaType.NDJSON: InputFormat.JSON,
    MediaType.X12: InputFormat.X12,
    MediaType.FHIR: InputFormat.FHIR,
    MediaType.FHIR_NDJSON: InputFormat.FHIR,
}
_ALIASES = {"application/ndjson": MediaType.NDJSON, "application/jsonl": MediaType.NDJSON,
            "application/x-jsonlines": MediaType.NDJSON, "application/edi": MediaType.X12}
_SUFFIXES = {MediaType.JSON: ".json", MediaType.NDJSON: ".ndjson", MediaType.X12: ".x12", MediaType.FHIR: ".json",
             MediaType.FHIR_NDJSON: ".ndjson"}
_UTF8_BOM = b"\xef\xbb\xbf"


def media_type(content_type: str | None) -> MediaType:
    """The MediaType of a Content-Type header (parameters such as charset ignored); UnsupportedMediaTypeError else."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    found = _ALIASES.get(essence)
    if found is None:
        try:
            found = MediaType(essence)
        except ValueError:
            supported = ", ".join(member.value for member in MediaType)
            shown = essence if essence and len(essence) <= 100 and essence.isascii() else "none"
            msg = f"expected Content-Type {supported}; found {shown}"
            raise UnsupportedMediaTypeError(msg) from None
    return found


def check_readable(body: bytes, kind: MediaType) -> None:
    """Refuse a body that is not in its declared format at all (UnreadableInputError); per-record problems pass."""
    if not body.strip():
        msg = f"expected a {kind.value} request body, found an empty one"
        raise UnreadableInputError(msg)
    content = body.removeprefix(_UTF8_BOM)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"expected a UTF-8 {kind.value} body, found a byte that is not UTF-8 at offset {exc.start}"
        raise UnreadableInputError(msg) from None
    if kind is MediaType.X12:
        if not sniff_x12(content):
            msg = "expected an X12 interchange starting with an ISA segment, found none"
            raise UnreadableInputError(msg)
    elif kind in (MediaType.JSON, MediaType.FHIR):
        try:
            orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            msg = (f"expected one JSON document ({kind.value}), found invalid JSON at line {exc.lineno} "
                   f"column {exc.colno}")
            raise UnreadableInputError(msg) from None


def records_from_bytes(body: bytes, kind: MediaType, name: str) -> list[Record]:
    """Every claim and rejection in a request body; `name` replaces the temporary file name in `source.file`."""
    check_readable(body, kind)
    with tempfile.TemporaryDirectory(prefix="claims-ingest-") as directory:
        path = Path(directory) / f"body{_SUFFIXES[kind]}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
        try:
            records = list(read_claims([path], kind.input_format))
        except AdapterError as exc:
            msg = f"{name}: expected {kind.value}; {str(exc).replace(str(path), 'the body')}"
            raise UnreadableInputError(msg) from None
    return [_renamed(record, {str(path), path.name}, name) for record in records]


def records_from_files(paths: Sequence[Path | str], input_format: InputFormat = InputFormat.AUTO,
                       beneficiary_file: Path | None = None) -> Iterator[Record]:
    """Claims and rejections of every file, in order; files that are missing or unrecognisable raise up front."""
    missing = [str(path) for path in paths if not Path(path).exists()]
    if missing:
        msg = f"expected claim files, found no such file: {', '.join(missing)}"
        raise UnreadableInputError(msg)
    try:
        return read_claims(list(paths), input_format, beneficiary_file)
    except AdapterError as exc:
        raise UnreadableInputError(str(exc)) from None


def _renamed(record: Record, temporary: set[str], name: str) -> Record:
    """The record with the temporary file name replaced by `name` (a claim's own original source is kept)."""
    if record.source.file not in temporary:
        return record
    return record.model_copy(update={"source": record.source.model_copy(update={"file": name})})
