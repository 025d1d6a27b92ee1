"""Canonical JSON adapter: claims already in the canonical model, as NDJSON, one JSON object or a JSON array.

Why this module exists: `claims convert` writes canonical NDJSON, generators and tests write JSON claims, and the
pipeline must be able to read them back (replays, fixtures, hand-written edge cases) through the same
claim-or-rejection contract as every other adapter.

Shapes and locations:
- NDJSON, one claim per line, streamed line by line (location "line N");
- one claim object, possibly pretty-printed over many lines (location "document");
- a JSON array of claims (location "element N", 1-based); arrays are parsed whole, so very large inputs should be
  NDJSON.
A claim that carries its own `source` keeps it (it says where the claim originally came from, e.g. an X12 file); one
without `source` gets source format 'json' located in this file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from libs.adapters.common import describe_validation_error, json_kind, make_rejection, open_input
from libs.model import Claim, Rejection, Source, SourceFormat


class JsonRejectionReason(StrEnum):
    """Why a canonical JSON record did not become a claim."""

    MALFORMED = "JSON_MALFORMED"  # not JSON at all
    NOT_AN_OBJECT = "JSON_NOT_AN_OBJECT"  # JSON, but a string, number or list where a claim object was expected
    INVALID_CLAIM = "JSON_INVALID_CLAIM"  # an object that does not validate as a canonical claim


def read_canonical(path: Path | str) -> Iterator[Claim | Rejection]:
    """Yield one claim or rejection per NDJSON line, per array element, or for the single document in `path`."""
    path = Path(path)
    file = str(path)
    with open_input(path) as stream:
        first = _first_non_blank_line(stream)
        if first is None:
            return
        first_number, line = first
        first_value = _loads(line)
        # A complete object on the first line means NDJSON; anything else (pretty-printed object, array) is one
        # document.
        if isinstance(first_value, dict):
            yield _claim_from_object(first_value, file, f"line {first_number}")
            for number, line in enumerate(stream, start=first_number + 1):
                if line.strip():
                    yield _claim_from_line(line.strip(), file, f"line {number}")
            return
        stream.seek(0)
        document = stream.read()
    yield from _claims_from_document(document, file)


class _Malformed:
    """Why a text is not JSON: the parser's position, never the text itself."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def _loads(raw: bytes) -> Any:
    """Parse JSON with exact decimals (amounts must not pass through binary floats); failures are _Malformed."""
    try:
        return json.loads(raw.decode("utf-8-sig"), parse_float=Decimal, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        return _Malformed(f"not UTF-8 at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return _Malformed(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return _Malformed(type(exc).__name__)


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _first_non_blank_line(stream: Any) -> tuple[int, bytes] | None:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            return number, line
    return None


def _claims_from_document(document: bytes, file: str) -> Iterator[Claim | Rejection]:
    value = _loads(document)
    if isinstance(value, _Malformed) and _has_object_line(document):
        # NDJSON whose first line is broken: reading it as one document would lose every good line after it.
        for number, line in enumerate(document.splitlines(), start=1):
            if line.strip():
                yield _claim_from_line(line.strip(), file, f"line {number}")
        return
    if isinstance(value, _Malformed):
        yield _reject(file, "document", JsonRejectionReason.MALFORMED,
                      f"expected a JSON claim object, an array of them or NDJSON, found invalid JSON ({value.detail})")
        return
    if isinstance(value, list):
        for number, element in enumerate(value, start=1):
            yield _claim_from_object(element, file, f"element {number}")
    else:
        yield _claim_from_object(value, file, "document")


def _has_object_line(document: bytes) -> bool:
    """Whether some unindented line after the first is, on its own, a complete JSON object - as in NDJSON, and never
    in a pretty-printed document (whose unindented lines are only its opening and closing brackets)."""
    return any(
        line.startswith(b"{") and isinstance(_loads(line), dict) for line in document.splitlines()[1:]
    )


def _claim_from_line(line: bytes, file: str, location: str) -> Claim | Rejection:
    value = _loads(line)
    if isinstance(value, _Malformed):
        return _reject(file, location, JsonRejectionReason.MALFORMED,
                       f"expected one JSON claim object per line, found invalid JSON ({value.detail})")
    return _claim_from_object(value, file, location)


def _claim_from_object(value: Any, file: str, location: str) -> Claim | Rejection:
    if not isinstance(value, dict):
        return _reject(file, location, JsonRejectionReason.NOT_AN_OBJECT,
                       f"expected a JSON object holding a claim, found a JSON {json_kind(value)}")
    if "source" not in value:
        value = {**value, "source": Source(format=SourceFormat.JSON, file=file, locator=location).model_dump()}
    try:
        return Claim.model_validate(value)
    except ValidationError as exc:
        return _reject(file, location, JsonRejectionReason.INVALID_CLAIM,
                       f"expected a canonical claim: {describe_validation_error(exc)}")


def _reject(file: str, location: str, reason: JsonRejectionReason, message: str) -> Rejection:
    return make_rejection(SourceFormat.JSON, file, location, reason.value, message)
