"""FHIR R4 adapter: Claim and ExplanationOfBenefit resources -> canonical claims.

Why this module exists: payers exchange adjudicated claims as FHIR R4 (CARIN Blue Button EOBs, Da Vinci, bulk
exports), and providers submit FHIR Claims. This adapter turns each Claim / ExplanationOfBenefit into one canonical
claim, or one rejection with a reason code and a location, so FHIR input flows through the same validation as X12.

Input shapes (all streamed record by record where the shape allows it):
- one resource as a JSON document (location "resource"),
- a Bundle (location "entry N", 1-based); Bundle entries that are Patient, Practitioner, Organization, Coverage...
  are the claims' context (resolved through references) and are not records of their own; any other non-claim
  resource is rejected as unsupported,
- NDJSON, one resource or Bundle per line (location "line N", or "line N / entry M"); lines are independent, so a
  claim on one line cannot reference a Patient on another.

Every resource is first validated against the fhir.resources R4B models (R4B keeps the R4 4.0.1 Claim and
ExplanationOfBenefit structure; the CARIN R4 examples parse unchanged), then mapped by `fhir_mapping`. JSON numbers
are parsed as exact decimals. Messages never contain values from the file; validation errors are reported by element
path and error type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from libs.adapters.common import describe_validation_error, json_kind, make_rejection, open_input
from libs.adapters.fhir_lenient import FhirWarning, repair_until_valid
from libs.adapters.fhir_mapping import (
    BundleIndex,
    FhirRejectionReason,
    InvalidReferenceError,
    MappingError,
    Resolver,
    map_resource,
)
from libs.model import Claim, Rejection, Source, SourceFormat

__all__ = ["CLAIM_RESOURCE_FORMATS", "CONTEXT_RESOURCE_TYPES", "FhirRejectionReason", "FhirWarning", "read_fhir"]

log = logging.getLogger("claims.adapters.fhir")
WarningSink = Callable[[FhirWarning], None]


def log_warning(warning: FhirWarning) -> None:
    """The default warning sink: one log line per lenient read, naming the record and the element path only."""
    log.warning("%s %s: %s: %s", warning.file, warning.location, warning.path, warning.message)


CLAIM_RESOURCE_FORMATS: Mapping[str, SourceFormat] = {
    "Claim": SourceFormat.FHIR_CLAIM,
    "ExplanationOfBenefit": SourceFormat.FHIR_EOB,
}
# Resource types a Bundle carries as context for its claims (resolved through references, never records themselves).
CONTEXT_RESOURCE_TYPES = frozenset(
    {"Patient", "Practitioner", "PractitionerRole", "Organization", "Coverage", "Location", "RelatedPerson",
     "Condition", "Encounter", "Procedure", "MedicationRequest", "Device"}
)


def read_fhir(path: Path | str, on_warning: WarningSink | None = None) -> Iterator[Claim | Rejection]:
    """Yield one canonical claim or rejection per Claim / ExplanationOfBenefit (and per unusable record) in `path`.

    Resources read leniently (libs.adapters.fhir_lenient) still yield their claim; each violation goes to
    `on_warning` (default: logged on the `claims.adapters.fhir` logger) with its element path.
    """
    path = Path(path)
    sink = on_warning or log_warning
    file = str(path)
    with open_input(path) as stream:
        head = _first_non_blank_lines(stream, 2)
        if _is_ndjson(head):
            stream.seek(0)
            for number, raw in enumerate(stream, start=1):
                if raw.strip():
                    yield from _line_records(raw, file, f"line {number}", sink)
            return
        stream.seek(0)
        whole = stream.read()
    document = _parse_json(whole)
    if isinstance(document, _JsonFailure):
        yield _reject(file, "resource", FhirRejectionReason.MALFORMED_JSON,
                      f"expected a JSON resource, Bundle or NDJSON, found invalid JSON ({document.detail})")
        return
    yield from _records(document, file, "resource", sink)


def _line_records(raw: bytes, file: str, location: str, sink: WarningSink) -> Iterator[Claim | Rejection]:
    document = _parse_json(raw)
    if isinstance(document, _JsonFailure):
        yield _reject(file, location, FhirRejectionReason.MALFORMED_JSON,
                      f"expected one JSON resource per NDJSON line, found invalid JSON ({document.detail})")
        return
    yield from _records(document, file, location, sink)


def _first_non_blank_lines(stream: IO[bytes], count: int) -> list[bytes]:
    lines: list[bytes] = []
    for raw in stream:
        if raw.strip():
            lines.append(raw)
            if len(lines) == count:
                break
    return lines


def _is_ndjson(head: list[bytes]) -> bool:
    """NDJSON when the first non-blank line is a complete JSON object on its own - or the second one is, which keeps
    an NDJSON file with a broken first line from being read as one malformed document (losing every good line).

    A pretty-printed document never qualifies: its first line is a lone '{' and its second a '"key": value' member.
    A file with a single non-blank line (a minified resource) is a document, located as "resource".
    """
    return len(head) > 1 and any(not line[:1].isspace() and isinstance(_parse_json(line), dict) for line in head)


class _JsonFailure:
    """Why a JSON text did not parse; `detail` holds the parser's position only, never the text."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard constant {name}")


