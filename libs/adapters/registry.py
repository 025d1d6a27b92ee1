"""The format registry: recognise an input file by its content and read it with the right adapter.

Why this module exists: operators and pipelines hand over files whose names lie or say nothing ('claims.txt',
'export.dat'), so the format is decided by sniffing the first bytes: an ISA segment is X12, a JSON document with
`resourceType` is FHIR, other JSON is canonical claims, a CSV header with DESYNPUF_ID is CMS SynPUF. Every caller
(CLI, producer, batch jobs) reads inputs through `read_claims`, so they all accept the same formats.

Files that cannot be opened or recognised raise (an operator error, there is no record to reject); everything inside a
recognised file becomes a claim or a rejection.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path

from libs.adapters.canonical import read_canonical
from libs.adapters.common import open_input
from libs.adapters.errors import UnrecognizedInputError
from libs.adapters.fhir import read_fhir
from libs.adapters.synpuf import (
    Beneficiary,
    SynpufFile,
    classify_header,
    load_beneficiaries,
    read_synpuf_claims,
    sniff_synpuf_file,
)
from libs.adapters.x12 import read_x12, sniff_x12
from libs.model import Claim, Rejection

SNIFF_BYTES = 64 * 1024
_RESOURCE_TYPE_KEY = re.compile(rb'"resourceType"\s*:')
_CLAIM_ID_KEY = re.compile(rb'"claim_id"\s*:')
_LEADING_NOISE = b"\xef\xbb\xbf \t\r\n"  # UTF-8 byte order mark and whitespace

Reader = Callable[[Path], Iterator[Claim | Rejection]]


class InputFormat(StrEnum):
    """Input formats `claims convert --format` accepts; AUTO sniffs each file."""

    AUTO = "auto"
    X12 = "x12"
    FHIR = "fhir"
    SYNPUF = "synpuf"
    JSON = "json"


def sniff_format(head: bytes) -> InputFormat | None:
    """The format the first bytes of a file are in, or None when they match none."""
    text = head.lstrip(_LEADING_NOISE)
    if sniff_x12(text):
        return InputFormat.X12
    if text[:1] in (b"{", b"["):
        # The first of the two keys wins: a canonical claim never has resourceType, a FHIR resource never claim_id,
        # but a canonical claim could quote one in free text further down.
        fhir_key = _RESOURCE_TYPE_KEY.search(text)
        claim_key = _CLAIM_ID_KEY.search(text)
        if fhir_key is not None and (claim_key is None or fhir_key.start() < claim_key.start()):
            return InputFormat.FHIR
        return InputFormat.JSON
    first_line = text.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        header = next(csv.reader([first_line]), [])
    except csv.Error:
        return None
    return InputFormat.SYNPUF if classify_header(header) is not None else None


def detect_format(path: Path) -> InputFormat:
    """The format of the file at `path`, decided by its content."""
    with open_input(path) as stream:
        head = stream.read(SNIFF_BYTES)
    found = sniff_format(head)
    if found is None:
        what = "an empty file" if not head.strip() else "none of them"
        raise UnrecognizedInputError(
            f"{path}: expected X12 837 (ISA segment), FHIR JSON (resourceType), canonical claim JSON/NDJSON or a "
            f"DE-SynPUF claims CSV header; found {what}"
        )
    return found


def plan_inputs(paths: Iterable[Path], input_format: InputFormat = InputFormat.AUTO) -> list[tuple[Path, InputFormat]]:
    """Each path with the format it will be read in; raises before any record is read if one cannot be used."""
    plan = []
    for path in paths:
        if input_format is InputFormat.AUTO:
            resolved = detect_format(path)
        else:
            with open_input(path):
                resolved = input_format
        if resolved is InputFormat.SYNPUF:
            kind = sniff_synpuf_file(path)
            if kind is None or kind is SynpufFile.BENEFICIARY:
                found = "a beneficiary summary file (pass it as the beneficiary file)" if kind else "another header"
                raise UnrecognizedInputError(
                    f"{path}: expected a DE-SynPUF carrier, inpatient or outpatient claims CSV, found {found}"
                )
        plan.append((path, resolved))
    return plan


def read_claims(
    paths: Iterable[Path | str],
    input_format: InputFormat = InputFormat.AUTO,
    beneficiary_file: Path | None = None,
) -> Iterator[Claim | Rejection]:
    """Claims and rejections from every input, in input order, each file streamed by its adapter.

    Inputs are checked up front: an unreadable or unrecognisable input (or beneficiary file) raises here, before any
    record is produced, so a caller never emits half a conversion for a command line that cannot succeed.
    """
    plan = plan_inputs([Path(path) for path in paths], input_format)
    if beneficiary_file is not None:
        kind = sniff_synpuf_file(beneficiary_file)
        if kind is not SynpufFile.BENEFICIARY:
            raise UnrecognizedInputError(
                f"{beneficiary_file}: expected a DE-SynPUF beneficiary summary CSV header (DESYNPUF_ID, BENE_BIRTH_DT)"
            )
    return _stream(plan, beneficiary_file)


def _stream(plan: list[tuple[Path, InputFormat]], beneficiary_file: Path | None) -> Iterator[Claim | Rejection]:
    members: dict[str, Beneficiary] | None = None
    for path, input_format in plan:
        if input_format is InputFormat.SYNPUF:
            if members is None:
                members = {}
                if beneficiary_file is not None:
                    # Loaded once for all SynPUF inputs; its unreadable rows are reported once.
                    index = load_beneficiaries(beneficiary_file)
                    members.update(index.members)
                    yield from index.rejections
            yield from read_synpuf_claims(path, members)
        else:
            yield from _reader(input_format)(path)


READERS: dict[InputFormat, Reader] = {
    InputFormat.X12: read_x12,
    InputFormat.FHIR: read_fhir,
    InputFormat.JSON: read_canonical,
}


def _reader(input_format: InputFormat) -> Reader:
    return READERS[input_format]
