"""Errors raised by PHI protection; their messages are written to be PHI-free by construction.

Why a dedicated hierarchy: apps log exceptions, and an exception message is the easiest way for a name or a birth date
to leak into a log. Every error here is built only from field paths, claim IDs, key versions, roles and file locations,
never from field values, so `libs.phi.logging.safe_exception_message` may pass their text through unchanged.
"""

from __future__ import annotations


class PhiError(Exception):
    """Base class; the message never contains PHI (field values), only paths, IDs, versions and locations."""

    phi_safe = True


class PolicyError(PhiError):
    """The PHI policy file is malformed or does not cover the claim model's PHI fields exactly."""


class KeyMaterialError(PhiError):
    """A key is missing, unreadable, or the keyring file is unsafe (e.g. readable by other users)."""


class DecryptionError(PhiError):
    """A ciphertext could not be authenticated: wrong key, tampered bytes, or moved to another field/claim."""


class RevealDeniedError(PhiError):
    """Re-identification was refused (role not allowed, no reason given, or field not revealable). Always audited."""


class AuditError(PhiError):
    """The audit log could not be written or its hash chain does not verify."""
