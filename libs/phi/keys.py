"""Key material for PHI protection: tokenization keys and key-encryption keys, each versioned and rotatable.

Why versions everywhere: rotation must never make existing data unreadable. A new version becomes active for new
writes while older versions stay in the keyring (locally) or in KMS (which keeps every backing key of a rotated KMS
key), so ciphertext written under any version still decrypts. Tokens carry the version that made them; tokens made under
different tokenization-key versions differ for the same value, which is why tokenization keys rotate rarely and on a
planned date (joins across the rotation need re-tokenization).

Two providers implement the same `KeyProvider` protocol for envelope encryption:
- `LocalKeyProvider`: key-encryption keys in a local keyring JSON file (.local/keys/keyring.json, created on first use,
  mode 0600, refused if group/other can read it). For laptops and tests; never for real PHI.
- `KmsKeyProvider`: AWS KMS `GenerateDataKey` / `Decrypt` with an encryption context, so the key-encryption key never
  leaves KMS and every unwrap is in CloudTrail. `endpoint_url` points boto3 at moto in tests.

Tokenization keys must be local to the process (an HMAC per value cannot be a network call), so they come from the
keyring file or, in AWS, from `security.tokenization_secret` (injected from Secrets Manager).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.phi.errors import DecryptionError, KeyMaterialError
from libs.settings import Environment, KeyProviderKind, SecuritySettings, Settings

KEY_BYTES = 32  # AES-256 and HMAC-SHA256 keys
KEYRING_FORMAT = 1
KMS_ENCRYPTION_CONTEXT = {"application": "claims-pipeline", "purpose": "phi-data-key"}


class KeyPurpose(StrEnum):
    """What a key is for; each purpose has its own versions and rotates independently."""

    TOKENIZATION = "tokenization"
    ENCRYPTION = "encryption"


# --------------------------------------------------------------------------------------------------------------------
# Local keyring file
# --------------------------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_purpose_entry() -> dict[str, Any]:
    return {"active": 1, "versions": {"1": {"material": _b64(os.urandom(KEY_BYTES)), "created": _now()}}}


class Keyring:
    """A versioned local keyring: {"keyring_id", "keys": {purpose: {"active": n, "versions": {n: material}}}}.

    Created on first use with 0600 permissions in a 0700 directory. Writes are atomic (temp file + rename) and
    serialised by an advisory lock, so a `claims keys rotate` next to a running producer cannot corrupt the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict[str, Any] | None = None
        self._mtime_ns = -1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def _read(self) -> dict[str, Any]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            with self._locked():
                if not self.path.exists():  # another process may have created it while we waited for the lock
                    self._write({"format": KEYRING_FORMAT, "keyring_id": uuid.uuid4().hex, "created": _now(),
                                 "keys": {p.value: _new_purpose_entry() for p in KeyPurpose}})
            info = self.path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            msg = (f"keyring {self.path} has mode {stat.S_IMODE(info.st_mode):04o}; expected 0600 (owner only). "
                   f"Fix with: chmod 600 {self.path}")
            raise KeyMaterialError(msg)
        if info.st_mtime_ns != self._mtime_ns or self._doc is None:
            try:
                doc = orjson.loads(self.path.read_bytes())
            except orjson.JSONDecodeError:
                msg = f"keyring {self.path}: expected a JSON object, found malformed JSON"
                raise KeyMaterialError(msg) from None
            if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT or "keys" not in doc:
                msg = f"keyring {self.path}: expected format {KEYRING_FORMAT} with a 'keys' object"
                raise KeyMaterialError(msg)
            self._doc, self._mtime_ns = doc, info.st_mtime_ns
        return self._doc

    @property
    def keyring_id(self) -> str:
        """Random identifier of this keyring; ciphertext names it so a wrong keyring is reported, not guessed."""
        return str(self._read()["keyring_id"])

    def _entry(self, purpose: KeyPurpose) -> dict[str, Any]:
        entry = self._read()["keys"].get(purpose.value)
        if not isinstance(entry, dict):
            msg = f"keyring {self.path}: no {purpose.value} keys"
            raise KeyMaterialError(msg)
        return entry

    def active_version(self, purpose: KeyPurpose) -> int:
        """The version used for new writes."""
        return int(self._entry(purpose)["active"])

    def versions(self, purpose: KeyPurpose) -> list[int]:
        """Every version still held (all stay readable)."""
        return sorted(int(v) for v in self._entry(purpose)["versions"])

    def material(self, purpose: KeyPurpose, version: int) -> bytes:
        """The key bytes of one version; KeyMaterialError names the versions that exist when it is missing."""
        found = self._entry(purpose)["versions"].get(str(version))
        if found is None:
            self._mtime_ns = -1  # maybe rotated by another process since we last read the file
            found = self._entry(purpose)["versions"].get(str(version))
        if found is None:
            msg = (f"keyring {self.path}: {purpose.value} key version {version} not found; "
                   f"versions held: {self.versions(purpose)}")
            raise KeyMaterialError(msg)
        return base64.b64decode(found["material"])

    def rotate(self, purpose: KeyPurpose) -> int:
        """Add a new version and make it active; older versions are kept so existing data stays readable."""
        self._read()  # creates the keyring on first use
        with self._locked():
            self._mtime_ns = -1
            doc = self._read()
            entry = doc["keys"].setdefault(purpose.value, {"active": 0, "versions": {}})
            new_version = max([int(v) for v in entry["versions"]] + [0]) + 1
            entry["versions"][str(new_version)] = {"material": _b64(os.urandom(KEY_BYTES)), "created": _now()}
            entry["active"] = new_version
            self._write(doc)
            self._mtime_ns = -1
        return new_version


