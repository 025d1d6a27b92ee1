"""Checks that take seconds, run before a command starts a JVM or waits on a client: is what it needs there?

Why: a missing broker, topic, table, warehouse or keyring otherwise surfaces minutes later as a client timeout or a
Spark exception whose message is withheld (it may quote record values). Each check here knows what it looked for, so
its failure is ONE line built only from settings (paths, addresses, topic names) and never from data:

    expected <what>, found <what>; <the command that fixes it>

`PreflightError` carries that line; it is `phi_safe` (libs.phi.logging passes its message through), the CLI prints it
and exits 2, and the batch ledger records it. `explain_failure` turns a failure that happened anyway (the broker went
away mid-run, a table was deleted) into the same line by re-running the cheap checks, and otherwise describes the
failure by its structure only: exception classes and Spark error conditions, never a message that may hold a value.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from libs.settings import KafkaSettings, KeyProviderKind, LakeSettings, SecuritySettings, Settings, WarehouseSettings
from libs.settings import WarehouseKind as _WarehouseKind

EXIT_PREFLIGHT = 2  # the exit code of every failed check (1 stays "the job itself failed")

FIX_BROKER = "start one with `make kafka-up` (claims kafka up)"
FIX_TOPICS = "create them with `make topics` (claims topics)"
FIX_LAKE = "run the stream first: `make run`, or `claims stream --available-now` with a broker up"

log = logging.getLogger("claims.preflight")


class PreflightError(RuntimeError):
    """A dependency of a command is missing; `str(error)` is the one line a person reads (no PHI: settings only)."""

    phi_safe = True

    def __init__(self, expected: str, found: str, fix: str) -> None:
        self.expected, self.found, self.fix = expected, found, fix
        super().__init__(f"expected {expected}, found {found}; {fix}")


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file:"))


# ---------------------------------------------------------------------------------------------------------- Kafka


def check_broker(kafka: KafkaSettings, timeout: float | None = None) -> set[str]:
    """The topic names on the broker; PreflightError when no broker answers within `timeout` seconds."""
    from confluent_kafka import KafkaException  # noqa: PLC0415  (keep `import libs.preflight` light)
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    from libs.kafka.client_config import KafkaConfigError, client_config  # noqa: PLC0415

    wait = timeout if timeout is not None else kafka.preflight_timeout_seconds
    try:
        config = client_config(kafka, **{"socket.connection.setup.timeout.ms": max(1000, int(wait * 1000))})
    except KafkaConfigError as exc:
        raise PreflightError("a usable Kafka client configuration", str(exc), "fix the kafka settings") from None
    config["log_level"] = 0  # librdkafka's "connection refused" lines: this check's answer says it once, clearly
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=wait)
    except KafkaException:
        metadata = None
    if metadata is None or not metadata.brokers:
        raise PreflightError(f"a Kafka broker at {kafka.bootstrap_servers}",
                             f"none answering within {wait:g} s", FIX_BROKER)
    return set(metadata.topics)


def check_topics(kafka: KafkaSettings, roles: Iterable[str] | None = None, *, timeout: float | None = None) -> None:
    """The broker answers and holds the topics of `roles` (raw, alerts, ...; all of topics.json when None)."""
    from libs.kafka.topics import TopicsFileError, load_topics  # noqa: PLC0415

    try:
        topics = load_topics(kafka.topics_file)
    except (TopicsFileError, OSError) as exc:
        raise PreflightError(f"topic definitions in {kafka.topics_file}", type(exc).__name__,
                             "restore configs/kafka/topics.json") from None
    wanted = [topics.name(role) for role in roles] if roles is not None else [spec.name for spec in topics.all()]
    present = check_broker(kafka, timeout)
    missing = [name for name in wanted if name not in present]
    if missing:
        raise PreflightError(f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} on "
                             f"{kafka.bootstrap_servers}", "missing", FIX_TOPICS)


# ----------------------------------------------------------------------------------------------------------- lake

# The tables the stream writes that readers need; gold and the warehouse stage are the batch's own.
STREAM_TABLES = ("silver", "claim_events", "quarantine", "bronze")


def check_lake(lake: LakeSettings, tables: Iterable[str] = STREAM_TABLES) -> None:
    """The stream's Delta tables exist under a local lake root (an s3a:// lake is checked by the job itself)."""
    from libs.lake import LakeTables  # noqa: PLC0415

    locations = LakeTables.from_settings(lake)
    missing = [name for name in tables
               if _is_local(getattr(locations, name))
               and not (_local(getattr(locations, name)) / "_delta_log").is_dir()]
    if not missing:
        return
    first = getattr(locations, missing[0])
    others = f" (and {', '.join(missing[1:])})" if missing[1:] else ""
    raise PreflightError(f"the {missing[0]} Delta table at {first}", f"no table there{others}", FIX_LAKE)


def lake_days(lake: LakeSettings) -> list[date]:
    """The UTC days bronze holds (its `ingest_date=` partitions), oldest first; empty for a remote or missing lake."""
    from libs.lake import LakeTables  # noqa: PLC0415

    bronze = LakeTables.from_settings(lake).bronze
    if not _is_local(bronze) or not _local(bronze).is_dir():
        return []
    days: list[date] = []
    for child in _local(bronze).glob("ingest_date=*"):
        with contextlib.suppress(ValueError):
            days.append(date.fromisoformat(child.name.split("=", 1)[1]))
    return sorted(days)


