"""PhiProtector: the one place where PHI is tokenized, encrypted or dropped, and where it is revealed again.

Why in the producer: a record protected before it leaves the process is protected in Kafka, in checkpoints, in the lake
and in every log of every downstream consumer; nothing downstream has to be trusted with plaintext. Rules that need
PHI-derived facts read the ``phi_derived`` block (libs.phi.derived) instead.

Record layout: PHI leaves the policy tokenizes hold their token in place; leaves it encrypts are *removed* from the
claim and sealed together, per record, into one AES-GCM ciphertext (`phi_sealed`, a JSON object of the removed values
in the claim's own nesting, bound by AAD to the claim id); dropped leaves are removed. The record carries no nulls.
One ciphertext per record instead of one per field keeps a message ~40 % smaller and protection ~4x cheaper
(docs/benchmarks.md) under the same key hierarchy and the same AES-GCM. Records written before this layout, with one
`enc:v1:` ciphertext per field, are still revealed.

Re-identification (``reveal``) is the only way back: it decrypts only requested, encrypted fields, only for a role the
policy lists for those fields, and it writes an audit record for every request - allowed, denied or failed - before
anything is returned. If the audit record cannot be written, nothing is revealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from libs.model import Claim
from libs.phi.audit import AuditLog, Decision
from libs.phi.derived import PHI_DERIVED_KEY, derive_phi
from libs.phi.envelope import (
    PHI_ENVELOPE_KEY,
    EnvelopeDecryptor,
    EnvelopeEncryptor,
    aad_prefix,
    associated_data,
)
from libs.phi.errors import DecryptionError, PhiError, PolicyError, RevealDeniedError
from libs.phi.keys import key_provider_from_settings, token_keys_from_settings
from libs.phi.policy import FieldPolicy, PhiAction, PhiPolicy, load_policy
from libs.phi.tokens import Tokenizer
from libs.settings import Settings

_ENCRYPT, _TOKENIZE = PhiAction.ENCRYPT, PhiAction.TOKENIZE
PHI_SEALED_KEY = "phi_sealed"
SEALED_AAD = PHI_SEALED_KEY.encode()


# One PHI leaf under a parent: (key, action, PHI kind value, dotted path as AAD bytes). A plain tuple because it is
# unpacked for every PHI value on the producer's hot path.
_Leaf = tuple[str, PhiAction, str, bytes]


@dataclass(frozen=True)
class _Step:
    """All PHI leaves under one parent object (e.g. 'patient.address'): the parent is looked up once per record."""

    parent: tuple[str, ...]
    parent_path: str
    leaves: tuple[_Leaf, ...]


def _plan(fields: Iterable[FieldPolicy]) -> tuple[_Step, ...]:
    groups: dict[tuple[str, ...], list[_Leaf]] = {}
    for rule in fields:
        leaf = (rule.segments[-1], rule.action, rule.kind.value, rule.path.encode())
        groups.setdefault(rule.segments[:-1], []).append(leaf)
    return tuple(_Step(parent, ".".join(parent), tuple(leaves)) for parent, leaves in groups.items())


def _parents(node: Any, segments: tuple[str, ...], prefix: str) -> list[tuple[dict[str, Any], str]]:
    """The objects at a dotted parent path with their concrete paths; list items get their index: 'lines[0]'."""
    for index, segment in enumerate(segments):
        if isinstance(node, list):
            rest = segments[index:]
            return [found for i, item in enumerate(node) for found in _parents(item, rest, f"{prefix}[{i}]")]
        if not isinstance(node, dict):
            return []
        node = node.get(segment)
        prefix = f"{prefix}.{segment}" if prefix else segment
        if node is None:
            return []
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _parents(item, (), f"{prefix}[{i}]")]
    return [(node, prefix)] if isinstance(node, dict) else []


def _direct_parent(data: dict[str, Any], segments: tuple[str, ...]) -> dict[str, Any] | None:
    """The parent object when every step on the path is an object; None when absent or a list is on the way."""
    node: Any = data
    for segment in segments:
        node = node.get(segment)
        if type(node) is not dict:
            return None
    return node  # type: ignore[no-any-return]


def _has_list_on_path(data: dict[str, Any], segments: tuple[str, ...]) -> bool:
    node: Any = data
    for segment in segments:
        node = node.get(segment) if isinstance(node, dict) else None
        if isinstance(node, list):
            return True
    return False


def _leaves(node: Any, segments: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of a dotted PHI path in a record."""
    for parent, prefix in _parents(node, segments[:-1], ""):
        yield (f"{prefix}.{segments[-1]}" if prefix else segments[-1]), parent.get(segments[-1])


