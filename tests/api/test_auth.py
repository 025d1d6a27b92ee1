"""Tokens and roles without a server: the issuer's JWKS (served over real HTTP), the local keyring key, the role
rules, and the per-client rate limit."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from libs.api.auth import (
    AuthConfigurationError,
    AuthenticationError,
    ForbiddenError,
    JwksVerifier,
    LocalTokenIssuer,
    Principal,
    Role,
    verifier_from_settings,
)
from libs.api.ratelimit import RateLimiter
from libs.phi.keys import KeyPurpose, Keyring
from libs.settings import ApiSettings, Environment, SecuritySettings, Settings

ISSUER, AUDIENCE = "https://login.example.org/", "claims-api"


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, RSAKey]]]:
    """A real HTTP server publishing a JWKS; the test can rotate the published keys."""
    keys = {"k1": RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})}
    published: dict[str, bytes] = {}

    def publish() -> None:
        published["body"] = json.dumps(KeySet(list(keys.values())).as_dict(private=False)).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            publish()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(published["body"])

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", keys
    finally:
        server.shutdown()


def _issuer_token(key: RSAKey, **claims: object) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-ingest", "exp": int(time.time()) + 300, "roles": ["ingest"],
               **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def test_issuer_tokens_verify_against_the_jwks_and_a_rotated_key_is_fetched(jwks_server):
    url, keys = jwks_server
    now = [1000.0]
    verifier = JwksVerifier(ApiSettings(jwks_url=url, issuer=ISSUER, audience=AUDIENCE), clock=lambda: now[0])
    principal = verifier.verify(_issuer_token(keys["k1"]))
    assert principal == Principal("svc-ingest", frozenset({Role.INGEST}))
    keys["k2"] = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
    token = _issuer_token(keys["k2"], sub="svc-2")
    with pytest.raises(AuthenticationError, match="invalid_key_id"):
        verifier.verify(token)  # refetching on every unknown kid would let anyone hammer the issuer
    now[0] += 31
    assert verifier.verify(token).subject == "svc-2"  # the rotated key is fetched


@pytest.mark.parametrize(("claims", "expected"), [
    ({"aud": "someone-else"}, "invalid_claim"),
    ({"iss": "https://evil.example/"}, "invalid_claim"),
    ({"exp": int(time.time()) - 10}, "expired_token"),
])
def test_issuer_tokens_with_wrong_claims_are_refused(jwks_server, claims, expected):
    url, keys = jwks_server
    verifier = JwksVerifier(ApiSettings(jwks_url=url, issuer=ISSUER, audience=AUDIENCE))
    with pytest.raises(AuthenticationError, match=expected):
        verifier.verify(_issuer_token(keys["k1"], **claims))


def test_a_token_signed_by_another_key_or_with_hs256_is_refused(jwks_server, tmp_path):
    url, _keys = jwks_server
    verifier = JwksVerifier(ApiSettings(jwks_url=url, issuer=ISSUER, audience=AUDIENCE))
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key
    with pytest.raises(AuthenticationError, match="bad_signature"):
        verifier.verify(_issuer_token(stranger))
    local = LocalTokenIssuer(_local_settings(tmp_path)).issue("me", [Role.ADMIN])
    with pytest.raises(AuthenticationError):
        verifier.verify(local)  # a symmetric local token never passes where an issuer is configured


def _local_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(security=SecuritySettings(local_key_file=tmp_path / "keyring.json",
                                              audit_log=tmp_path / "audit.jsonl"), **overrides)


def test_local_tokens_round_trip_and_survive_a_key_rotation_until_they_expire(tmp_path):
    settings = _local_settings(tmp_path)
    issuer = LocalTokenIssuer(settings)
    before = issuer.issue("alice", [Role.ANALYST, Role.OPERATOR])
    Keyring(settings.security.local_key_file).rotate(KeyPurpose.ENCRYPTION)
    after = issuer.issue("bob", [Role.INGEST])
    assert issuer.verify(before) == Principal("alice", frozenset({Role.ANALYST, Role.OPERATOR}))
    assert issuer.verify(after).subject == "bob"
    other_keyring = LocalTokenIssuer(_local_settings(tmp_path / "other"))
    with pytest.raises(AuthenticationError, match="not signed by this environment"):
        other_keyring.verify(before)


def test_local_tokens_are_refused_outside_the_local_environment(tmp_path):
    with pytest.raises(AuthConfigurationError, match="local environment only"):
        LocalTokenIssuer(_local_settings(tmp_path, environment=Environment.DEV))
    with pytest.raises(AuthConfigurationError, match=r"expected api\.jwks_url"):
        verifier_from_settings(_local_settings(tmp_path, environment=Environment.PROD))
    configured = verifier_from_settings(_local_settings(tmp_path, environment=Environment.PROD,
                                                        api=ApiSettings(jwks_url="https://login.example.org/jwks")))
    assert isinstance(configured, JwksVerifier)


def test_admin_holds_every_role_but_privacy_officer():
    admin = Principal("root", frozenset({Role.ADMIN}))
    admin.require([Role.INGEST])
    admin.require([Role.OPERATOR, Role.ANALYST])
    with pytest.raises(ForbiddenError, match="expected a token with role privacy_officer, found roles \\['admin'\\]"):
        admin.require([Role.PRIVACY_OFFICER])
    Principal("po", frozenset({Role.PRIVACY_OFFICER})).require([Role.PRIVACY_OFFICER])


def test_rate_limit_allows_the_burst_then_the_rate_per_client():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.check("a").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.check("a").retry_after_seconds == 1
    assert limiter.check("b").allowed  # buckets are per client
    now[0] += 0.5  # one token back at 2/s
    assert [limiter.check("a").allowed for _ in range(2)] == [True, False]
