"""Structured JSON logging with a PHI scrubber, and `safe_exception_message` for errors shown to people.

Why: logs are copied everywhere (CloudWatch, laptops, tickets) and are not covered by the pipeline's encryption, so
PHI must never reach them. Protection is layered because no single rule catches everything:
1. keys: values under PHI-named keys (member_id, last_name, dob, ssn, phone, address...) are redacted, at any depth;
   tokens (``tok:``) are kept because they are safe and useful for tracing, ciphertext is shortened;
2. patterns in every string (including the event message): SSN-like, phone-like, e-mail, dates near 'dob'/'birth'/
   'death', and X12 segments that carry member data (NM1*IL/QC, N3, N4, DMG, REF*SY);
3. objects: pydantic models (a Claim passed as a log field) are dumped and scrubbed as dicts; any other object is
   logged as its type name only, because its repr may hold anything;
4. exceptions: the message of an exception is replaced by `safe_exception_message`, which passes through only
   messages known to be PHI-free (libs.phi.errors, classes with ``phi_safe = True``, structured errors such as
   pydantic validation errors rendered without their input) and withholds the rest; tracebacks keep only
   file/line/function.
Bare 10-digit numbers preceded by 'npi' are kept: NPIs identify providers, not patients, and operators need them.

One set-up for every process (`configure_logging`): JSON lines through the scrubber, to `.local/logs/<process>.log`
by default (the terminal stays readable for progress bars and tables) or to stderr with `--log-format json` (how a
service runs: the platform collects stderr). A correlation id (`<run or request id>:<record index>`, carried in each
Kafka record's `correlation_id` header) is held in a context variable: `correlation_scope(id)` binds it for a block of
work and every log line inside carries it, so one claim can be followed from the producer or the API into the
stream's logs (libs.monitoring.correlation logs the stream side; docs/operations.md shows the walk).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import structlog
from pydantic import BaseModel, ValidationError

from libs.model import phi_fields
from libs.phi.envelope import is_ciphertext
from libs.phi.tokens import is_token
from libs.settings import LOCAL_DIR, Environment

REDACTED = "[REDACTED]"
_EXACT_PHI_KEYS = frozenset(
    {f.path.rsplit(".", 1)[-1] for f in phi_fields()}
    | {"name", "full_name", "patient_name", "member_name", "subscriber_name", "dob", "dod", "zip", "zip_code",
       "zipcode", "street", "mrn", "fax", "ip", "ip_address", "url", "device_id", "vin", "photo", "biometric"}
)
_PHI_KEY_PARTS = ("ssn", "dob", "birth", "death", "phone", "email", "member_id", "postal", "address", "first_name",
                  "last_name", "middle_name", "medical_record", "account_number", "social_security")
_SSN_RE = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)|(?i:\b(?:ssn|social security)\W{0,20})\d{9}(?!\d)")
_PHONE_RE = re.compile(r"(?<![\w-])(?:\+?1[-.\s]?)?(?:\(\d{3}\)\s?|\d{3}[-.\s]?)\d{3}[-.\s]?\d{4}(?![\w-])")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE_NEAR_RE = re.compile(
    r"(?i)(\b(?:dob|dod|birth\w*|born|death\w*|deceased|died)\b[^\n]{0,30}?)"
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|(?<!\d)\d{8}(?!\d))"
)
_X12_RE = re.compile(r"\b(NM1\*(?:IL|QC)|N3|N4|DMG\*D8|REF\*SY)\*[^~\n]*")
_NPI_CONTEXT = re.compile(r"(?i)npi\W{0,12}$")


def _phone(match: re.Match[str]) -> str:
    # A bare 10-digit run right after 'npi' is a provider identifier, not a phone number.
    if match.group(0).isdigit() and _NPI_CONTEXT.search(match.string[max(0, match.start() - 16):match.start()]):
        return match.group(0)
    return "[PHONE]"


def scrub_text(text: str) -> str:
    """Replace PHI-looking substrings of free text (messages, exception text) with placeholders."""
    text = _X12_RE.sub(lambda m: f"{m.group(1)}*{REDACTED}", text)
    text = _SSN_RE.sub("[SSN]", text)
    text = _EMAIL_RE.sub("[EMAIL]", text)
    text = _DATE_NEAR_RE.sub(lambda m: f"{m.group(1)}[DATE]", text)
    return _PHONE_RE.sub(_phone, text)


def is_phi_key(key: str) -> bool:
    """Whether a log field name suggests its value is PHI."""
    normalized = key.lower().replace("-", "_")
    return normalized in _EXACT_PHI_KEYS or any(part in normalized for part in _PHI_KEY_PARTS)


def _scrub_string(value: str, key: str | None) -> str:
    if is_token(value):
        return value  # keyed tokens are safe and let operators follow a member through the logs
    if is_ciphertext(value):
        return "enc:…"
    if key is not None and is_phi_key(key):
        return REDACTED
    if key is not None and "npi" in key.lower() and value.isdigit():
        return value  # a provider identifier that merely looks like a phone number
    return scrub_text(value)


def scrub_value(value: Any, key: str | None = None) -> Any:
    """A log-safe version of `value` (recursive); `key` is the field name it is logged under, if any."""
    phi_key = key is not None and is_phi_key(key)
    if value is None or isinstance(value, bool | int | float):
        return REDACTED if phi_key and value is not None else value
    if isinstance(value, str):
        return _scrub_string(value, key)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        if phi_key and not value:
            return REDACTED
        return {str(k): scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(item, key) for item in value]
    return f"<{type(value).__name__}>"  # arbitrary objects: their repr may carry PHI


# --------------------------------------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------------------------------------


def safe_exception_message(exc: BaseException) -> str:
    """'<Type>: <message>' when the message is known to be PHI-free, otherwise the type with the message withheld."""
    name = type(exc).__name__
    detail: str | None = None
    if getattr(exc, "phi_safe", False):
        detail = str(exc)
    elif isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['type']}"
                             for e in exc.errors(include_input=False, include_url=False)[:10])
        detail = f"{exc.error_count()} validation error(s) for {exc.title}: {problems}"
    elif isinstance(exc, json.JSONDecodeError):  # orjson.JSONDecodeError is a subclass
        detail = f"{exc.msg.split(':')[0]} at line {exc.lineno} column {exc.colno}"
    elif isinstance(exc, UnicodeDecodeError):
        detail = f"{exc.encoding} cannot decode byte at position {exc.start}: {exc.reason}"
    elif isinstance(exc, OSError):
        detail = (exc.strerror or "operating system error") + (f" ({exc.filename})" if exc.filename else "")
    if detail is None:
        return f"{name} (message withheld: it may contain PHI)"
    return f"{name}: {scrub_text(detail)}"


def _frames(tb: TracebackType | None) -> list[str]:
    return [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(tb)]


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """PHI-free structured description of an exception (message via safe_exception_message, frames, cause)."""
    fields: dict[str, Any] = {"exception_type": type(exc).__name__, "exception": safe_exception_message(exc),
                              "traceback": _frames(exc.__traceback__)}
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        fields["exception_cause"] = safe_exception_message(cause)
    return fields


# --------------------------------------------------------------------------------------------------------------------
# structlog processors and configuration
# --------------------------------------------------------------------------------------------------------------------


def scrub_exception(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace `exc_info` (and any `exception` text) with PHI-free exception fields."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    exc: BaseException | None = None
    if isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3 and isinstance(exc_info[1], BaseException):
        exc = exc_info[1]
    if exc is not None:
        event_dict.update(exception_fields(exc))
    elif isinstance(event_dict.get("exception"), str):  # pre-rendered traceback text from elsewhere
        event_dict["exception"] = scrub_text(event_dict["exception"])
    return event_dict


def scrub_phi(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact PHI-named keys and PHI-looking text in every field; structlog's own '_' fields are left alone.

    A well-formed correlation id is kept verbatim (random hex and a record number: no PHI, and a digit run inside it
    must not be mistaken for a phone number); anything else under that key is scrubbed like any other field.
    """
    for key in list(event_dict):
        if key == CORRELATION_KEY and is_correlation_id(event_dict[key]):
            continue
        if not key.startswith("_"):
            event_dict[key] = scrub_value(event_dict[key], None if key == "event" else key)
    return event_dict


