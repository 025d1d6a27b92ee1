"""Topic definitions loaded from configs/kafka/topics.json, the only source of topic names.

Why: the producer, the Spark streaming job, the dead-letter path, the deploy step and the tests must agree on names,
partition counts and retention. Code never spells a topic name; it asks `load_topics(path).raw` (or `.validated`,
`.processed`, `.quality`, `.alerts`, `.dead_letter`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class TopicRole(StrEnum):
    """What a topic carries in the pipeline; the keys of the `topics` object in topics.json."""

    RAW = "raw"  # canonical claims as produced, before validation
    VALIDATED = "validated"  # claims that passed the validation rules
    PROCESSED = "processed"  # latest state per claim after replacements and voids (compacted)
    QUALITY = "quality"  # per-batch data-quality summaries
    ALERTS = "alerts"  # fraud and anomaly alerts
    DEAD_LETTER = "dead_letter"  # records that could not be parsed or processed, with reason codes


class TopicSpec(BaseModel):
    """One topic: name, partitions, replication factor and topic-level configuration overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    config: dict[str, str] = Field(default_factory=dict, description="Topic configs, e.g. retention.ms.")

    @field_validator("config", mode="before")
    @classmethod
    def _config_values_as_strings(cls, value: Any) -> Any:
        # Kafka topic configs are strings on the wire; accept JSON numbers (604800000) but store their text.
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}
        return value


class TopicsFileError(ValueError):
    """topics.json is missing, malformed or incomplete; the message names the file and the offending entry."""


class Topics:
    """All pipeline topics by role, with one attribute per role returning the topic *name*."""

    def __init__(self, specs: dict[TopicRole, TopicSpec], source: Path | None = None) -> None:
        missing = [role.value for role in TopicRole if role not in specs]
        if missing:
            msg = f"{source or 'topics'}: expected a topic for every role, missing {', '.join(missing)}"
            raise TopicsFileError(msg)
        names = [spec.name for spec in specs.values()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            msg = f"{source or 'topics'}: expected one role per topic name, found {', '.join(duplicates)} twice"
            raise TopicsFileError(msg)
        self.specs: dict[TopicRole, TopicSpec] = dict(specs)
        self.source = source

    def spec(self, role: TopicRole | str) -> TopicSpec:
        """The full definition of the topic that plays `role`."""
        return self.specs[TopicRole(role)]

    def name(self, role: TopicRole | str) -> str:
        """The topic name of `role`."""
        return self.spec(role).name

    def all(self) -> list[TopicSpec]:
        """Every topic definition, in role order."""
        return [self.specs[role] for role in TopicRole]

    @property
    def raw(self) -> str:
        return self.name(TopicRole.RAW)

    @property
    def validated(self) -> str:
        return self.name(TopicRole.VALIDATED)

    @property
    def processed(self) -> str:
        return self.name(TopicRole.PROCESSED)

    @property
    def quality(self) -> str:
        return self.name(TopicRole.QUALITY)

    @property
    def alerts(self) -> str:
        return self.name(TopicRole.ALERTS)

    @property
    def dead_letter(self) -> str:
        return self.name(TopicRole.DEAD_LETTER)

    def __repr__(self) -> str:
        return f"Topics({', '.join(f'{role.value}={spec.name}' for role, spec in self.specs.items())})"


def parse_topics(document: Any, source: Path | None = None) -> Topics:
    """Topics from the parsed document `{"topics": {role: {name, partitions, ...}}}`; keys starting '_' are notes."""
    where = str(source or "topics")
    if not isinstance(document, dict) or not isinstance(document.get("topics"), dict):
        msg = f"{where}: expected an object with a 'topics' object, found {type(document).__name__}"
        raise TopicsFileError(msg)
    specs: dict[TopicRole, TopicSpec] = {}
    for key, entry in document["topics"].items():
        if key.startswith("_"):
            continue
        try:
            role = TopicRole(key)
        except ValueError:
            expected = ", ".join(role.value for role in TopicRole)
            msg = f"{where}: topics.{key}: expected a role among {expected}, found {key!r}"
            raise TopicsFileError(msg) from None
        try:
            specs[role] = TopicSpec.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or key}: {e['msg']}" for e in exc.errors())
            msg = f"{where}: topics.{key}: {problems}"
            raise TopicsFileError(msg) from None
    return Topics(specs, source)


def load_topics(path: Path | str) -> Topics:
    """Read and validate topics.json (see `libs.settings.KafkaSettings.topics_file` for the default location)."""
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        msg = f"{path}: expected the Kafka topics file, found no such file"
        raise TopicsFileError(msg) from None
    except orjson.JSONDecodeError as exc:
        msg = f"{path}: line {exc.lineno} column {exc.colno}: expected JSON, {exc.msg}"
        raise TopicsFileError(msg) from None
    return parse_topics(document, path)


def prefixed_topics_file(destination: Path, prefix: str, source: Path) -> Path:
    """A copy of a topics file (same partitions and configs) whose topic names start with `prefix`.

    Each bench stage and the stream's warm-up get their own topics, so they never read each other's messages.
    """
    document = orjson.loads(source.read_bytes())
    for role, spec in document.get("topics", {}).items():
        if not role.startswith("_") and isinstance(spec, dict):
            spec["name"] = f"{prefix}-{spec['name']}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return destination
