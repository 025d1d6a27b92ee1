"""The claims REST API: FastAPI app wiring and the uvicorn entry point (`claims api`, `make serve`).

Thin: routers in apps/api/routers; authentication, rate limits, audit, readiness and batch runs in libs/api; the
ingestion core in libs/ingest. OpenAPI at /docs (and /openapi.json).

    claims api --host 127.0.0.1 --port 8080
    python -m apps.api.main
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.api.routers import batches, claims, health, reveal
from libs.api.audit import RequestContextMiddleware
from libs.api.context import ApiContext, build_context
from libs.api.problems import http_problem_handler, validation_problem_handler
from libs.settings import Settings, load_settings

# Probes and docs carry no identity and touch no claims; auditing a kubelet probe every ten seconds would bury the
# records that matter. Every other request, refused or not (404s included), is audited.
UNAUDITED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json",
                              "/redoc"})


def create_app(settings: Settings | None = None, *, context: ApiContext | None = None) -> FastAPI:
    """The API for `settings` (default: loaded from the environment); tests pass their own `context`."""
    context = context or build_context(settings or load_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(title="Medical claims pipeline API", version="1.0.0", lifespan=lifespan,
                  description="Claims ingestion (X12 837, FHIR R4, canonical JSON), batch runs, health and metrics. "
                              "OAuth2 bearer JWTs with roles; every request is audited. See docs/api.md.")
    app.state.context = context
    app.add_middleware(RequestContextMiddleware, audit=context.audit, metrics=context.metrics,
                       audited=lambda route: route not in UNAUDITED_ROUTES, identify=context.identify)
    app.add_exception_handler(StarletteHTTPException, http_problem_handler)
    app.add_exception_handler(RequestValidationError, validation_problem_handler)
    for router in (claims.router, batches.router, reveal.router, health.router):
        app.include_router(router)
    return app


def serve(host: str, port: int, settings: Settings | None = None, *, ssl_certfile: str | None = None,
          ssl_keyfile: str | None = None) -> None:
    """Run the API with uvicorn until interrupted (one process; scale out with replicas). With a certificate and key
    it serves HTTPS itself (in Kubernetes the load balancer passes TLS through to the pods)."""
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=True,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def main() -> None:
    """`python -m apps.api.main`: the API on settings.monitoring.api_port, loopback only."""
    settings = load_settings()
    serve("127.0.0.1", settings.monitoring.api_port, settings)


if __name__ == "__main__":
    main()
