"""POST /v1/reveal: audited re-identification of a protected record, for the privacy officer (as `claims reveal`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from libs.api.audit import STATE_CLAIM_IDS
from libs.api.auth import Principal, Role
from libs.api.context import context_of, require
from libs.api.problems import ApiProblem
from libs.phi.errors import AuditError, DecryptionError, PhiError, RevealDeniedError
from libs.phi.masking import mask_revealed

router = APIRouter(tags=["phi"])
POLICY_ROLE = "privacy-officer"  # the PHI policy's role (configs/security/phi-policy.json) the API role maps to


class RevealRequest(BaseModel):
    """A protected record (as in Kafka, silver or a `claims reveal --claim-file`) and the PHI fields wanted."""

    record: dict[str, Any] = Field(description="The protected claim record: claim_id, phi_sealed, phi_envelope...")
    fields: list[str] = Field(min_length=1, description="Dotted PHI paths, e.g. patient.last_name.")
    reason: str = Field(min_length=1, max_length=500, description="Why the PHI is needed (case or ticket).")


@router.post("/v1/reveal", responses={403: {"description": "Not a privacy officer, or the policy refuses a field."},
                                      422: {"description": "The record does not decrypt (tampered or another key)."},
                                      503: {"description": "The audit record could not be written: nothing revealed."}})
def reveal(body: RevealRequest, request: Request,
           principal: Annotated[Principal, Depends(require(Role.PRIVACY_OFFICER))]) -> dict[str, Any]:
    """Decrypt the requested PHI fields of one protected record. Every request is audited before anything is
    returned (the PHI audit's phi.reveal record, then the API's request record); outside production the values are
    shown masked."""
    context = context_of(request)
    claim_id = body.record.get("claim_id")
    if isinstance(claim_id, str):
        setattr(request.state, STATE_CLAIM_IDS, [claim_id])
    try:
        values = context.ingest.protector.reveal(body.record, body.fields, actor=principal.subject, role=POLICY_ROLE,
                                                 reason=body.reason)
    except RevealDeniedError as exc:
        raise ApiProblem(403, f"{exc} (audited)") from None
    except DecryptionError as exc:
        raise ApiProblem(422, f"{exc} (audited)") from None
    except AuditError as exc:
        raise ApiProblem(503, f"{exc}; nothing was revealed") from None
    except PhiError as exc:
        raise ApiProblem(400, str(exc)) from None
    masked = context.settings.security.mask_phi
    return {"claim_id": claim_id, "environment": context.settings.security.environment.value, "masked": masked,
            "values": mask_revealed(values) if masked else values}
