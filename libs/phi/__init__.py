"""HIPAA data protection: PHI policy, tokenization, envelope encryption, masking, Safe Harbor export, audit, logging.

The producer calls `PhiProtector.protect` on every claim before it leaves the process; see docs/security.md for how
these modules map to the HIPAA technical safeguards (45 CFR 164.312) and what remains the operator's job.
"""

from libs.phi.derived import PHI_DERIVED_KEY
from libs.phi.envelope import PHI_ENVELOPE_KEY
from libs.phi.errors import AuditError, DecryptionError, KeyMaterialError, PhiError, PolicyError, RevealDeniedError
from libs.phi.policy import PhiAction, PhiPolicy, load_policy
from libs.phi.protector import PHI_SEALED_KEY, PhiProtector

__all__ = [
    "PHI_DERIVED_KEY",
    "PHI_ENVELOPE_KEY",
    "PHI_SEALED_KEY",
    "AuditError",
    "DecryptionError",
    "KeyMaterialError",
    "PhiAction",
    "PhiError",
    "PhiPolicy",
    "PhiProtector",
    "PolicyError",
    "RevealDeniedError",
    "load_policy",
]
