"""The one place a claim becomes a Kafka message value.

Why a single hook: PHI protection (tokenising member IDs, encrypting names and birth dates, per
configs/security/phi-policy.json) must happen *before* bytes leave the process, for every producer. `protect` is
`libs.phi`'s `PhiProtector.protect`. Callers that send real claims must pass it: `libs.ingest` refuses to produce
without a protector in every environment; the bare form is for broker-level tests of the producer itself.

Headers: every record of a run or request carries `correlation_id` = `<id>:<record index>` (see `correlation_value`),
so a claim can be followed from the caller's request through the logs; ids are random, never derived from PHI.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from libs.model import Claim

Protect = Callable[[Claim], dict[str, Any]]
CORRELATION_HEADER = "correlation_id"


def correlation_value(correlation_id: str, index: int) -> bytes:
    """The `correlation_id` header value of record `index` (1-based) of a run or request: `<id>:<index>`."""
    return f"{correlation_id}:{index}".encode("ascii")


def _default(value: Any) -> Any:
    # Amounts stay exact: Decimal is written as its string ("165.50"), like pydantic's JSON mode does.
    if isinstance(value, Decimal):
        return str(value)
    msg = f"claim message: expected JSON-serialisable values, found {type(value).__name__}"
    raise TypeError(msg)


def claim_to_message(claim: Claim, protect: Protect | None) -> bytes:
    """The message value of `claim`: protected (when `protect` is given) and JSON-encoded with orjson."""
    payload = protect(claim) if protect is not None else claim.model_dump(mode="json")
    return orjson.dumps(payload, default=_default)


def claim_key(claim: Claim) -> bytes:
    """The message key: the claim id, so that a claim, its replacements and its void land in one partition, in order.

    Claim ids are payer-assigned identifiers, not PHI.
    """
    return claim.claim_id.encode("utf-8")
