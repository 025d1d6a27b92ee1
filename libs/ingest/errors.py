"""Why ingestion refused to start or to read an input, as one small exception tree.

    IngestError                     root; `retryable` says whether the same call can succeed later
    ├── ProtectorUnavailableError   no working PHI protector: nothing may be produced (never retryable as is)
    ├── KafkaUnavailableError       the broker does not answer or a topic is missing (retryable)
    ├── UnreadableInputError        a file or body is not in the format it claims to be (HTTP 400)
    ├── UnsupportedMediaTypeError   a body's media type is none the adapters read (HTTP 415)
    └── InputTooLargeError          a body is over the size limit (HTTP 413)

Messages say what was expected and what was found, and name the input, never its content (it may be PHI).
Per-record problems are not errors: they are adapter rejections with a reason code and a location.
"""

from __future__ import annotations


class IngestError(Exception):
    """Ingestion cannot proceed; the message names the input and what was expected."""

    retryable = False
    phi_safe = True  # messages name inputs, media types, topics and brokers; libs.phi.logging may pass them through


class ProtectorUnavailableError(IngestError):
    """The PHI protector could not be built (policy, keys): unprotected claims must never be produced."""


class KafkaUnavailableError(IngestError):
    """The broker does not answer, or the raw / dead-letter topic does not exist."""

    retryable = True


class UnreadableInputError(IngestError):
    """An input is not in the format it declares (not JSON, not UTF-8, no ISA segment, missing file...)."""


class UnsupportedMediaTypeError(IngestError):
    """A request body's media type is not one the adapters read."""


class InputTooLargeError(IngestError):
    """A request body exceeds the configured limit."""
