"""Error answers as RFC 9457 problem details (`application/problem+json`), one shape for every status.

Why one shape: clients (and the audit of refused requests) need the status, a stable title and a detail that says what
was expected and what was found - never a value from the request (it may be PHI) and never a stack trace. Every
problem also carries the request's correlation id, so a caller's report can be found in the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.api.audit import STATE_CORRELATION_ID

PROBLEM_JSON = "application/problem+json"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
          429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class ApiProblem(HTTPException):
    """An error answer; `extra` members are added to the problem document (e.g. per-record outcomes)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.extra = extra or {}


def problem_response(request: Request, status: int, detail: str, *, headers: Mapping[str, str] | None = None,
                     extra: dict[str, Any] | None = None) -> JSONResponse:
    """The problem document for `status`."""
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail, "correlation_id": getattr(request.state, STATE_CORRELATION_ID, None)}
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def http_problem_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI/Starlette HTTP errors (ours, 404s, 405s) as problem documents."""
    assert isinstance(exc, StarletteHTTPException)
    extra = exc.extra if isinstance(exc, ApiProblem) else None
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    return problem_response(request, exc.status_code, detail, headers=exc.headers, extra=extra)


async def validation_problem_handler(request: Request, exc: Exception) -> JSONResponse:
    """Request parameter / JSON body validation errors: locations and error types only, never the input."""
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(part) for part in error.get('loc', ()))} ({error.get('type')})"
                for error in exc.errors()[:10]]
    return problem_response(request, 422, f"expected a valid request: {'; '.join(problems)}")