# --------------------------------------------------------------------------------------------------------------------
# Correlation id
# --------------------------------------------------------------------------------------------------------------------

CORRELATION_KEY = "correlation_id"
_CORRELATION_RE = re.compile(r"[0-9a-f]{32}(?::\d{1,12})?")
_correlation_id: ContextVar[str | None] = ContextVar("claims_correlation_id", default=None)


def is_correlation_id(value: Any) -> bool:
    """Whether `value` is a run/request id (32 hex digits) or a record's id (`<run id>:<index>`)."""
    return isinstance(value, str) and _CORRELATION_RE.fullmatch(value) is not None


def current_correlation_id() -> str | None:
    """The correlation id bound in this context (thread, task), if any."""
    return _correlation_id.get()


@contextmanager
def correlation_scope(correlation_id: str | None) -> Iterator[str | None]:
    """Bind `correlation_id` to every log line written inside the block (restored afterwards, also on errors).

    The producer binds its run id around a produce run, the API its request id around a request; contextvars follow
    asyncio tasks and are per thread, so concurrent requests do not mix their ids.
    """
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


def add_correlation_id(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Add the bound correlation id to a log event that does not name one itself."""
    bound = _correlation_id.get()
    if bound is not None and CORRELATION_KEY not in event_dict:
        event_dict[CORRELATION_KEY] = bound
    return event_dict


def _shared_processors() -> list[Callable[..., Any]]:
    return [
        structlog.contextvars.merge_contextvars,
        add_correlation_id,
        add_process,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub_exception,
        scrub_phi,
    ]


class LogFormat(StrEnum):
    """Where a process writes its JSON log lines."""

    FILE = "file"  # .local/logs/<process>.log: the terminal keeps progress bars and summaries
    JSON = "json"  # stderr, one JSON object per line: how a service runs (EMR steps, containers)


LOG_DIR = LOCAL_DIR / "logs"
# Libraries that narrate at INFO: py4j logs every Python<->JVM connection it opens or closes (hundreds per stream run).
QUIET_LOGGERS = {"py4j": logging.WARNING}
_LOG_FILES: dict[Path, TextIO] = {}
_configured = False
_process: str | None = None


def add_process(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Name the process on every line (a module global, not a context variable: worker threads log too)."""
    if _process is not None:
        event_dict.setdefault("process", _process)
    return event_dict


def default_log_format(environment: Environment | str = Environment.LOCAL) -> LogFormat:
    """A file on a developer's machine; stderr wherever a platform collects it (every deployed environment)."""
    return LogFormat.FILE if Environment(environment) is Environment.LOCAL else LogFormat.JSON


def _log_file(path: Path) -> TextIO:
    # One open handle per file for the process' lifetime: handlers are replaced on reconfiguration, the file is not.
    handle = _LOG_FILES.get(path)
    if handle is None or handle.closed:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
        _LOG_FILES[path] = handle
    return handle


def configure_logging(
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    *,
    process: str | None = None,
    log_format: LogFormat | str | None = None,
    log_dir: Path = LOG_DIR,
) -> Path | None:
    """JSON logs for structlog and stdlib loggers alike, through the PHI scrubber; returns the log file, if any.

    Entry points call it once with their `process` name (`stream`, `batch`, `producer`, `cli-<command>`):
    `log_format` FILE (default) appends to `log_dir/<process>.log`, JSON writes to stderr; an explicit `stream` wins
    over both. A later call without `process`, `log_format` or `stream` (from library code that wants logging set
    up) keeps the entry point's configuration instead of replacing it.
    """
    global _configured  # noqa: PLW0603  (one logging set-up per process)
    if _configured and stream is None and process is None and log_format is None:
        return None
    target: Path | None = None
    if stream is None:
        if LogFormat(log_format or LogFormat.FILE) is LogFormat.FILE:
            target = log_dir / f"{process or 'claims'}.log"
            stream = _log_file(target)
        else:
            stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.JSONRenderer()],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    _configured = True
    global _process  # noqa: PLW0603
    _process = process or _process
    return target


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; call `configure_logging()` once at app start."""
    return structlog.get_logger(name)
