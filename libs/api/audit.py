"""Every API request in the audit log, written after the response, refused requests included.

Why the same log as re-identification: one append-only, hash-chained file (libs.phi.audit) answers "who touched which
claims when", whether through `claims reveal` or over HTTP, and `claims audit verify` checks both kinds of record in
one chain. An API record says who (token subject, or "anonymous"), with which roles, which route (template and path),
the status, the claim ids the request touched and its correlation id; never a request or response body.

`RequestContextMiddleware` is a plain ASGI middleware (no body buffering): it gives each request its correlation id
(the caller's `X-Correlation-ID` when valid, else a new one, echoed in the response), counts and times it, and once
the response has been sent writes the audit record in a worker thread (the write is fsync'ed). An audit record that
cannot be written is logged and counted (`claims_api_audit_failures_total`); the response has already gone out.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import anyio
import orjson
from starlette.datastructures import MutableHeaders

from libs.api.metrics import ApiMetrics
from libs.phi.audit import AuditLog
from libs.phi.errors import AuditError
from libs.phi.logging import correlation_scope

log = logging.getLogger("claims.api")

REQUEST_EVENT = "api.request"
CORRELATION_HEADER = "x-correlation-id"
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # no ':': the Kafka header appends ':<record index>'
MAX_AUDITED_CLAIM_IDS = 10_000
STATE_PRINCIPAL = "principal"
STATE_CLAIM_IDS = "audit_claim_ids"
STATE_CORRELATION_ID = "correlation_id"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestAuditLog(AuditLog):
    """The PHI audit log, with records of API requests in the same hash chain."""

    def append_request(self, *, actor: str, roles: Sequence[str], method: str, route: str, path: str, status: int,
                       claim_ids: Sequence[str], correlation_id: str, client: str | None,
                       duration_ms: float) -> dict[str, Any]:
        """Write one request record and return it; AuditError when it cannot be written."""
        ids = list(claim_ids)
        fields: dict[str, Any] = {
            "event": REQUEST_EVENT, "actor": actor, "roles": sorted(roles), "method": method, "route": route,
            "path": path, "status": status, "claim_ids": ids[:MAX_AUDITED_CLAIM_IDS],
            "correlation_id": correlation_id, "client": client, "duration_ms": round(duration_ms, 1),
        }
        if len(ids) > MAX_AUDITED_CLAIM_IDS:
            fields["claim_ids_omitted"] = len(ids) - MAX_AUDITED_CLAIM_IDS
        return self.append_event(fields)


def new_correlation_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template, or 'unmatched' (a 404): bounded, id-free metric and audit labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Correlation id, metrics and the after-response audit record for every HTTP request."""

    def __init__(self, app: ASGIApp, *, audit: RequestAuditLog, metrics: ApiMetrics,
                 audited: Callable[[str], bool] = lambda _route: True,
                 identify: Callable[[str], Any] | None = None) -> None:
        self.app = app
        self.audit = audit
        self.metrics = metrics
        self.audited = audited
        self.identify = identify  # bearer token -> principal or None: names the caller of a request no route checked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        offered = _header(scope, CORRELATION_HEADER.encode())
        correlation_id = offered if offered and CORRELATION_ID.match(offered) else new_correlation_id()
        state[STATE_CORRELATION_ID] = correlation_id
        status = 500

        async def send_with_context(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Correlation-ID"] = correlation_id
            await send(message)

        try:
            with correlation_scope(correlation_id):  # every log line of the request names it
                if offered is not None and not CORRELATION_ID.match(offered):
                    status = 400
                    await _bad_correlation_id(send_with_context, correlation_id)
                else:
                    await self.app(scope, receive, send_with_context)
        finally:
            await self._after(scope, state, status, correlation_id, time.perf_counter() - started)

    async def _after(self, scope: Scope, state: MutableMapping[str, Any], status: int, correlation_id: str,
                     seconds: float) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
        self.metrics.duration.labels(method=method, route=route).observe(seconds)
        if not self.audited(route):
            return
        principal = state.get(STATE_PRINCIPAL) or self._identified(scope)
        client = scope.get("client")
        path = str(scope.get("path", ""))
        actor = getattr(principal, "subject", None) or "anonymous"
        roles = [str(role) for role in getattr(principal, "roles", ())]
        claim_ids = list(state.get(STATE_CLAIM_IDS, []))
        address = str(client[0]) if client else None

        def write() -> None:
            self.audit.append_request(actor=actor, roles=roles, method=method, route=route, path=path, status=status,
                                      claim_ids=claim_ids, correlation_id=correlation_id, client=address,
                                      duration_ms=seconds * 1000)

        try:
            await anyio.to_thread.run_sync(write)
        except AuditError as exc:
            self.metrics.audit_failures.inc()
            log.error("request %s %s (%s) not audited: %s", method, route, correlation_id, exc)


    def _identified(self, scope: Scope) -> Any:
        """The caller of a request that no route authenticated (a 404, a 405), from its token if it verifies."""
        header = _header(scope, b"authorization")
        if self.identify is None or header is None or not header.lower().startswith("bearer "):
            return None
        return self.identify(header[7:].strip())


async def _bad_correlation_id(send: Send, correlation_id: str) -> None:
    body = orjson.dumps({"type": "about:blank", "title": "Bad Request", "status": 400,
                         "detail": "X-Correlation-ID: expected 1-64 characters of A-Z a-z 0-9 . _ -, found another "
                                   "value", "correlation_id": correlation_id})
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

