"""Deterministic keyed tokenization: the same value and key always give the same token, so joins still work.

Why HMAC and not a hash: a plain SHA-256 of a member ID can be reversed by hashing every plausible ID; a keyed HMAC
cannot without the key. Why per-kind keys: the HMAC key is derived per PHI kind with HKDF (domain separation), so a
member ID and a medical record number that happen to be equal strings give unrelated tokens and cannot be linked.

Token format: ``tok:v1:<key_version>:<40 hex chars>`` (160 bits of HMAC-SHA256; hex rather than base32 because
Python's base32 encoder costs more than the HMAC itself on the producer hot path). ``v1`` is the token
scheme; ``key_version`` is the tokenization-key version, so tokens made before and after a rotation are distinguishable
(they differ for the same value - see libs.phi.keys).
"""

from __future__ import annotations

import unicodedata

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from libs.phi.keys import TokenKeySource

TOKEN_PREFIX = "tok:"  # noqa: S105  (a format marker, not a secret)
TOKEN_SCHEME = "v1"  # noqa: S105
_DIGEST_BYTES = 20  # 160 bits: collision-free at any claims volume


def normalize(value: object) -> bytes:
    """Canonical bytes of a value: NFKC, surrounding whitespace removed, upper case.

    Identifiers arrive with inconsistent case and padding across X12, FHIR and SynPUF sources; tokens must match for
    the same member regardless of the source format.
    """
    return unicodedata.normalize("NFKC", str(value)).strip().upper().encode("utf-8")


def is_token(value: object) -> bool:
    """Whether a value already is a token (protecting twice must not tokenize a token)."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def derive_key(secret: bytes, domain: str) -> bytes:
    """A 256-bit key for one domain (a PHI kind, or another purpose such as de-identified surrogates)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"claims/phi/token/{TOKEN_SCHEME}/{domain}".encode()).derive(secret)


class Tokenizer:
    """Makes tokens with the active tokenization key; derived per-domain keys are cached (hot path of the producer)."""

    def __init__(self, keys: TokenKeySource, cache_size: int = 100_000) -> None:
        self._keys = keys
        self.active_version = keys.active_version()
        self._derived: dict[tuple[int, str], bytes] = {}
        # Members have many claims and appear as subscriber and patient: most tokens repeat. The cache lives only in
        # this process's memory, where the plaintext already is, and is cleared wholesale when full.
        self._cache: dict[tuple[str, object], str] = {}
        self._cache_size = cache_size

    def _key(self, version: int, domain: str) -> bytes:
        cached = self._derived.get((version, domain))
        if cached is None:
            cached = self._derived[(version, domain)] = derive_key(self._keys.secret(version), domain)
        return cached

    def digest(self, domain: str, value: object, version: int | None = None) -> bytes:
        """Raw HMAC-SHA256 of the normalised value under the domain's key of `version` (default: active)."""
        mac = hmac.HMAC(self._key(self.active_version if version is None else version, domain), hashes.SHA256())
        mac.update(normalize(value))
        return mac.finalize()

    def token(self, domain: str, value: object, version: int | None = None) -> str:
        """``tok:v1:<version>:<hex>`` for `value` in `domain` (a PhiKind value such as 'member_id')."""
        if version is None:
            cached = self._cache.get((domain, value))
            if cached is not None:
                return cached
        used = self.active_version if version is None else version
        token = f"{TOKEN_PREFIX}{TOKEN_SCHEME}:{used}:{self.digest(domain, value, used)[:_DIGEST_BYTES].hex()}"
        if version is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[(domain, value)] = token
        return token

    def tokens_all_versions(self, domain: str, value: object, versions: list[int]) -> list[str]:
        """The value's token under each listed version: how to find a member's records across a rotation."""
        return [self.token(domain, value, version) for version in versions]