class PhiProtector:
    """Applies the PHI policy to claims (protect) and reverses encryption under role checks and audit (reveal)."""

    def __init__(self, policy: PhiPolicy, tokenizer: Tokenizer, encryptor: EnvelopeEncryptor,
                 decryptor: EnvelopeDecryptor, audit_log: AuditLog) -> None:
        self.policy = policy
        self.tokenizer = tokenizer
        self.encryptor = encryptor
        self.decryptor = decryptor
        self.audit_log = audit_log
        self._plan = _plan(policy.fields)

    @classmethod
    def from_settings(cls, settings: Settings) -> PhiProtector:
        """Policy file, tokenization keys, key provider and audit log as configured in `settings.security`."""
        policy = load_policy(settings.security.phi_policy_file)
        provider = key_provider_from_settings(settings)
        encryptor = EnvelopeEncryptor(provider, policy.encryption.records_per_data_key,
                                      policy.encryption.data_key_max_age_seconds)
        return cls(policy, Tokenizer(token_keys_from_settings(settings.security)), encryptor,
                   EnvelopeDecryptor(provider), AuditLog(settings.security.audit_log))

    # ---------------------------------------------------------------------------------------------------- protect

    def protect(self, claim: Claim) -> dict[str, Any]:
        """Canonical JSON dict of `claim` (no nulls) with PHI protected per policy, plus the `phi_*` blocks.

        tokenize -> ``tok:v1:...`` in place; encrypt -> moved into `phi_sealed`; drop -> removed. `phi_envelope`
        holds the wrapped data key of `phi_sealed`; both are absent when the record had nothing to encrypt.
        `phi_derived` holds the non-identifying facts rules need (libs.phi.derived).
        """
        data = claim.model_dump(mode="json", exclude_none=True)
        sealed: dict[str, Any] = {}
        for step in self._plan:
            parent = _direct_parent(data, step.parent)
            if parent is not None:  # fast path: no list on the way (every PHI field of today's model)
                self._apply(parent, step, step.parent, sealed)
            elif _has_list_on_path(data, step.parent):  # PHI inside list items: sealed under indexed keys
                for nested, prefix in _parents(data, step.parent, ""):
                    self._apply(nested, step, tuple(prefix.split(".")), sealed)
        derived = {name: value for name, value in derive_phi(claim).items() if value is not None}
        if derived:
            data[PHI_DERIVED_KEY] = derived
        if sealed:
            data_key = self.encryptor.key_for_record()
            data[PHI_SEALED_KEY] = data_key.encrypt(sealed, aad_prefix(claim.claim_id) + SEALED_AAD)
            data[PHI_ENVELOPE_KEY] = dict(data_key.envelope)
        return data

    def protect_many(self, claims: Iterable[Claim]) -> list[dict[str, Any]]:
        """Protect a batch; records share the current data key (see libs.phi.envelope for the bounds)."""
        return [self.protect(claim) for claim in claims]

    def _apply(self, parent: dict[str, Any], step: _Step, where: tuple[str, ...], sealed: dict[str, Any]) -> None:
        """Protect the PHI leaves of one parent object in place (the producer's hot loop: kept flat on purpose).

        The parent's place in the sealed block is found once per parent, on its first encrypted value, not per value.
        """
        node: dict[str, Any] | None = None
        get = parent.get
        for key, action, kind, _path in step.leaves:
            value = get(key)
            if value is None:
                continue
            if action is _TOKENIZE:
                parent[key] = self.tokenizer.token(kind, value)
                continue
            del parent[key]
            if action is _ENCRYPT:
                if node is None:
                    node = sealed
                    for segment in where:
                        node = node.setdefault(segment, {})
                node[key] = value

    # ----------------------------------------------------------------------------------------------------- reveal

    def _refusal(self, fields: list[str], role: str, reason: str, actor: str) -> str | None:
        """Why the request must be refused, or None when every requested field may be revealed to `role`."""
        if not actor.strip():
            return "an actor (who is asking) is required"
        if not reason.strip():
            return "a reason (why the PHI is needed) is required"
        if not fields:
            return "no fields requested"
        if role not in self.policy.roles:
            return f"role {role!r} may not reveal PHI (roles in the policy: {sorted(self.policy.roles)})"
        return next(filter(None, (self._field_refusal(path, role) for path in fields)), None)

    def _field_refusal(self, path: str, role: str) -> str | None:
        try:
            rule = self.policy.field(path)
        except PolicyError:
            return f"{path!r} is not a PHI field of the claim model"
        if rule.action is not PhiAction.ENCRYPT:
            how = "tokenized (one-way)" if rule.action is PhiAction.TOKENIZE else "dropped"
            return f"{path!r} is {how} by policy and cannot be revealed"
        if not self.policy.role_may_reveal(role, path):
            return f"role {role!r} may not reveal {path!r}"
        return None

    def reveal(self, record: dict[str, Any], fields: list[str], actor: str, role: str, reason: str) -> dict[str, Any]:
        """Decrypt `fields` (dotted PHI paths) of a protected record for an allowed role; always audited.

        Returns {concrete path: plaintext value or None}. Raises RevealDeniedError (audited as denied), DecryptionError
        (audited as failed) or AuditError (nothing revealed when the audit record cannot be written).
        """
        claim_id = record.get("claim_id") if isinstance(record.get("claim_id"), str) else None
        refusal = self._refusal(fields, role, reason, actor)
        if refusal is not None or claim_id is None:
            refusal = refusal or "the record has no claim_id (not a protected claim record)"
            self.audit_log.append(actor=actor, role=role, claim_id=claim_id, fields=fields, reason=reason,
                                  decision=Decision.DENIED, detail=refusal)
            raise RevealDeniedError(f"reveal refused for claim {claim_id}: {refusal}")
        try:
            revealed = self._decrypt_fields(record, fields, claim_id)
        except PhiError as exc:
            self.audit_log.append(actor=actor, role=role, claim_id=claim_id, fields=fields, reason=reason,
                                  decision=Decision.FAILED, detail=str(exc))
            raise
        self.audit_log.append(actor=actor, role=role, claim_id=claim_id, fields=fields, reason=reason,
                              decision=Decision.ALLOWED)
        return revealed

    def _decrypt_fields(self, record: dict[str, Any], fields: list[str], claim_id: str) -> dict[str, Any]:
        envelope = record.get(PHI_ENVELOPE_KEY)
        sealed = record.get(PHI_SEALED_KEY)
        opened: dict[str, Any] | None = None
        revealed: dict[str, Any] = {}
        for path in fields:
            segments = self.policy.field(path).segments
            if sealed is not None:
                if opened is None:
                    opened = self._open(record, sealed, envelope, claim_id)
                found = list(_sealed_leaves(opened, segments))
                revealed.update(found if found else [(path, None)])
                continue
            for concrete, value in _leaves(record, segments):  # the per-field layout of older records
                if value is None:
                    revealed[concrete] = None
                    continue
                if not isinstance(envelope, dict):
                    msg = f"claim {claim_id} {concrete}: value is present but the record has no phi_envelope"
                    raise DecryptionError(msg)
                where = f"claim {claim_id} {concrete}"
                revealed[concrete] = self.decryptor.decrypt(envelope, value if isinstance(value, str) else "",
                                                            associated_data(claim_id, concrete), where)
        return revealed

    def _open(self, record: dict[str, Any], sealed: Any, envelope: Any, claim_id: str) -> dict[str, Any]:
        """The plaintext of a record's `phi_sealed` block (DecryptionError naming the claim, never a value)."""
        where = f"claim {claim_id} {PHI_SEALED_KEY}"
        if not isinstance(envelope, dict):
            msg = f"{where}: the record has a sealed block but no phi_envelope"
            raise DecryptionError(msg)
        opened = self.decryptor.decrypt(envelope, sealed if isinstance(sealed, str) else "",
                                        aad_prefix(claim_id) + SEALED_AAD, where)
        if not isinstance(opened, dict):
            msg = f"{where}: expected a sealed JSON object, found a {type(opened).__name__}"
            raise DecryptionError(msg)
        del record  # the sealed block is self-contained; the record is not read further
        return opened


def _sealed_leaves(node: Any, segments: tuple[str, ...], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of a dotted PHI path in an opened sealed block; list items appear as 'name[i]' keys."""
    if not segments:
        yield prefix, node
        return
    if not isinstance(node, dict):
        return
    head, rest = segments[0], segments[1:]
    for key in sorted(node):
        if key == head or (key.startswith(f"{head}[") and key.endswith("]")):
            yield from _sealed_leaves(node[key], rest, f"{prefix}.{key}" if prefix else key)
