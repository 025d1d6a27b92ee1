"""Masked views of PHI for every environment except production (`settings.security.mask_phi`).

Why: developers and testers need to see that a name, a date or a member ID is *there* and roughly right without seeing
the person. Masking applies to plaintext (revealed values, canonical claims, API responses) by PHI kind:
names -> initials, dates -> year, ZIP -> first three digits, identifiers (member ID, SSN, phone, account, medical
record number, e-mail) -> last four characters, street and city -> redacted. Masking is not de-identification (a
masked record may still identify someone; use libs.phi.deidentify for data leaving the organisation), and it is not
reversible. Values that are already tokens or ciphertext are left as they are.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from functools import cache
from typing import Any

from libs.model import PhiKind, phi_fields
from libs.phi.envelope import is_ciphertext
from libs.phi.tokens import is_token
from libs.settings import SecuritySettings

REDACTED = "***"
_IDENTIFIER_KINDS = frozenset({PhiKind.MEMBER_ID, PhiKind.SSN, PhiKind.PHONE, PhiKind.ACCOUNT_NUMBER,
                               PhiKind.MEDICAL_RECORD_NUMBER, PhiKind.EMAIL})
_YEAR_RE = re.compile(r"^(\d{4})-\d{2}-\d{2}")
_INDEX_RE = re.compile(r"\[\d+\]")


def initials(name: str) -> str:
    """'MARY ANN' -> 'M.A.'; punctuation and digits are ignored."""
    return "".join(f"{word[0]}." for word in re.findall(r"[^\W\d_]+", name))


def last_four(identifier: str) -> str:
    """'SYN000123456' -> '****3456'; identifiers of four characters or fewer are fully masked."""
    text = identifier.strip()
    return "****" + text[-4:] if len(text) > 4 else "****"


def mask_value(kind: PhiKind, value: Any) -> Any:
    """The masked form of one plaintext PHI value of `kind` (None stays None)."""
    if value is None or is_token(value) or is_ciphertext(value):
        return value
    masked: str = REDACTED  # street lines, city and any kind added later: redact rather than guess
    if kind is PhiKind.NAME:
        masked = initials(str(value))
    elif kind is PhiKind.DATE:
        match = _YEAR_RE.match(value.isoformat() if isinstance(value, date) else str(value))
        masked = match.group(1) if match else REDACTED
    elif kind is PhiKind.POSTAL_CODE:
        masked = "".join(ch for ch in str(value) if ch.isdigit())[:3] or REDACTED
    elif kind in _IDENTIFIER_KINDS:
        masked = last_four(str(value))
    return masked


@cache
def _kinds_by_path() -> dict[str, PhiKind]:
    return {field.path: field.kind for field in phi_fields()}


def mask_revealed(values: dict[str, Any]) -> dict[str, Any]:
    """Mask the output of PhiProtector.reveal ({concrete path: value}); paths may carry list indexes."""
    kinds = _kinds_by_path()
    masked: dict[str, Any] = {}
    for path, value in values.items():
        kind = kinds.get(_INDEX_RE.sub("", path))
        masked[path] = REDACTED if kind is None else mask_value(kind, value)
    return masked


def _mask_in_place(node: Any, segments: list[str], kind: PhiKind) -> None:
    if isinstance(node, list):
        for item in node:
            _mask_in_place(item, segments, kind)
        return
    if not isinstance(node, dict) or segments[0] not in node:
        return
    if len(segments) == 1:
        node[segments[0]] = mask_value(kind, node[segments[0]])
    else:
        _mask_in_place(node[segments[0]], segments[1:], kind)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A masked copy of a plaintext claim dict (canonical JSON shape); the input is not modified."""
    masked = copy.deepcopy(record)
    for path, kind in _kinds_by_path().items():
        _mask_in_place(masked, path.split("."), kind)
    return masked


def masked_view(record: dict[str, Any], security: SecuritySettings) -> dict[str, Any]:
    """The record as this environment may show it: masked unless `security.environment` is production."""
    return mask_record(record) if security.mask_phi else record
