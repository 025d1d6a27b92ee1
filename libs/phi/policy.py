"""The PHI policy: what happens to each PHI field of the claim before a record leaves the producer, and who may reveal.

Why a data file and not code: the privacy officer reviews and signs off one JSON document
(configs/security/phi-policy.json). Loading it checks that it covers exactly the PHI fields the claim model marks
(`libs.model.phi_fields()`), so adding a PHI field to the model without deciding its protection fails at startup and in
the tests, and a policy entry for a field that no longer exists is reported instead of silently ignored.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.model import PhiField, PhiKind, phi_fields
from libs.phi.errors import PolicyError


class PhiAction(StrEnum):
    """What the producer does to a PHI value."""

    TOKENIZE = "tokenize"  # deterministic keyed HMAC token: joinable, one-way
    ENCRYPT = "encrypt"  # AES-GCM envelope encryption: reversible only through an audited reveal
    DROP = "drop"  # value removed (minimum necessary)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    """The action for one PHI field and the reason the privacy officer chose it."""

    action: PhiAction
    why: str = Field(min_length=1, description="Justification, reviewed with the policy.")


class RoleRule(_Strict):
    """A role allowed to reveal encrypted fields; `fields` are glob patterns over dotted PHI paths ('*' = all)."""

    description: str = ""
    fields: tuple[str, ...] = Field(min_length=1)


class EncryptionRule(_Strict):
    """How long one data key is used: bounded by record count and age (see docs/security.md, 'data keys')."""

    records_per_data_key: int = Field(default=10_000, ge=1, le=1_000_000)
    data_key_max_age_seconds: float = Field(default=300.0, gt=0)


class _PolicyDocument(_Strict):
    version: int = Field(ge=1)
    description: str = ""
    fields: dict[str, FieldRule]
    roles: dict[str, RoleRule] = Field(default_factory=dict)
    encryption: EncryptionRule = Field(default_factory=EncryptionRule)


@dataclass(frozen=True)
class FieldPolicy:
    """A PHI field joined with its action: what the protector iterates over."""

    path: str
    kind: PhiKind
    action: PhiAction

    @cached_property
    def segments(self) -> tuple[str, ...]:
        """The dotted path split once, for fast navigation of claim dicts."""
        return tuple(self.path.split("."))


@dataclass(frozen=True)
class PhiPolicy:
    """A validated policy covering every PHI field of the claim model exactly once."""

    version: int
    fields: tuple[FieldPolicy, ...]
    roles: dict[str, RoleRule]
    encryption: EncryptionRule
    source: str

    def field(self, path: str) -> FieldPolicy:
        """The policy of one dotted PHI path; PolicyError for a path that is not a PHI field."""
        for rule in self.fields:
            if rule.path == path:
                return rule
        msg = f"{path!r} is not a PHI field of the claim model (policy {self.source}); known: {self.paths()}"
        raise PolicyError(msg)

    def paths(self, action: PhiAction | None = None) -> list[str]:
        """Dotted PHI paths, optionally only those with `action`."""
        return [rule.path for rule in self.fields if action is None or rule.action is action]

    def role_may_reveal(self, role: str, path: str) -> bool:
        """Whether `role` is listed in the policy with a field pattern matching `path`."""
        rule = self.roles.get(role)
        return rule is not None and any(fnmatch.fnmatchcase(path, pattern) for pattern in rule.fields)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of duplicate keys silently; a policy must state each field's action exactly once."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            msg = f"duplicate key {key!r}: each entry must appear exactly once"
            raise PolicyError(msg)
        seen[key] = value
    return seen


def parse_policy(text: str, source: str, model_fields: Iterable[PhiField] | None = None) -> PhiPolicy:
    """Parse and validate a policy document against the model's PHI fields (default: the canonical claim)."""
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        msg = f"{source}: expected a JSON object, found malformed JSON at line {exc.lineno} column {exc.colno}"
        raise PolicyError(msg) from None
    try:
        document = _PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise PolicyError(f"{source}: {problems}") from None

    known = {f.path: f.kind for f in (model_fields if model_fields is not None else phi_fields())}
    missing = sorted(set(known) - set(document.fields))
    unknown = sorted(set(document.fields) - set(known))
    if missing or unknown:
        msg = (f"{source}: the policy must give exactly one action per PHI field of the claim model; "
               f"missing {missing or 'none'}, unknown {unknown or 'none'}")
        raise PolicyError(msg)
    ordered = tuple(FieldPolicy(path, kind, document.fields[path].action) for path, kind in known.items())
    return PhiPolicy(version=document.version, fields=ordered, roles=dict(document.roles),
                     encryption=document.encryption, source=source)


def load_policy(path: Path) -> PhiPolicy:
    """Load configs/security/phi-policy.json (or another policy file) and validate it against the claim model."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the PHI policy ({exc.strerror or type(exc).__name__})"
        raise PolicyError(msg) from None
    return parse_policy(text, str(path))
