"""Reason codes and warnings of the X12 837 adapter.

Why a module of its own: the reason codes are the adapter's contract with the quarantine table, the CLI summary and
the docs; they are spelled once here and never renumbered. Warnings are a separate, softer channel: things the reader
tolerated (a deviating component separator, a missing final terminator) that do not cost a claim but must not be
silent either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class X12Reason(StrEnum):
    """Why an X12 record (a claim, a transaction set or the whole file) was rejected."""

    # The file itself
    NOT_ISA = "X12_NOT_ISA"  # the input (or what follows an IEA) does not start with an ISA segment
    BAD_ISA = "X12_BAD_ISA"  # the ISA is not the fixed 106-character header, so delimiters cannot be trusted
    TRUNCATED = "X12_TRUNCATED"  # the input ends before SE/GE/IEA closed what was open (the open claim is rejected)
    # Envelopes (transaction set / functional group / interchange)
    UNSUPPORTED_TRANSACTION = "X12_UNSUPPORTED_TRANSACTION"  # not an 837, or neither 005010X222 nor 005010X223
    SEGMENT_COUNT = "X12_SEGMENT_COUNT"  # SE01, GE01 or IEA01 does not match what was counted (envelope-level)
    CONTROL_NUMBER = "X12_CONTROL_NUMBER"  # SE02/GE02/IEA02 does not repeat ST02/GS06/ISA13 (envelope-level)
    # One claim
    CLAIM_WITHOUT_HL = "X12_CLAIM_WITHOUT_HL"  # CLM not under a billing provider (20) and subscriber (22) HL chain
    MISSING_CLM01 = "X12_MISSING_CLM01"  # no patient control number, so no claim identifier
    BAD_AMOUNT = "X12_BAD_AMOUNT"  # a monetary element is not an X12 decimal number
    BAD_QUANTITY = "X12_BAD_QUANTITY"  # units or a diagnosis pointer is not a number
    BAD_DATE = "X12_BAD_DATE"  # a date element is not CCYYMMDD (or CCYYMMDD-CCYYMMDD) or not a calendar date
    BAD_QUALIFIER = "X12_BAD_QUALIFIER"  # an HI code list qualifier the 837 guides do not define
    INVALID_CLAIM = "X12_INVALID_CLAIM"  # the mapped values do not fit the canonical claim model


# Envelope-level reasons: the rejection describes a transaction set, group or interchange whose *claims were still
# emitted* (each claim's own segments arrived complete and parsed). They are rejections rather than log lines so that
# the integrity problem is counted and visible downstream ("nothing silent"), but a consumer counting rejected claims
# should leave these out.
ENVELOPE_REASONS: frozenset[X12Reason] = frozenset({X12Reason.SEGMENT_COUNT, X12Reason.CONTROL_NUMBER})


class X12WarningCode(StrEnum):
    """Deviations the reader tolerated without losing data."""

    COMPONENT_SEPARATOR = "X12_COMPONENT_SEPARATOR"  # composites use another separator than ISA16 declares
    MISSING_FINAL_TERMINATOR = "X12_MISSING_FINAL_TERMINATOR"  # the last IEA has no segment terminator
    SEGMENT_OUTSIDE_TRANSACTION = "X12_SEGMENT_OUTSIDE_TRANSACTION"  # a data segment between SE and the next ST


@dataclass(frozen=True, slots=True)
class X12Warning:
    """A tolerated deviation, located like a rejection; the message carries no PHI."""

    code: X12WarningCode
    location: str
    message: str