def _parse_json(raw: bytes) -> Any:
    """Parse JSON keeping decimals exact (FHIR amounts are decimals); a failure is a _JsonFailure, not an exception."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _JsonFailure(f"not UTF-8 at byte {exc.start}")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return _JsonFailure(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return _JsonFailure(type(exc).__name__)


def _reject(file: str, location: str, reason: FhirRejectionReason, message: str,
            fmt: SourceFormat = SourceFormat.FHIR_CLAIM) -> Rejection:
    return make_rejection(fmt, file, location, reason.value, message)


def _records(document: Any, file: str, location: str, sink: WarningSink) -> Iterator[Claim | Rejection]:
    """Claims and rejections for one parsed document: a resource or a Bundle of them."""
    resource_type = document.get("resourceType") if isinstance(document, dict) else None
    if not isinstance(resource_type, str):
        found = "an object without resourceType" if isinstance(document, dict) else f"a JSON {json_kind(document)}"
        yield _reject(file, location, FhirRejectionReason.NOT_A_RESOURCE,
                      f"expected a FHIR resource (JSON object with resourceType), found {found}")
        return
    if resource_type == "Bundle":
        yield from _bundle_records(document, file, location, sink)
    elif resource_type in CLAIM_RESOURCE_FORMATS:
        yield _convert(document, file, location, BundleIndex({}), sink)
    else:
        yield _reject(file, location, FhirRejectionReason.UNSUPPORTED_RESOURCE,
                      f"expected Claim, ExplanationOfBenefit or Bundle, found {_safe_type(resource_type)}")


def _bundle_records(bundle: dict[str, Any], file: str, location: str, sink: WarningSink
                    ) -> Iterator[Claim | Rejection]:
    entries = bundle.get("entry") or []
    prefix = "" if location == "resource" else f"{location} / "
    if not isinstance(entries, list):
        yield _reject(file, location, FhirRejectionReason.INVALID_RESOURCE,
                      "expected Bundle.entry to be a list of entries")
        return
    index = BundleIndex.build(entries)
    for number, entry in enumerate(entries, start=1):
        entry_location = f"{prefix}entry {number}"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource_type, str):
            yield _reject(file, entry_location, FhirRejectionReason.NOT_A_RESOURCE,
                          "expected entry.resource to be a FHIR resource with resourceType")
        elif resource_type in CLAIM_RESOURCE_FORMATS:
            yield _convert(resource, file, entry_location, index, sink)
        elif resource_type not in CONTEXT_RESOURCE_TYPES:
            yield _reject(file, entry_location, FhirRejectionReason.UNSUPPORTED_RESOURCE,
                          f"expected Claim, ExplanationOfBenefit or claim context (Patient, Coverage, ...), "
                          f"found {_safe_type(resource_type)}")


def _safe_type(resource_type: str) -> str:
    """A resource type fit for a message: FHIR type names are letters only; anything else is not echoed."""
    return resource_type if resource_type.isalpha() and len(resource_type) <= 64 else "an unknown resourceType"


def _validate(raw: dict[str, Any], file: str, location: str) -> tuple[Any, list[FhirWarning]]:
    """The validated resource and the lenient repairs it needed; raises the strict ValidationError when leniency does
    not cover every violation."""
    model = get_fhir_model_class(str(raw["resourceType"]))
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        repaired = repair_until_valid(raw, model.model_validate, exc, file=file, location=location)
        if repaired is None:
            raise
        return repaired


def _convert(raw: dict[str, Any], file: str, location: str, bundle: BundleIndex, sink: WarningSink
             ) -> Claim | Rejection:
    """Validate one Claim / ExplanationOfBenefit against FHIR R4 (leniently where real producers break cardinality
    without losing content) and map it; every failure becomes a rejection, every lenient read a warning."""
    resource_type = str(raw["resourceType"])
    fmt = CLAIM_RESOURCE_FORMATS[resource_type]
    try:
        resource, warnings = _validate(raw, file, location)
    except ValidationError as exc:
        return _reject(file, location, FhirRejectionReason.INVALID_RESOURCE,
                       f"{resource_type} does not conform to FHIR R4: {describe_validation_error(exc)}", fmt)
    except Exception as exc:  # noqa: BLE001
        # fhir.resources also raises KeyError / TypeError / ValueError on some malformed shapes (e.g. a contained
        # resource with an empty resourceType); whatever it raises, the resource is not valid FHIR, and one bad
        # resource must never stop the file.
        return _reject(file, location, FhirRejectionReason.INVALID_RESOURCE,
                       f"{resource_type} does not conform to FHIR R4 ({type(exc).__name__})", fmt)
    source = Source(format=fmt, file=file, locator=location)

    def note(path: str, message: str) -> None:
        warnings.append(FhirWarning(file, location, f"{resource_type}.{path}", message))

    try:
        claim = map_resource(resource, source, Resolver(resource, bundle), note)
    except MappingError as exc:
        return _reject(file, location, exc.reason, f"{resource_type}: {exc.message}", fmt)
    except InvalidReferenceError as exc:
        return _reject(file, location, FhirRejectionReason.INVALID_RESOURCE, f"{resource_type}: {exc}", fmt)
    except ValidationError as exc:
        return _reject(file, location, FhirRejectionReason.UNMAPPABLE,
                       f"{resource_type} maps to an invalid canonical claim: {describe_validation_error(exc)}", fmt)
    for warning in warnings:
        sink(warning)
    return claim