# --------------------------------------------------------------------------------------------------------------------
# Tokenization key sources
# --------------------------------------------------------------------------------------------------------------------


class TokenKeySource(Protocol):
    """Where tokenization keys come from: the active version for new tokens and any version for lookups."""

    def active_version(self) -> int:
        """Version used for new tokens."""
        ...

    def secret(self, version: int) -> bytes:
        """Key bytes of `version`."""
        ...


class KeyringTokenKeys:
    """Tokenization keys held in the local keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def active_version(self) -> int:
        """Active tokenization key version in the keyring."""
        return self.keyring.active_version(KeyPurpose.TOKENIZATION)

    def secret(self, version: int) -> bytes:
        """Tokenization key bytes of `version`."""
        return self.keyring.material(KeyPurpose.TOKENIZATION, version)


class StaticTokenKeys:
    """Tokenization keys from `security.tokenization_secret` (Secrets Manager in AWS).

    Format: a bare secret is version 1; `3:secretC,2:secretB` lists versions explicitly and the first one is active,
    so a rotation is a secret update that prepends the new version and keeps the old ones for look-ups.
    """

    def __init__(self, versions: dict[int, bytes], active: int) -> None:
        if active not in versions:
            msg = f"tokenization secret: active version {active} is not among versions {sorted(versions)}"
            raise KeyMaterialError(msg)
        self._versions = versions
        self._active = active

    @classmethod
    def parse(cls, secret: str) -> StaticTokenKeys:
        """Parse the secret format described in the class docstring (the secret itself never appears in errors)."""
        parts = [p.strip() for p in secret.split(",") if p.strip()]
        if not parts:
            msg = "tokenization secret is empty; expected '<secret>' or '<version>:<secret>[,...]'"
            raise KeyMaterialError(msg)
        if len(parts) == 1 and ":" not in parts[0]:
            return cls({1: parts[0].encode("utf-8")}, 1)
        versions: dict[int, bytes] = {}
        for index, part in enumerate(parts, start=1):
            label, sep, value = part.partition(":")
            if not sep or not label.isdigit() or not value:
                msg = f"tokenization secret entry {index}: expected '<version>:<secret>' with a numeric version"
                raise KeyMaterialError(msg)
            versions[int(label)] = value.encode("utf-8")
        return cls(versions, int(parts[0].partition(":")[0]))

    def active_version(self) -> int:
        """The first listed version."""
        return self._active

    def secret(self, version: int) -> bytes:
        """Key bytes of `version`."""
        try:
            return self._versions[version]
        except KeyError:
            msg = f"tokenization secret: version {version} not present; versions held: {sorted(self._versions)}"
            raise KeyMaterialError(msg) from None


# --------------------------------------------------------------------------------------------------------------------
# Envelope key providers
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataKey:
    """A data-encryption key: plaintext for this process only, `wrapped` to store next to the ciphertext."""

    plaintext: bytes
    wrapped: bytes
    provider: str
    kek_id: str
    kek_version: str

    def __repr__(self) -> str:  # never print key bytes
        return f"DataKey(provider={self.provider!r}, kek_id={self.kek_id!r}, kek_version={self.kek_version!r})"


class KeyProvider(Protocol):
    """Generates and unwraps data keys under a key-encryption key it holds (or that KMS holds)."""

    name: str

    def generate_data_key(self) -> DataKey:
        """A fresh random data key, plus its wrapped form under the active key-encryption key."""
        ...

    def decrypt_data_key(self, wrapped: bytes, kek_id: str, kek_version: str) -> bytes:
        """Unwrap a data key written under any (current or older) key-encryption key version."""
        ...

    def rotate(self) -> str:
        """Make a new key-encryption key version active; returns a PHI-free description of what happened."""
        ...


class LocalKeyProvider:
    """Key-encryption keys from the local keyring; data keys wrapped with AES-256-GCM."""

    name = "local"

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @staticmethod
    def _aad(kek_version: str) -> bytes:
        return b"claims/phi/data-key/v1|local|" + kek_version.encode("ascii")

    def generate_data_key(self) -> DataKey:
        """New random data key wrapped under the active local key-encryption key."""
        version = str(self.keyring.active_version(KeyPurpose.ENCRYPTION))
        kek = self.keyring.material(KeyPurpose.ENCRYPTION, int(version))
        plaintext = os.urandom(KEY_BYTES)
        nonce = os.urandom(12)
        wrapped = nonce + AESGCM(kek).encrypt(nonce, plaintext, self._aad(version))
        return DataKey(plaintext, wrapped, self.name, f"keyring:{self.keyring.keyring_id}", version)

    def decrypt_data_key(self, wrapped: bytes, kek_id: str, kek_version: str) -> bytes:
        """Unwrap with the named key-encryption key version (old versions stay in the keyring)."""
        expected = f"keyring:{self.keyring.keyring_id}"
        if kek_id != expected:
            msg = f"data key was wrapped by {kek_id}, but the configured keyring is {expected} ({self.keyring.path})"
            raise KeyMaterialError(msg)
        if not kek_version.isdigit():
            msg = f"local key-encryption key version must be numeric, found {kek_version!r}"
            raise KeyMaterialError(msg)
        kek = self.keyring.material(KeyPurpose.ENCRYPTION, int(kek_version))
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], self._aad(kek_version))
        except (InvalidTag, ValueError):
            msg = f"wrapped data key does not authenticate under {kek_id} version {kek_version} (tampered or wrong key)"
            raise DecryptionError(msg) from None

    def rotate(self) -> str:
        """Add a local key-encryption key version and make it active."""
        version = self.keyring.rotate(KeyPurpose.ENCRYPTION)
        return f"local encryption key version {version} is now active ({self.keyring.path}); older versions kept"


class KmsKeyProvider:
    """Data keys from AWS KMS GenerateDataKey, unwrapped with KMS Decrypt under a fixed encryption context."""

    name = "kms"

    def __init__(self, key_id: str, client: Any) -> None:
        self.key_id = key_id
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> KmsKeyProvider:
        """A provider for `security.kms_key_id` in `aws.region`, via `aws.endpoint_url` (moto) when set."""
        import boto3  # noqa: PLC0415  (boto3 import is slow; only KMS deployments pay for it)

        if not settings.security.kms_key_id:
            msg = "security.key_provider is 'kms' but security.kms_key_id is not set (CLAIMS__SECURITY__KMS_KEY_ID)"
            raise KeyMaterialError(msg)
        client = boto3.client("kms", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url)
        return cls(settings.security.kms_key_id, client)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            error: type[Exception] = DecryptionError if code == "InvalidCiphertextException" else KeyMaterialError
            msg = f"KMS {operation} on key {self.key_id} failed with {code}"
            raise error(msg) from None
        except BotoCoreError as exc:
            msg = f"KMS {operation} on key {self.key_id} failed: {type(exc).__name__}"
            raise KeyMaterialError(msg) from None
        return response

    def generate_data_key(self) -> DataKey:
        """New AES-256 data key from KMS; the wrapped blob names the KMS key (and its backing version) itself."""
        response = self._call("generate_data_key", KeyId=self.key_id, KeySpec="AES_256",
                              EncryptionContext=KMS_ENCRYPTION_CONTEXT)
        # KMS keeps every backing key of a rotated key and picks the right one from the blob: one logical version.
        return DataKey(response["Plaintext"], response["CiphertextBlob"], self.name, str(response["KeyId"]), "kms")

    def decrypt_data_key(self, wrapped: bytes, kek_id: str, kek_version: str) -> bytes:
        """KMS Decrypt; pinning KeyId makes KMS refuse a blob wrapped by another key."""
        response = self._call("decrypt", CiphertextBlob=wrapped, KeyId=kek_id, EncryptionContext=KMS_ENCRYPTION_CONTEXT)
        return bytes(response["Plaintext"])

    def rotate(self) -> str:
        """On-demand rotation of the KMS key's backing material; KMS keeps old material for decryption."""
        self._call("rotate_key_on_demand", KeyId=self.key_id)
        return f"KMS key {self.key_id}: on-demand rotation started; data keys wrapped earlier remain decryptable"


