"""GET /v1/analytics/{summary,providers,quality,fraud} and /v1/stream/lag: read-only analytics for the analyst role.

Thin: the SQL is libs.analytics.queries (the same functions as `claims analytics`), warehouse access
libs.api.warehouse, the lag libs.api.stream_lag. Every answer is one page of PHI-free rows (aggregates; no member
token, no PHI column) with `has_more` and the URL of the next page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from libs.analytics import queries
from libs.api.auth import Principal, Role
from libs.api.context import context_of, require
from libs.api.problems import ApiProblem
from libs.api.stream_lag import read_stream_lag
from libs.api.warehouse import WarehouseUnavailableError

router = APIRouter(tags=["analytics"])
T = TypeVar("T")

Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
DateFrom = Annotated[dt.date | None, Query(alias="from", description="First intake day (YYYY-MM-DD), inclusive.")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="Last intake day (YYYY-MM-DD), inclusive.")]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="Rows per page.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip (the previous page's offset + limit).")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or bad bearer token."}, 403: {"description": "The token lacks the analyst role."},
    422: {"description": "A bad filter or paging parameter (or from after to)."},
    503: {"description": "No warehouse yet (build it with `claims batch --date YYYY-MM-DD`), or a batch is writing "
                         "it (Retry-After)."},
}


def _check_range(date_from: dt.date | None, date_to: dt.date | None) -> None:
    if date_from is not None and date_to is not None and date_from > date_to:
        msg = f"from/to: expected from <= to, found from {date_from.isoformat()} after to {date_to.isoformat()}"
        raise ApiProblem(422, msg)


def _answer(request: Request, page: queries.Page[Any]) -> dict[str, Any]:
    """The page as JSON, with the next page's URL (same filters) when there is one."""
    following = None
    if page.has_more:
        params = {**request.query_params, "limit": str(page.limit), "offset": str(page.offset + page.limit)}
        following = f"{request.url.path}?{urlencode(params)}"
    return {"rows": [asdict(row) for row in page.rows], "limit": page.limit, "offset": page.offset,
            "has_more": page.has_more, "next": following}


async def _run(request: Request, query: Callable[..., queries.Page[T]], **arguments: Any) -> dict[str, Any]:
    """Run `query` on a read-only warehouse connection in a worker thread; 503 when the warehouse cannot answer."""
    warehouse = context_of(request).warehouse

    def work() -> queries.Page[T]:
        with warehouse.connection() as connection:
            return query(connection, **arguments)

    try:
        page = await run_in_threadpool(work)
    except WarehouseUnavailableError as exc:
        headers = {"Retry-After": str(exc.retry_after_seconds)} if exc.retry_after_seconds else None
        raise ApiProblem(503, str(exc), headers=headers) from None
    except queries.AnalyticsError as exc:  # parameters are validated above: what is left is a missing table
        raise ApiProblem(503, str(exc)) from None
    return _answer(request, page)


@router.get("/v1/analytics/summary", responses=_RESPONSES)
async def summary(request: Request, _principal: Analyst, *, date_from: DateFrom = None,
                  date_to: DateTo = None,
                  claim_type: Annotated[str | None, Query(max_length=16, description="professional or "
                                                                                      "institutional.")] = None,
                  payer_id: Annotated[str | None, Query(max_length=80)] = None,
                  limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Standing claims and billed amount by intake day, claim type and payer, with the day's valid ratio."""
    _check_range(date_from, date_to)
    return await _run(request, queries.claims_summary, date_from=date_from, date_to=date_to, claim_type=claim_type,
                      payer_id=payer_id, limit=limit, offset=offset)


@router.get("/v1/analytics/providers", responses=_RESPONSES)
async def providers(request: Request, _principal: Analyst, *, date_from: DateFrom = None,
                    date_to: DateTo = None,
                    min_claims: Annotated[int, Query(ge=0)] = 0,
                    order_by: Annotated[Literal["billed", "claims", "alerts"], Query()] = "billed",
                    limit: Limit = 20, offset: Offset = 0) -> dict[str, Any]:
    """The top billing providers (billed amount, claims, fraud alerts) over the chosen intake days."""
    _check_range(date_from, date_to)
    return await _run(request, queries.billing_providers, date_from=date_from, date_to=date_to,
                      min_claims=min_claims, order_by=order_by, limit=limit, offset=offset)


@router.get("/v1/analytics/quality", responses=_RESPONSES)
async def quality(request: Request, _principal: Analyst, *, date_from: DateFrom = None,
                  date_to: DateTo = None,
                  source_format: Annotated[str | None, Query(max_length=24)] = None,
                  top: Annotated[int, Query(ge=0, le=queries.MAX_TOP_REASONS,
                                            description="Reason codes per row.")] = 3,
                  limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Valid ratio and the top quarantine reason codes by intake day and source format."""
    _check_range(date_from, date_to)
    return await _run(request, queries.quality_by_day, date_from=date_from, date_to=date_to,
                      source_format=source_format, top=top, limit=limit, offset=offset)


@router.get("/v1/analytics/fraud", responses=_RESPONSES)
async def fraud(request: Request, _principal: Analyst, *, date_from: DateFrom = None,
                date_to: DateTo = None,
                rule: Annotated[str | None, Query(max_length=64, description="A fraud rule code.")] = None,
                limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Claims alerted per fraud rule and intake day (a lead for investigators, never a finding)."""
    _check_range(date_from, date_to)
    return await _run(request, queries.fraud_alerts_by_rule, date_from=date_from, date_to=date_to, rule=rule,
                      limit=limit, offset=offset)


@router.get("/v1/stream/lag", responses={401: _RESPONSES[401], 403: _RESPONSES[403]})
async def stream_lag(request: Request,
                     _principal: Annotated[Principal, Depends(require(Role.ANALYST, Role.OPERATOR))]
                     ) -> dict[str, Any]:
    """The stream's consumer lag from the lag exporter or the stream's metrics endpoint; `available` false (and
    'no stream metrics' with what was tried) when neither answers."""
    lag = await run_in_threadpool(read_stream_lag, context_of(request).lag_sources)
    return lag.as_dict()
