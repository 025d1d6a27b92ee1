"""GET /healthz (liveness), /readyz (Kafka, lake, warehouse), /metrics (Prometheus); no token needed (probes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from libs.api.context import context_of
from libs.api.readiness import check_lake, check_warehouse, run_checks

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Checks nothing external, so an outage elsewhere never restarts the API."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable; the answer names it."}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Kafka (broker and topics), the lake and the warehouse are reachable."""
    context = context_of(request)
    settings = context.settings
    results = await run_in_threadpool(run_checks, {
        "kafka": context.ingest.check_kafka,
        "lake": lambda: check_lake(settings),
        "warehouse": lambda: check_warehouse(settings),
    })
    failed = [result.name for result in results if not result.ok]
    body: dict[str, Any] = {
        "status": "ready" if not failed else "not ready",
        "checks": {result.name: {"ok": result.ok, "detail": result.detail} for result in results},
    }
    if failed:
        body["detail"] = f"unreachable: {', '.join(failed)}"
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latencies, claims accepted/rejected, and the producer's delivery counters."""
    return Response(generate_latest(context_of(request).registry), media_type=CONTENT_TYPE_LATEST)
