"""The claims REST API: FastAPI app wiring and the uvicorn entry point (`claims api`, `make serve`).

Thin: routers in apps/api/routers; authentication, rate limits, audit, readiness and batch runs in libs/api; the
ingestion core in libs/ingest. OpenAPI at /docs (and /openapi.json).

    claims api --host 127.0.0.1 --port 8080
    python -m apps.api.main
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.api.routers import analytics, batches, claims, dashboard, health, reveal
from libs.api.audit import RequestContextMiddleware
from libs.api.context import ApiContext, build_context
from libs.api.problems import http_problem_handler, validation_problem_handler
from libs.api.web_assets import missing_vendor_files
from libs.settings import Settings, load_settings

log = logging.getLogger("claims.api")
WORKER_HEALTHCHECK_SECONDS = 60

# Probes and docs carry no identity and touch no claims; auditing a kubelet probe every ten seconds would bury the
# records that matter. Every other request, refused or not (404s included), is audited.
# The dashboard's static files carry no data (the page's data calls are audited on their own routes).
UNAUDITED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json",
                              "/redoc", "/static/dashboard/{name}", "/static/vendor/{name}"})


def create_app(settings: Settings | None = None, *, context: ApiContext | None = None) -> FastAPI:
    """The API for `settings` (default: loaded from the environment); tests pass their own `context`."""
    context = context or build_context(settings or load_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(title="Medical claims pipeline API", version="1.0.0", lifespan=lifespan,
                  description="Claims ingestion (X12 837, FHIR R4, canonical JSON), analytics, batch runs, health and "
                              "metrics; the dashboard at /dashboard. "
                              "OAuth2 bearer JWTs with roles; every request is audited. See docs/api.md.")
    app.state.context = context
    if missing_vendor_files(context.web_assets):
        log.warning("dashboard disabled until its chart libraries are vendored: run `make web-assets` (expected "
                    "them in %s)", context.web_assets)
    app.add_middleware(RequestContextMiddleware, audit=context.audit, metrics=context.metrics,
                       audited=lambda route: route not in UNAUDITED_ROUTES, identify=context.identify)
    app.add_exception_handler(StarletteHTTPException, http_problem_handler)
    app.add_exception_handler(RequestValidationError, validation_problem_handler)
    for router in (claims.router, batches.router, reveal.router, health.router, analytics.router,
                   dashboard.router):
        app.include_router(router)
    return app


def serve(host: str, port: int, settings: Settings | None = None, *, ssl_certfile: str | None = None,
          ssl_keyfile: str | None = None, workers: int = 1) -> None:
    """Run the API with uvicorn until interrupted. With a certificate and key it serves HTTPS itself (in Kubernetes
    the load balancer passes TLS through to the pods).

    `workers` > 1 runs that many processes on one port (uvicorn's supervisor), each building its app from the
    environment's settings (CLAIMS__... / CLAIMS_CONFIG; `settings` must then be None): the ingestion path is
    CPU-bound Python (adapters, PHI protection), so processes, not threads, use more cores. Each worker has its own
    producer, rate limiter and batch runner; the audit chain and the idempotency store are files shared safely.
    """
    if workers > 1:
        if settings is not None:
            msg = "workers > 1: each worker loads its settings from the environment; pass settings=None"
            raise ValueError(msg)
        # The supervisor kills a worker that does not answer its health ping in time; importing the app (PySpark-free
        # but still FastAPI, DuckDB, confluent-kafka, cryptography) takes longer than uvicorn's 5 s on a busy host.
        uvicorn.run("apps.api.main:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="info", access_log=True, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=True,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def main() -> None:
    """`python -m apps.api.main`: the API on settings.monitoring.api_port, loopback only."""
    settings = load_settings()
    serve("127.0.0.1", settings.monitoring.api_port, settings)


if __name__ == "__main__":
    main()
