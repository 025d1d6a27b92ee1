"""Who is calling: OAuth2 bearer JWTs, their roles, and the local signing key.

Why two verifiers behind one interface: in AWS the API trusts the organisation's OAuth2 issuer, whose public keys it
fetches from the JWKS URL in stack config (`settings.api.jwks_url`; RS256/ES256 only: an asymmetric issuer key never
leaves the issuer). Locally there is no issuer, so `claims api token --role ROLE` signs short-lived HS256 tokens with a
key derived (HKDF, its own domain) from the local keyring's encryption key - refused outside the local environment,
and the local verifier is never used when a JWKS URL is configured or outside `local`.

Every token must carry `iss`, `aud`, `exp` and `sub` (checked), and its roles in `settings.api.role_claim`.
Roles: ingest (POST claims), analyst (read analytics and batch status), operator (run batches), privacy_officer
(re-identify PHI) and admin (everything except re-identification: re-identifying PHI takes the privacy officer's own
role, by HIPAA's minimum-necessary rule).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import extract_compact

from libs.phi.errors import KeyMaterialError
from libs.phi.keys import KeyPurpose, Keyring
from libs.settings import ApiSettings, Environment, Settings

LOCAL_ALGORITHM = "HS256"
ISSUER_ALGORITHMS = ("RS256", "ES256")
JWKS_CACHE_SECONDS = 300.0
JWKS_REFRESH_MIN_SECONDS = 30.0  # an unknown key id refetches the JWKS at most this often (no refetch storms)
JWKS_TIMEOUT_SECONDS = 5.0
LOCAL_KEY_INFO = b"claims/api/jwt/v1"


class Role(StrEnum):
    """API roles (the token's roles claim)."""

    INGEST = "ingest"
    ANALYST = "analyst"
    OPERATOR = "operator"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"


class AuthError(Exception):
    """Base of authentication and authorisation failures; messages never echo the token."""


class AuthenticationError(AuthError):
    """No token, or a token that does not verify (HTTP 401)."""


class ForbiddenError(AuthError):
    """A valid token without a role the route needs (HTTP 403)."""


class AuthConfigurationError(AuthError):
    """The API cannot verify tokens as configured (e.g. outside local without a JWKS URL)."""


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    subject: str
    roles: frozenset[Role]

    def may(self, role: Role) -> bool:
        """Whether the caller holds `role` (admin holds every role but privacy_officer)."""
        return role in self.roles or (Role.ADMIN in self.roles and role is not Role.PRIVACY_OFFICER)

    def require(self, allowed: Iterable[Role]) -> None:
        """ForbiddenError unless the caller holds one of `allowed`."""
        wanted = list(allowed)
        if not any(self.may(role) for role in wanted):
            msg = (f"expected a token with role {' or '.join(role.value for role in wanted)}, "
                   f"found roles {sorted(role.value for role in self.roles) or 'none'}")
            raise ForbiddenError(msg)


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal, or raises AuthenticationError."""

    def verify(self, token: str) -> Principal:
        """The caller the token names."""
        ...


def _principal(claims: dict[str, Any], api: ApiSettings) -> Principal:
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": api.issuer}, aud={"essential": True, "value": api.audience},
        exp={"essential": True}, sub={"essential": True})
    try:
        registry.validate(claims)
    except JoseError as exc:
        msg = f"token claims do not verify ({exc.error})"
        raise AuthenticationError(msg) from None
    raw = claims.get(api.role_claim, [])
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    roles = frozenset(Role(name) for name in names if isinstance(name, str) and name in Role._value2member_map_)
    return Principal(subject=str(claims["sub"]), roles=roles)


# ------------------------------------------------------------------------------------------------------ local key


def local_signing_key(keyring: Keyring, version: int | None = None) -> tuple[str, OctKey]:
    """(key id, HMAC key) derived from the keyring's encryption key `version` (default: the active one).

    Derived, not stored: rotating the keyring's encryption key (`claims keys rotate`) starts a new signing key, and
    tokens signed under the previous version stay valid until they expire.
    """
    version = keyring.active_version(KeyPurpose.ENCRYPTION) if version is None else version
    material = keyring.material(KeyPurpose.ENCRYPTION, version)
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LOCAL_KEY_INFO).derive(material)
    return f"local-{keyring.keyring_id[:12]}-{version}", OctKey.import_key(secret)


class LocalTokenIssuer:
    """Signs and verifies tokens with the local keyring (environment `local` only)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        if settings.environment is not Environment.LOCAL:
            msg = (f"environment {settings.environment.value}: local API tokens are for the local environment only; "
                   "tokens come from the OAuth2 issuer (api.jwks_url)")
            raise AuthConfigurationError(msg)
        self._api = settings.api
        self._keyring = Keyring(settings.security.local_key_file)
        self._clock = clock

    def issue(self, subject: str, roles: Iterable[Role], ttl_seconds: int | None = None) -> str:
        """A bearer token for `subject` with `roles`, valid for `ttl_seconds` (default: api.local_token_ttl_seconds)."""
        kid, key = local_signing_key(self._keyring)
        now = int(self._clock())
        claims = {"iss": self._api.issuer, "aud": self._api.audience, "sub": subject, "iat": now,
                  "exp": now + (ttl_seconds or self._api.local_token_ttl_seconds),
                  self._api.role_claim: sorted(Role(role).value for role in roles)}
        return jwt.encode({"alg": LOCAL_ALGORITHM, "kid": kid}, claims, key)

    def verify(self, token: str) -> Principal:
        """The caller of a locally signed token."""
        try:
            header = extract_compact(token.encode("ascii", errors="replace")).headers()
        except JoseError as exc:
            raise AuthenticationError(f"expected a signed JWT, found a malformed token ({exc.error})") from None
        kid = str(header.get("kid", ""))
        prefix = f"local-{self._keyring.keyring_id[:12]}-"
        if not kid.startswith(prefix) or not kid.removeprefix(prefix).isdigit():
            raise AuthenticationError("token was not signed by this environment's local key")
        try:
            _, key = local_signing_key(self._keyring, int(kid.removeprefix(prefix)))
            decoded = jwt.decode(token, key, algorithms=[LOCAL_ALGORITHM])
        except JoseError as exc:
            raise AuthenticationError(f"token signature does not verify ({exc.error})") from None
        except KeyMaterialError:
            raise AuthenticationError("token names a local key version this keyring does not hold") from None
        return _principal(decoded.claims, self._api)


# ----------------------------------------------------------------------------------------------------------- JWKS


class JwksVerifier:
    """Verifies tokens of an OAuth2 issuer against its JWKS (fetched, cached, refetched for an unknown key id)."""

    def __init__(self, api: ApiSettings, fetch: Callable[[str], bytes] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not api.jwks_url:
            msg = "api.jwks_url: expected the OAuth2 issuer's JWKS URL, found none"
            raise AuthConfigurationError(msg)
        self._api = api
        self._url = api.jwks_url
        self._fetch = fetch or _http_get
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = -1e18
        self._lock = threading.Lock()

    def _key_set(self, refresh: bool = False) -> KeySet:
        with self._lock:
            age = self._clock() - self._fetched_at
            if self._keys is None or age > JWKS_CACHE_SECONDS or (refresh and age > JWKS_REFRESH_MIN_SECONDS):
                try:
                    document = orjson.loads(self._fetch(self._url))
                    self._keys = KeySet.import_key_set(document)
                except Exception as exc:  # noqa: BLE001  (network, JSON or key errors: cannot verify anything)
                    if self._keys is None:
                        msg = f"cannot load the issuer's keys from {self._url} ({type(exc).__name__})"
                        raise AuthenticationError(msg) from None
                self._fetched_at = self._clock()
            return self._keys

    def verify(self, token: str) -> Principal:
        """The caller of an issuer-signed token; an unknown key id refetches the JWKS once (key rotation)."""
        try:
            decoded = jwt.decode(token, self._key_set(), algorithms=list(ISSUER_ALGORITHMS))
        except InvalidKeyIdError:
            try:
                decoded = jwt.decode(token, self._key_set(refresh=True), algorithms=list(ISSUER_ALGORITHMS))
            except JoseError as exc:
                raise AuthenticationError(f"token does not verify against the issuer's keys ({exc.error})") from None
        except JoseError as exc:
            raise AuthenticationError(f"token does not verify against the issuer's keys ({exc.error})") from None
        return _principal(decoded.claims, self._api)


def _http_get(url: str) -> bytes:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        msg = f"JWKS URL must be https (or loopback http for tests), found {url.split('?', maxsplit=1)[0]}"
        raise ValueError(msg)
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310  (scheme checked)
        return bytes(response.read())


def verifier_from_settings(settings: Settings) -> TokenVerifier:
    """The JWKS verifier when `api.jwks_url` is set; the local keyring verifier in the local environment; else error."""
    if settings.api.jwks_url:
        return JwksVerifier(settings.api)
    if settings.environment is Environment.LOCAL:
        return LocalTokenIssuer(settings)
    msg = (f"environment {settings.environment.value}: expected api.jwks_url (the OAuth2 issuer's JWKS URL, from "
           "stack config), found none; local tokens are refused outside the local environment")
    raise AuthConfigurationError(msg)
