"""Helpers every adapter shares: opening inputs, building rejections and describing validation errors without PHI.

Why a shared module: the rule "messages never carry PHI" is easy to break one adapter at a time. Pydantic error texts
embed the offending input value (a patient's name, a member ID...), so adapters describe errors only through
`describe_validation_error`, which keeps error *locations* and *types* and drops inputs and free-text messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from libs.adapters.errors import InputUnreadableError
from libs.model import Rejection, Source, SourceFormat

MAX_REPORTED_ERRORS = 5


def open_input(path: Path) -> IO[bytes]:
    """Open an input file for binary reading, turning every OS-level failure into InputUnreadableError."""
    if path.is_dir():
        raise InputUnreadableError(f"{path}: expected a file, found a directory")
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputUnreadableError(f"{path}: cannot be opened ({exc.strerror or type(exc).__name__})") from exc


def describe_validation_error(exc: ValidationError, limit: int = MAX_REPORTED_ERRORS) -> str:
    """'claim_id (missing); lines.0.charge (decimal_parsing)': locations and error types only, never input values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        parts.append(f"{where} ({error['type']})")
    extra = exc.error_count() - limit
    if extra > 0:
        parts.append(f"and {extra} more")
    return "; ".join(parts)


def json_kind(value: object) -> str:
    """The JSON name of a parsed value's type ('array', 'string'...), for messages that must not echo the value."""
    kinds = {list: "array", dict: "object", str: "string", bool: "boolean", int: "number", Decimal: "number",
             float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def make_rejection(fmt: SourceFormat, file: str, location: str, reason: str, message: str) -> Rejection:
    """A rejection whose source points at the same place as its location."""
    return Rejection(
        source=Source(format=fmt, file=file, locator=location), location=location, reason=reason, message=message
    )


def parse_decimal(text: str) -> Decimal | None:
    """A finite decimal amount, or None when `text` is not one (caller decides how to reject)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def first_non_empty(values: Sequence[str | None]) -> str | None:
    """The first value that is neither None nor blank, stripped."""
    for value in values:
        if value is not None and value.strip():
            return value.strip()
    return None


def date_or_none(value: object) -> date | None:
    """A calendar date from a date, datetime or full 'YYYY-MM-DD...' string; partial dates ('1950', '2020-08') -> None.

    FHIR allows partial dates; the canonical model holds full dates only, and inventing a day would fabricate a fact.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
