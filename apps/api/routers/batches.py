"""GET/POST /v1/batches: start the daily batch for a date and follow it (libs.api.batches runs it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from libs.api.auth import Principal, Role
from libs.api.batches import BatchAlreadyRunningError, BatchJob
from libs.api.context import context_of, require
from libs.api.problems import ApiProblem
from libs.api.warehouse import WarehouseUnavailableError, recent_batch_runs
from libs.preflight import PreflightError
from libs.warehouse.redshift_query import RedshiftQueryError

router = APIRouter(tags=["batches"])
LEDGER_ROWS = 20


class BatchRequest(BaseModel):
    """Which day of claims to process (received that UTC day); default: yesterday UTC, as the daily schedule."""

    date: dt.date | None = Field(default=None, description="YYYY-MM-DD; default yesterday (UTC).")


def _job_answer(job: BatchJob) -> dict[str, Any]:
    return {**job.as_dict(), "status_url": f"/v1/batches/{job.job_id}"}


def _ledger(request: Request) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Recent rows of the warehouse's batch_runs ledger (DuckDB read-only, or Redshift), or why they cannot be read
    now."""
    context = context_of(request)
    try:
        with context.warehouse.connection() as connection:
            runs = recent_batch_runs(connection, limit=LEDGER_ROWS)
    except (WarehouseUnavailableError, RedshiftQueryError) as exc:  # no warehouse yet, a batch holds DuckDB's lock,
        return None, str(exc)                                      # or Redshift has no ledger yet
    except duckdb.Error as exc:
        return None, f"the ledger cannot be read now ({type(exc).__name__})"
    rows = [{"batch_run_id": run.batch_run_id, "run_date": run.run_date.isoformat() if run.run_date else None,
             "status": run.status, "started_at": run.started_at.isoformat() if run.started_at else None,
             "duration_seconds": run.duration_seconds, "valid_rows": run.valid_rows,
             "quarantined_rows": run.quarantined_rows, "error": run.error_message} for run in runs]
    return rows, None


@router.get("/v1/batches")
def list_batches(request: Request,
                 _principal: Annotated[Principal, Depends(require(Role.OPERATOR, Role.ANALYST))]) -> dict[str, Any]:
    """Batch runs started through this API (newest first) and the warehouse ledger's recent runs."""
    ledger, ledger_note = _ledger(request)
    return {"jobs": [_job_answer(job) for job in context_of(request).batches.jobs()], "ledger": ledger,
            "ledger_note": ledger_note}


@router.get("/v1/batches/{job_id}", responses={404: {"description": "No such batch job."}})
def get_batch(job_id: str, request: Request,
              _principal: Annotated[Principal, Depends(require(Role.OPERATOR, Role.ANALYST))]) -> dict[str, Any]:
    """One batch run started through this API: queued, running, succeeded (with counts) or failed (with why)."""
    job = context_of(request).batches.get(job_id)
    if job is None:
        raise ApiProblem(404, "expected the id of a batch job started through this API, found an unknown id")
    return _job_answer(job)


@router.post("/v1/batches", status_code=202, responses={
    409: {"description": "A run for that date is running."},
    503: {"description": "A dependency of the batch is missing (broker, alerts topic, the stream's tables, claims of "
                         "that day): the detail is the line `claims batch` prints, with the command that fixes it."}})
def post_batch(request: Request, principal: Annotated[Principal, Depends(require(Role.OPERATOR))],
               body: BatchRequest | None = None) -> JSONResponse:
    """Run the daily batch (silver -> warehouse, batch fraud screens) for a date in the background: 202 and a status
    URL; 409 while a run for that date is going."""
    day = (body.date if body is not None else None) or (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    try:
        job = context_of(request).batches.submit(day, requested_by=principal.subject)
    except BatchAlreadyRunningError as exc:
        raise ApiProblem(409, str(exc), extra={"job": _job_answer(exc.job)}) from None
    except PreflightError as exc:
        raise ApiProblem(503, str(exc)) from None
    answer = _job_answer(job)
    return JSONResponse(answer, status_code=202, headers={"Location": answer["status_url"]})
