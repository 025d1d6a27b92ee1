"""POST /v1/claims: claim documents in, per-record answers out (libs.ingest.service does the work)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from libs.api.audit import STATE_CLAIM_IDS, STATE_CORRELATION_ID
from libs.api.auth import Principal, Role
from libs.api.context import context_of, require
from libs.api.problems import ApiProblem
from libs.ingest import InputTooLargeError, MediaType, UnreadableInputError, UnsupportedMediaTypeError, media_type
from libs.ingest.idempotency import IdempotencyKeyInUseError, IdempotencyKeyReusedError, valid_key
from libs.ingest.service import IngestOutcome

router = APIRouter(tags=["claims"])

_EXAMPLES = {
    MediaType.JSON: {"schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
                     "example": {"claim_id": "PCLM0001", "claim_type": "professional", "...": "canonical claim"}},
    MediaType.NDJSON: {"schema": {"type": "string"}, "example": '{"claim_id": "PCLM0001", ...}\n'},
    MediaType.X12: {"schema": {"type": "string"}, "example": "ISA*00*          *00*...~GS*HC*...~ST*837*0001*..."},
    MediaType.FHIR: {"schema": {"type": "object"}, "example": {"resourceType": "Bundle", "entry": []}},
    MediaType.FHIR_NDJSON: {"schema": {"type": "string"}, "example": '{"resourceType": "Claim", ...}\n'},
}
_ANSWER = {"description": "Per-record answer: accepted (claim id, Kafka partition and offset), rejected (reason code, "
                          "location), failed (not acknowledged by Kafka)."}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: _ANSWER, 400: {"description": "The body is not in its declared format."},
    401: {"description": "No or bad bearer token."}, 403: {"description": "The token lacks the ingest role."},
    409: {"description": "A request with this Idempotency-Key is still running."},
    413: {"description": "The body is over api.max_body_bytes."},
    415: {"description": "Unknown Content-Type."},
    422: {"description": "No claim in the body (every record rejected), or an Idempotency-Key reused for "
                         "another body."},
    429: {"description": "Too many requests from this client."},
    503: {"description": "Kafka did not acknowledge every record; the answer lists which were and were not sent."},
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (InputTooLargeError) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        msg = f"expected a body of at most {limit:,} bytes, found Content-Length {int(declared):,}"
        raise InputTooLargeError(msg)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            msg = f"expected a body of at most {limit:,} bytes, found more"
            raise InputTooLargeError(msg)
        chunks.append(chunk)
    return b"".join(chunks)


def _status(outcome: IngestOutcome) -> int:
    """503 when Kafka did not take every record, 422 when no record is a claim, else 202 (replays answer the same)."""
    if outcome.failed:
        return 503
    if not outcome.accepted:
        return 422
    return 202


@router.post("/v1/claims", status_code=202, responses=_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {kind.value: example for kind, example
                                                                           in _EXAMPLES.items()}}})
async def post_claims(
    request: Request,
    principal: Annotated[Principal, Depends(require(Role.INGEST))],
    content_type: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                  description="Retries with the same key send nothing twice.")] = None,
) -> JSONResponse:
    """Ingest one document: a canonical claim or array (application/json), NDJSON, an X12 837 interchange, or a FHIR
    Claim / ExplanationOfBenefit / Bundle. Every record is protected (PHI) and produced to the raw topic; the answer
    is per record and carries no PHI."""
    context = context_of(request)
    try:
        kind = media_type(content_type)
        body = await read_body(request, context.settings.api.max_body_bytes)
    except UnsupportedMediaTypeError as exc:
        raise ApiProblem(415, str(exc)) from None
    except InputTooLargeError as exc:
        raise ApiProblem(413, str(exc)) from None
    if idempotency_key is not None and not valid_key(idempotency_key):
        raise ApiProblem(400, "Idempotency-Key: expected 1-255 visible ASCII characters, found another value")
    correlation_id = getattr(request.state, STATE_CORRELATION_ID)
    try:
        outcome = await run_in_threadpool(context.ingest.ingest, body, kind, correlation_id=correlation_id,
                                          idempotency_key=idempotency_key, scope=principal.subject)
    except UnreadableInputError as exc:
        raise ApiProblem(400, str(exc)) from None
    except IdempotencyKeyReusedError as exc:
        raise ApiProblem(422, str(exc)) from None
    except IdempotencyKeyInUseError as exc:
        raise ApiProblem(409, str(exc), headers={"Retry-After": "1"}) from None
    setattr(request.state, STATE_CLAIM_IDS, outcome.claim_ids)
    context.metrics.count_claims(len(outcome.accepted), len(outcome.rejected), len(outcome.failed))
    status = _status(outcome)
    if status == 202:
        return JSONResponse(outcome.as_dict(), status_code=202)
    if status == 503:
        detail = outcome.problem or (f"expected Kafka to acknowledge every record, found {len(outcome.failed)} "
                                     f"of {outcome.records} not acknowledged; retry with the same Idempotency-Key")
        raise ApiProblem(503, detail, headers={"Retry-After": "5"}, extra=outcome.as_dict())
    detail = (f"expected at least one claim, found none of {outcome.records} records usable"
              if outcome.records else "expected at least one claim, found an empty document")
    raise ApiProblem(422, detail, extra=outcome.as_dict())
