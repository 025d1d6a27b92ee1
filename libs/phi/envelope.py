"""AES-GCM envelope encryption of PHI values: data keys encrypt values, the key provider wraps the data keys.

Why envelopes: the key-encryption key (a KMS key in AWS) never leaves KMS; only wrapped data keys travel with the data,
and unwrapping one is an audited KMS call. Why a data key per batch and not per record: a KMS call per record would cap
the producer at a few hundred records per second. A data key is reused for at most `records_per_data_key` records and
`data_key_max_age_seconds` (policy file), which bounds what one leaked data key exposes and lets a key-encryption-key
rotation take effect within minutes. Nonces are 4 random bytes + a 64-bit counter per data key (NIST SP 800-38D
deterministic construction): unique by construction, no random-collision bound to watch.

Record layout written by the protector:
- each encrypted value: ``enc:v1:<kek_version>:<dek_id>:<base64(nonce || ciphertext || tag)>``
- once per record, ``phi_envelope``: ``{"dek_id", "provider", "kek_id", "kek_version", "wrapped_dek"}``.
The AAD binds the claim ID and the field path, so a ciphertext copied to another field or another claim fails to
decrypt instead of silently revealing the wrong person's data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.phi.errors import DecryptionError
from libs.phi.keys import DataKey, KeyProvider

CIPHERTEXT_PREFIX = "enc:"
CIPHERTEXT_SCHEME = "v1"
PHI_ENVELOPE_KEY = "phi_envelope"  # the wrapped data key's key in a protected record
ENVELOPE_FIELDS = ("dek_id", "provider", "kek_id", "kek_version", "wrapped_dek")


def is_ciphertext(value: object) -> bool:
    """Whether a value already is an envelope ciphertext string."""
    return isinstance(value, str) and value.startswith(CIPHERTEXT_PREFIX)


def aad_prefix(claim_id: str) -> bytes:
    """The claim part of the AAD (length-prefixed, so no claim ID can be confused with another ID plus a path)."""
    return f"claims/phi/{CIPHERTEXT_SCHEME}|{len(claim_id)}:{claim_id}|".encode()


def associated_data(claim_id: str, path: str) -> bytes:
    """AAD for one value: the claim ID and the concrete field path (list indexes included)."""
    return aad_prefix(claim_id) + path.encode()


def _b64e(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass
class ActiveDataKey:
    """A data key in use by this process: its AES-GCM context, nonce counter and the envelope to store."""

    data_key: DataKey
    created: float
    envelope: dict[str, str]
    dek_id: str
    _aead: AESGCM
    records: int = 0
    _counter: itertools.count[int] = field(init=False)
    _header: str = field(init=False)

    def __post_init__(self) -> None:
        # Nonce = 4 random bytes (fixed per data key) followed by a 64-bit counter, as one 96-bit integer.
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big") << 64)
        self._header = f"{CIPHERTEXT_PREFIX}{CIPHERTEXT_SCHEME}:{self.data_key.kek_version}:{self.dek_id}:"

    @classmethod
    def from_data_key(cls, data_key: DataKey, created: float) -> ActiveDataKey:
        """Wrap a fresh data key; its id is a digest of the wrapped key (never of the plaintext)."""
        dek_id = hashlib.sha256(data_key.wrapped).hexdigest()[:12]
        envelope = {"dek_id": dek_id, "provider": data_key.provider, "kek_id": data_key.kek_id,
                    "kek_version": data_key.kek_version, "wrapped_dek": _b64e(data_key.wrapped)}
        return cls(data_key, created, envelope, dek_id, AESGCM(data_key.plaintext))

    def encrypt(self, value: Any, aad: bytes) -> str:
        """Encrypt a JSON value (type preserved through orjson) into the ciphertext string format."""
        nonce = next(self._counter).to_bytes(12, "big")
        sealed = nonce + self._aead.encrypt(nonce, orjson.dumps(value), aad)
        return self._header + binascii.b2a_base64(sealed, newline=False).decode("ascii")


class EnvelopeEncryptor:
    """Hands out the current data key per record, replacing it after N records or T seconds."""

    def __init__(self, provider: KeyProvider, records_per_data_key: int, max_age_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.records_per_data_key = records_per_data_key
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._current: ActiveDataKey | None = None

    def key_for_record(self) -> ActiveDataKey:
        """The data key for the next record (a fresh one when the current one is used up or too old)."""
        current = self._current
        now = self._clock()
        if (current is None or current.records >= self.records_per_data_key
                or now - current.created >= self.max_age_seconds):
            current = self._current = ActiveDataKey.from_data_key(self.provider.generate_data_key(), now)
        current.records += 1
        return current

    def retire_key(self) -> None:
        """Forget the current data key (e.g. at the end of a producer batch, or after a key rotation)."""
        self._current = None


class EnvelopeDecryptor:
    """Decrypts values given their record's envelope; unwrapped data keys are cached (one unwrap per batch key)."""

    def __init__(self, provider: KeyProvider, cache_size: int = 256) -> None:
        self.provider = provider
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        self._cache_size = cache_size

    def _aead(self, envelope: dict[str, Any]) -> AESGCM:
        missing = [name for name in ENVELOPE_FIELDS if not isinstance(envelope.get(name), str)]
        if missing:
            msg = f"phi_envelope is missing or has non-string {missing}"
            raise DecryptionError(msg)
        wrapped_text = envelope["wrapped_dek"]
        cached = self._cache.get(wrapped_text)
        if cached is not None:
            self._cache.move_to_end(wrapped_text)
            return cached
        if envelope["provider"] != self.provider.name:
            msg = (f"record was encrypted with key provider {envelope['provider']!r}, "
                   f"but the configured provider is {self.provider.name!r}")
            raise DecryptionError(msg)
        wrapped = _b64d(wrapped_text)
        if hashlib.sha256(wrapped).hexdigest()[:12] != envelope["dek_id"]:
            msg = f"phi_envelope dek_id {envelope['dek_id']} does not match its wrapped data key (tampered envelope)"
            raise DecryptionError(msg)
        aead = AESGCM(self.provider.decrypt_data_key(wrapped, envelope["kek_id"], envelope["kek_version"]))
        self._cache[wrapped_text] = aead
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return aead

    def decrypt(self, envelope: dict[str, Any], ciphertext: str, aad: bytes, where: str) -> Any:
        """The original JSON value; DecryptionError (naming `where`, never the value) if anything does not verify."""
        parts = ciphertext.split(":")
        if len(parts) != 5 or parts[0] + ":" != CIPHERTEXT_PREFIX or parts[1] != CIPHERTEXT_SCHEME:
            msg = f"{where}: expected 'enc:v1:<kek_version>:<dek_id>:<payload>', found a value of another shape"
            raise DecryptionError(msg)
        _, _, kek_version, dek_id, payload = parts
        if dek_id != envelope.get("dek_id") or kek_version != envelope.get("kek_version"):
            msg = (f"{where}: ciphertext names data key {dek_id} (key version {kek_version}) but the record's "
                   f"phi_envelope holds {envelope.get('dek_id')} (key version {envelope.get('kek_version')})")
            raise DecryptionError(msg)
        try:
            sealed = _b64d(payload)
            return orjson.loads(self._aead(envelope).decrypt(sealed[:12], sealed[12:], aad))
        except (InvalidTag, ValueError):
            msg = f"{where}: ciphertext does not authenticate (tampered, or moved from another field or claim)"
            raise DecryptionError(msg) from None
