"""Create-or-update the pipeline's topics from configs/kafka/topics.json through the Kafka Admin API.

Why: the same idempotent step runs against the local broker (`claims topics`, test fixtures) and against MSK in the
deploy, so a topic's partitions and retention are changed by editing topics.json, never by hand. What it does per
topic: create it when missing; add partitions when the file asks for more (Kafka cannot remove partitions: fewer is
an error, because keys would silently move between partitions); set every config key the file names through
incremental alter (keys the file does not name keep the broker's value).
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from libs.kafka.client_config import client_config
from libs.kafka.topics import TopicSpec, load_topics
from libs.settings import KafkaSettings

log = logging.getLogger(__name__)

ADMIN_TIMEOUT_SECONDS = 30.0
SETTLE_POLL_SECONDS = 0.2


class TopicChange(StrEnum):
    """What ensure_topics did to one topic."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class TopicManagementError(RuntimeError):
    """A topic cannot be brought to its definition; the message names the topic and the broker's answer."""


def ensure_topics(
    settings: KafkaSettings, topics_file: Path, replication_factor: int | None = None
) -> dict[str, str]:
    """Bring every topic of `topics_file` to its definition; returns topic name -> created|updated|unchanged.

    `replication_factor` overrides the file's value for new topics (MSK stacks use 3; the file says 1 for the local
    single broker). An existing topic's replication factor is not changed (that is a partition reassignment).
    """
    topics = load_topics(topics_file)
    admin = AdminClient(client_config(settings))
    existing = _partition_counts(admin)
    results: dict[str, str] = {}
    missing = [spec for spec in topics.all() if spec.name not in existing]
    created = _create(admin, missing, replication_factor)
    for spec in topics.all():
        if spec.name in created:
            results[spec.name] = TopicChange.CREATED.value
        else:
            results[spec.name] = _update(admin, spec, existing.get(spec.name)).value
    changed = [spec for spec in topics.all() if results[spec.name] != TopicChange.UNCHANGED.value]
    _await_visible(admin, changed)
    return results


def delete_topics(settings: KafkaSettings, topics_file: Path) -> list[str]:
    """Delete every topic of `topics_file` that exists (scratch topics: the bench's stages, the stream's warm-up)."""
    admin = AdminClient(client_config(settings))
    existing = _partition_counts(admin)
    names = [spec.name for spec in load_topics(topics_file).all() if spec.name in existing]
    if names:
        failed = {name: error for name, error in _wait(admin.delete_topics(names, operation_timeout=10),
                                                        "delete topic").items() if error is not None}
        if failed:
            msg = "; ".join(f"delete topic {name}: {error.str()}" for name, error in failed.items())
            raise TopicManagementError(msg)
    return names


def _await_visible(admin: AdminClient, specs: list[TopicSpec], timeout: float = ADMIN_TIMEOUT_SECONDS) -> None:
    """Wait until the broker serves the new partitions and configs.

    Creations and changes are accepted by the KRaft controller and reach the broker's metadata cache a moment later;
    returning before that would let the next step (or the next ensure_topics) see the old state.
    """
    deadline = time.monotonic() + timeout
    pending = list(specs)
    while pending:
        counts = _partition_counts(admin)
        pending = [spec for spec in pending if counts.get(spec.name) != spec.partitions or _config_drift(admin, spec)]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(spec.name for spec in pending)
            msg = f"topics {names}: changes accepted but not visible on the broker after {timeout:.0f} s"
            raise TopicManagementError(msg)
        time.sleep(SETTLE_POLL_SECONDS)


def _partition_counts(admin: AdminClient) -> dict[str, int]:
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}


def _wait(futures: dict[Any, Any], what: str) -> dict[Any, KafkaError | None]:
    """Resolve admin futures; returns key -> None on success or the KafkaError."""
    outcome: dict[Any, KafkaError | None] = {}
    for key, future in futures.items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_SECONDS)
            outcome[key] = None
        except KafkaException as exc:
            outcome[key] = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if outcome[key] is None:
                msg = f"{what} {key}: broker call failed: {exc}"
                raise TopicManagementError(msg) from exc
    return outcome


def _create(admin: AdminClient, specs: list[TopicSpec], replication_factor: int | None) -> set[str]:
    """Create missing topics; returns the names actually created (another client may win the race)."""
    if not specs:
        return set()
    new_topics = [
        NewTopic(spec.name, num_partitions=spec.partitions,
                 replication_factor=replication_factor or spec.replication_factor, config=dict(spec.config))
        for spec in specs
    ]
    created: set[str] = set()
    for name, error in _wait(admin.create_topics(new_topics, request_timeout=ADMIN_TIMEOUT_SECONDS),
                             "create topic").items():
        if error is None:
            created.add(name)
            log.info("created topic %s", name)
        elif error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            msg = f"create topic {name}: expected success, broker answered {error.name()}: {error.str()}"
            raise TopicManagementError(msg)
    return created


def _update(admin: AdminClient, spec: TopicSpec, current_partitions: int | None) -> TopicChange:
    changed = False
    if current_partitions is None:  # created concurrently by someone else: re-read it
        current_partitions = _partition_counts(admin).get(spec.name, spec.partitions)
    if spec.partitions < current_partitions:
        msg = (f"topic {spec.name}: topics file expects {spec.partitions} partitions, the broker has "
               f"{current_partitions}; Kafka cannot remove partitions (raise the file's count or recreate the topic)")
        raise TopicManagementError(msg)
    if spec.partitions > current_partitions:
        _wait(admin.create_partitions([NewPartitions(spec.name, spec.partitions)],
                                      request_timeout=ADMIN_TIMEOUT_SECONDS), "add partitions to")
        log.info("topic %s: partitions %d -> %d", spec.name, current_partitions, spec.partitions)
        changed = True
    drift = _config_drift(admin, spec)
    if drift:
        resource = ConfigResource(
            ResourceType.TOPIC, spec.name,
            incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                                 for key, value in sorted(drift.items())],
        )
        outcome = _wait(admin.incremental_alter_configs([resource]), "alter configs of topic")
        for error in outcome.values():
            if error is not None:
                msg = f"alter configs of topic {spec.name}: broker answered {error.name()}: {error.str()}"
                raise TopicManagementError(msg)
        log.info("topic %s: configs set %s", spec.name, ", ".join(sorted(drift)))
        changed = True
    return TopicChange.UPDATED if changed else TopicChange.UNCHANGED


def _config_drift(admin: AdminClient, spec: TopicSpec) -> dict[str, str]:
    """The config keys of `spec` whose live value differs from the file's."""
    if not spec.config:
        return {}
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    futures = admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_SECONDS)
    try:
        entries = futures[resource].result(timeout=ADMIN_TIMEOUT_SECONDS)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return dict(spec.config)  # just created, not yet in this broker's metadata: everything is still pending
        msg = f"describe configs of topic {spec.name}: broker call failed: {exc}"
        raise TopicManagementError(msg) from exc
    live = {name: entry.value for name, entry in entries.items()}
    return {key: value for key, value in spec.config.items() if _normalise(live.get(key)) != _normalise(value)}


def _normalise(value: str | None) -> str | None:
    # List-valued configs (cleanup.policy "compact,delete") may come back in another order.
    if value is None or "," not in value:
        return value
    return ",".join(sorted(part.strip() for part in value.split(",")))
