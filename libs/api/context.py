"""Everything the API's routes share, built once per process from settings (tests inject their own parts).

The routers in apps/api reach it as `request.app.state.context`; `require(...)` is the FastAPI dependency that
authenticates the caller, applies the per-client rate limit and checks the route's roles, in that order:
401 (no or bad token) -> 429 (too many requests from this client) -> 403 (a valid token without the role).
A request that fails authentication is rate limited by client address, so guessing tokens is slow too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import REGISTRY, CollectorRegistry

from libs.api.audit import STATE_PRINCIPAL, RequestAuditLog
from libs.api.auth import AuthenticationError, ForbiddenError, Principal, Role, TokenVerifier, verifier_from_settings
from libs.api.batches import BatchRunner
from libs.api.metrics import ApiMetrics, api_metrics
from libs.api.problems import ApiProblem
from libs.api.ratelimit import RateLimiter
from libs.api.stream_lag import LagSource, default_sources
from libs.api.warehouse import AnalyticsWarehouse
from libs.ingest.idempotency import IdempotencyStore
from libs.ingest.service import IngestService
from libs.settings import Settings

bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT (`claims api token --role ROLE` locally).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass
class ApiContext:
    """The API's collaborators."""

    settings: Settings
    ingest: IngestService
    batches: BatchRunner
    verifier: TokenVerifier
    limiter: RateLimiter
    metrics: ApiMetrics
    audit: RequestAuditLog
    registry: CollectorRegistry
    warehouse: AnalyticsWarehouse
    lag_sources: tuple[LagSource, ...]
    web_assets: Path

    def identify(self, token: str) -> Principal | None:
        """The caller a token names if it verifies, else None (for the audit record of an unrouted request)."""
        try:
            return self.verifier.verify(token)
        except AuthenticationError:
            return None

    def close(self) -> None:
        """Flush the producer and stop batch runs still going."""
        self.ingest.close()
        self.batches.close()


def build_context(settings: Settings, *, registry: CollectorRegistry = REGISTRY, verifier: TokenVerifier | None = None,
                  ingest: IngestService | None = None, batches: BatchRunner | None = None,
                  limiter: RateLimiter | None = None, lag_sources: Sequence[LagSource] | None = None,
                  web_assets: Path | None = None, warehouse: AnalyticsWarehouse | None = None) -> ApiContext:
    """The context for `settings`: fails at start-up without a PHI protector or a way to verify tokens."""
    api = settings.api
    return ApiContext(
        settings=settings,
        ingest=ingest or IngestService(settings, idempotency=IdempotencyStore(api.idempotency_db), registry=registry,
                                       delivery_timeout_seconds=api.kafka_delivery_timeout_seconds),
        batches=batches or BatchRunner(settings),
        verifier=verifier or verifier_from_settings(settings),
        limiter=limiter or RateLimiter(api.rate_limit_per_second, api.rate_limit_burst),
        metrics=api_metrics(registry),
        audit=RequestAuditLog(settings.security.audit_log),
        registry=registry,
        warehouse=warehouse or AnalyticsWarehouse(settings),
        lag_sources=tuple(default_sources(settings.monitoring) if lag_sources is None else lag_sources),
        web_assets=web_assets or api.web_assets_dir,
    )


def context_of(request: Request) -> ApiContext:
    """The context of the app serving `request`."""
    context: ApiContext = request.app.state.context
    return context


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _limit(context: ApiContext, client: str) -> None:
    decision = context.limiter.check(client)
    if not decision.allowed:
        raise ApiProblem(429, f"expected at most {context.limiter.rate:g} requests per second per client "
                              f"(bursts of {context.limiter.burst:g}), found more; retry after "
                              f"{decision.retry_after_seconds} s",
                         headers={"Retry-After": str(decision.retry_after_seconds)})


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The verified caller (stored on the request for the audit record); 401 or 429 otherwise."""
    context = context_of(request)
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            msg = "expected an Authorization: Bearer <token> header, found none"
            raise AuthenticationError(msg)
        principal = context.verifier.verify(credentials.credentials)
    except AuthenticationError as exc:
        _limit(context, f"address:{_client_address(request)}")
        raise ApiProblem(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    setattr(request.state, STATE_PRINCIPAL, principal)
    _limit(context, f"subject:{principal.subject}")
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller, who must hold one of `roles` (401, 429, 403 otherwise)."""

    def dependency(request: Request, credentials: Credentials) -> Principal:
        principal = authenticate(request, credentials)
        try:
            principal.require(roles)
        except ForbiddenError as exc:
            raise ApiProblem(403, str(exc)) from None
        return principal

    return dependency
