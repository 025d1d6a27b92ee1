"""Typed values out of X12 elements: amounts, quantities and dates, each checked the way the standard defines them.

Why not `Decimal(text)` or `date.fromisoformat`: Decimal accepts 'NaN', 'Infinity' and '1E5', none of which is an X12
R (real) value, and X12 dates are CCYYMMDD. A value that does not parse raises X12ValueError carrying the reason code
and a message naming the element and its position; the value itself is quoted only when it cannot be PHI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from libs.adapters.x12.reasons import X12Reason
from libs.adapters.x12.segments import Segment

_DIGITS = frozenset("0123456789")
_MAX_SHOWN = 20  # longer values are cut in messages: they are data, and a message must stay one readable line


class X12ValueError(ValueError):
    """An element does not hold what the implementation guide requires; the claim holding it is rejected."""

    def __init__(self, reason: X12Reason, segment: Segment, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.segment = segment
        self.message = message


@dataclass(frozen=True, slots=True)
class DateRange:
    """A D8 date is a range of one day; RD8 gives both ends."""

    start: date
    end: date


def _shown(value: str) -> str:
    return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "...")


def _is_x12_decimal(text: str) -> bool:
    """X12 R type: optional leading minus, digits with at most one decimal point, at least one digit."""
    body = text[1:] if text.startswith("-") else text
    whole, _, fraction = body.partition(".")
    return bool(whole or fraction) and set(whole) <= _DIGITS and set(fraction) <= _DIGITS


def parse_amount(segment: Segment, position: int) -> Decimal | None:
    """A monetary element (CLM02, SV102, SV203) as Decimal; None when absent."""
    text = segment.get(position)
    if not text:
        return None
    if not _is_x12_decimal(text):
        raise X12ValueError(
            X12Reason.BAD_AMOUNT, segment,
            f"{segment.tag}{position:02d} {_shown(text)} is not a decimal amount at {segment.where()}",
        )
    return Decimal(text)


def parse_quantity(segment: Segment, position: int) -> Decimal | None:
    """A quantity element (SV104, SV205 units) as Decimal; None when absent."""
    text = segment.get(position)
    if not text:
        return None
    if not _is_x12_decimal(text):
        raise X12ValueError(
            X12Reason.BAD_QUANTITY, segment,
            f"{segment.tag}{position:02d} {_shown(text)} is not a numeric quantity at {segment.where()}",
        )
    return Decimal(text)


def parse_pointer(segment: Segment, position: int, component: str) -> int:
    """One diagnosis pointer of SV107 (a 1-based index into the claim's diagnoses)."""
    if not component or len(component) > 2 or not set(component) <= _DIGITS:  # SV107 pointers are N0 1-2
        raise X12ValueError(
            X12Reason.BAD_QUANTITY, segment,
            f"{segment.tag}{position:02d} diagnosis pointer {_shown(component)} is not a positive integer "
            f"at {segment.where()}",
        )
    return int(component)


def _ccyymmdd(text: str) -> date | None:
    if len(text) != 8 or not set(text) <= _DIGITS:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def parse_date_value(
    segment: Segment, qualifier_position: int, value_position: int, *, phi: bool = False
) -> DateRange | None:
    """A date element with its format qualifier: D8 (CCYYMMDD), RD8 (CCYYMMDD-CCYYMMDD) or DT (CCYYMMDDHHMM).

    Returns None for an absent date and for formats that carry no calendar date (TM, a time only). `phi` withholds
    the value from messages (birth and death dates are PHI; service dates are not).
    """
    qualifier, text = segment.get(qualifier_position), segment.get(value_position)
    if not text:
        return None
    element = f"{segment.tag}{value_position:02d}"
    shown = "(value withheld: PHI)" if phi else _shown(text)
    if qualifier == "TM":
        return None
    if qualifier == "RD8":
        first, dash, last = text.partition("-")
        start, end = _ccyymmdd(first), _ccyymmdd(last)
        if dash and start is not None and end is not None:
            return DateRange(start, end)
        expected = "CCYYMMDD-CCYYMMDD (format RD8)"
    elif qualifier == "DT":
        day = _ccyymmdd(text[:8]) if len(text) in (12, 14) and set(text) <= _DIGITS else None
        if day is not None:
            return DateRange(day, day)
        expected = "CCYYMMDDHHMM (format DT)"
    elif qualifier in ("D8", ""):
        # An absent qualifier is read as D8, the only format most date elements allow.
        day = _ccyymmdd(text)
        if day is not None:
            return DateRange(day, day)
        expected = "a CCYYMMDD calendar date (format D8)"
    else:
        raise X12ValueError(
            X12Reason.BAD_DATE, segment,
            f"{segment.tag}{qualifier_position:02d} date format {_shown(qualifier)} is not D8, RD8, DT or TM "
            f"at {segment.where()}",
        )
    raise X12ValueError(X12Reason.BAD_DATE, segment, f"{element} {shown} is not {expected} at {segment.where()}")
