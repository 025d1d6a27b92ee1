"""PhiProtector: the one place where PHI is tokenized, encrypted or dropped, and where it is revealed again.

Why in the producer: a record protected before it leaves the process is protected in Kafka, in checkpoints, in the lake
and in every log of every downstream consumer; nothing downstream has to be trusted with plaintext. Rules that need
PHI-derived facts read the ``phi_derived`` block (libs.phi.derived) instead.

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
from libs.phi.derived import derive_phi
from libs.phi.envelope import ActiveDataKey, EnvelopeDecryptor, EnvelopeEncryptor, aad_prefix, associated_data
from libs.phi.errors import DecryptionError, PhiError, PolicyError, RevealDeniedError
from libs.phi.keys import key_provider_from_settings, token_keys_from_settings
from libs.phi.policy import FieldPolicy, PhiAction, PhiPolicy, load_policy
from libs.phi.tokens import Tokenizer
from libs.settings import Settings

PHI_DERIVED_KEY = "phi_derived"
PHI_ENVELOPE_KEY = "phi_envelope"
_ENCRYPT, _TOKENIZE = PhiAction.ENCRYPT, PhiAction.TOKENIZE


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


@dataclass
class _RecordContext:
    aad_prefix: bytes
    data_key: ActiveDataKey | None = None


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
        """Canonical JSON dict of `claim` with every PHI leaf replaced per policy, plus `phi_derived`/`phi_envelope`.

        tokenize -> ``tok:v1:...``, encrypt -> ``enc:v1:...``, drop -> None. `phi_envelope` holds the wrapped data key
        of the record's encrypted values (None when the record had no value to encrypt).
        """
        data = claim.model_dump(mode="json")
        context = _RecordContext(aad_prefix(claim.claim_id))
        for step in self._plan:
            parent = _direct_parent(data, step.parent)
            if parent is not None:  # fast path: no list on the way (every PHI field of today's model)
                self._apply(parent, step, step.parent_path, context)
            elif _has_list_on_path(data, step.parent):  # PHI inside list items: concrete paths get indexes
                for nested, prefix in _parents(data, step.parent, ""):
                    self._apply(nested, step, prefix, context)
        data[PHI_DERIVED_KEY] = derive_phi(claim)
        data[PHI_ENVELOPE_KEY] = dict(context.data_key.envelope) if context.data_key is not None else None
        return data

    def protect_many(self, claims: Iterable[Claim]) -> list[dict[str, Any]]:
        """Protect a batch; records share the current data key (see libs.phi.envelope for the bounds)."""
        return [self.protect(claim) for claim in claims]

    def _apply(self, parent: dict[str, Any], step: _Step, prefix: str, context: _RecordContext) -> None:
        """Protect the PHI leaves of one parent object in place (the producer's hot loop: kept flat on purpose)."""
        direct = prefix == step.parent_path
        for key, action, kind, path_bytes in step.leaves:
            value = parent.get(key)
            if value is None:
                continue
            if action is _ENCRYPT:
                data_key = context.data_key
                if data_key is None:
                    data_key = context.data_key = self.encryptor.key_for_record()
                aad = context.aad_prefix + (path_bytes if direct else f"{prefix}.{key}".encode())
                parent[key] = data_key.encrypt(value, aad)
            elif action is _TOKENIZE:
                parent[key] = self.tokenizer.token(kind, value)
            else:  # PhiAction.DROP
                parent[key] = None

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
        revealed: dict[str, Any] = {}
        for path in fields:
            for concrete, value in _leaves(record, self.policy.field(path).segments):
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