def check_day_in_lake(lake: LakeSettings, day: date | None) -> None:
    """The lake holds claims received on `day` (None: any day). Names the days it holds when it does not."""
    days = lake_days(lake)
    if day is None or not days or day in days:
        return
    shown = ", ".join(d.isoformat() for d in days[-5:])
    raise PreflightError(f"claims received on {day.isoformat()} in {lake.root}", f"claims of {shown} only",
                         f"run `claims batch --date {days[-1].isoformat()}` (or --all)")


# ------------------------------------------------------------------------------------------ warehouse and keyring


def check_warehouse(warehouse: WarehouseSettings) -> None:
    """The local DuckDB warehouse file exists (Redshift is reached by the command itself)."""
    if warehouse.kind is not _WarehouseKind.DUCKDB or warehouse.duckdb_path.is_file():
        return
    raise PreflightError(f"a DuckDB warehouse at {warehouse.duckdb_path}", "no file",
                         f"load it with `claims batch --date {date.today().isoformat()}` (or `make run`)")


def check_keyring(security: SecuritySettings, *, protects: str | None = None) -> None:
    """The local keyring exists; `protects` names the data it is needed for (a new keyring could not open it)."""
    if security.key_provider is not KeyProviderKind.LOCAL or security.tokenization_secret is not None:
        return
    if security.local_key_file.is_file():
        return
    what = f"the local keyring that protected {protects}" if protects else "the local keyring"
    raise PreflightError(f"{what} at {security.local_key_file}", "no file",
                         "restore that file, or start over with `make run FRESH=1` (claims run --fresh)")


# ------------------------------------------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Needs:
    """What a command needs before it starts (each flag adds its checks)."""

    broker: bool = False
    topics: tuple[str, ...] = ()
    lake: bool = False
    warehouse: bool = False
    keyring: bool = False


def preflight(settings: Settings, needs: Needs) -> None:
    """Run the checks `needs` asks for, cheapest first; the first failure raises PreflightError."""
    if needs.lake:
        check_lake(settings.lake)
    if needs.keyring:
        check_keyring(settings.security, protects=settings.lake.root if needs.lake else None)
    if needs.warehouse:
        check_warehouse(settings.warehouse)
    if needs.topics:
        check_topics(settings.kafka, needs.topics)
    elif needs.broker:
        check_broker(settings.kafka)


# ------------------------------------------------------------------------------------------ failures that happen


def _java_classes(exc: BaseException) -> list[str]:
    """Class names of a Py4JJavaError's Java exception and its causes (structure only, never messages)."""
    java = getattr(exc, "java_exception", None)
    names: list[str] = []
    with contextlib.suppress(Exception):  # the JVM may be gone already; then the Python side is all there is
        while java is not None and len(names) < 8:
            names.append(str(java.getClass().getName()))
            cause = java.getCause()
            java = cause if cause is not None and not cause.equals(java) else None
    return names


def _condition(exc: BaseException) -> str | None:
    """The Spark error condition (e.g. DELTA_TABLE_NOT_FOUND): a fixed identifier, no values."""
    for getter in ("getCondition", "getErrorClass"):
        method = getattr(exc, getter, None)
        if callable(method):
            with contextlib.suppress(Exception):
                value = method()
                if isinstance(value, str) and value:
                    return value
    return None


def describe_structure(exc: BaseException) -> str:
    """'<Type> [<condition>] (<Java classes>)': what kind of failure, without any message text."""
    parts = [type(exc).__name__]
    condition = _condition(exc)
    if condition:
        parts.append(f"[{condition}]")
    classes = _java_classes(exc)
    if classes:
        parts.append(f"({' caused by '.join(dict.fromkeys(classes))})")
    code = _kafka_error_name(exc)
    if code:
        parts.append(f"[{code}]")
    return " ".join(parts) + " (message withheld: it may contain record values)"


def _kafka_error_name(exc: BaseException) -> str | None:
    """The librdkafka error code's name of a KafkaException (e.g. _TRANSPORT, NOT_LEADER_FOR_PARTITION)."""
    first = exc.args[0] if exc.args else None
    name = getattr(first, "name", None)
    if callable(name):
        with contextlib.suppress(Exception):
            return str(name())
    return None


def _mentions(exc: BaseException, *fragments: str) -> bool:
    names = " ".join([type(exc).__name__, _condition(exc) or "", *_java_classes(exc)])
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None:
        names += " " + type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    return any(fragment in names for fragment in fragments)


def explain_failure(exc: BaseException, settings: Settings, needs: Needs) -> str:
    """One PHI-free line for a command's failure.

    A PreflightError or another `phi_safe` error speaks for itself. Otherwise the checks of `needs` run again: a
    dependency that went away (the usual cause of a Kafka timeout or a missing-table exception) is named with its
    fix. What is left is described by its structure (libs.phi.logging withholds messages that may quote values).
    """
    from libs.phi.logging import safe_exception_message  # noqa: PLC0415

    if isinstance(exc, PreflightError):
        return str(exc)
    if getattr(exc, "phi_safe", False):
        return safe_exception_message(exc)
    try:
        preflight(settings, needs)
    except PreflightError as found:
        return str(found)
    except Exception:  # the explanation must not replace the failure it explains
        log.debug("re-running the checks failed", exc_info=True)
    if _mentions(exc, "TimeoutException", "KafkaException"):
        return (f"expected Kafka at {settings.kafka.bootstrap_servers} to answer, found a client timeout "
                f"({describe_structure(exc)}); check `claims kafka status`")
    detail = safe_exception_message(exc)
    return detail if "withheld" not in detail else describe_structure(exc)


def one_line(message: Any) -> str:
    """A message as one line (a person reads it; a ledger stores it)."""
    return " ".join(str(message).split())