# --------------------------------------------------------------------------------------------------------------------
# Construction from settings, rotation
# --------------------------------------------------------------------------------------------------------------------


def token_keys_from_settings(security: SecuritySettings) -> TokenKeySource:
    """`tokenization_secret` when set (AWS), else the local keyring's tokenization keys.

    Outside `local`, a keyring is never created implicitly: each producer container would mint its own key and
    tokens would silently stop joining across instances.
    """
    if security.tokenization_secret is not None:
        return StaticTokenKeys.parse(security.tokenization_secret.get_secret_value())
    if security.environment is not Environment.LOCAL and not security.local_key_file.exists():
        msg = (f"environment {security.environment.value}: no tokenization key; set security.tokenization_secret "
               f"(CLAIMS__SECURITY__TOKENIZATION_SECRET, from Secrets Manager) or provide {security.local_key_file}")
        raise KeyMaterialError(msg)
    return KeyringTokenKeys(Keyring(security.local_key_file))


def key_provider_from_settings(settings: Settings) -> KeyProvider:
    """The configured envelope key provider (local keyring or KMS); the local keyring is refused in production."""
    if settings.security.key_provider is KeyProviderKind.KMS:
        return KmsKeyProvider.from_settings(settings)
    if settings.security.environment is Environment.PROD:
        msg = "security.key_provider 'local' is for development only; production must use 'kms' with kms_key_id"
        raise KeyMaterialError(msg)
    return LocalKeyProvider(Keyring(settings.security.local_key_file))


def rotate(settings: Settings, purpose: KeyPurpose) -> str:
    """Rotate the tokenization or the encryption key; returns a description for the operator."""
    if purpose is KeyPurpose.ENCRYPTION:
        return key_provider_from_settings(settings).rotate()
    if settings.security.tokenization_secret is not None:
        msg = ("tokenization keys come from security.tokenization_secret: rotate by prepending a new "
               "'<version>:<secret>' entry in the secret store (see docs/security.md)")
        raise KeyMaterialError(msg)
    keyring = Keyring(settings.security.local_key_file)
    version = keyring.rotate(KeyPurpose.TOKENIZATION)
    return (f"tokenization key version {version} is now active ({keyring.path}); new tokens differ from tokens made "
            f"under earlier versions, which stay available for look-ups. Restart producers to pick it up.")
