"""ensure_topics creates, then reports unchanged, then applies changed retention and a partition increase."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from libs.kafka.admin import TopicManagementError, ensure_topics
from libs.kafka.topics import load_topics
from libs.settings import KafkaSettings
from tests.kafka.helpers import write_topics_file

pytestmark = pytest.mark.kafka


def _live(settings, topic):
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    return partitions, {name: entry.value for name, entry in configs.items()}


def test_create_then_unchanged_then_update(kafka_settings, tmp_path):
    path = write_topics_file(tmp_path, partitions=2)
    topics = load_topics(path)
    names = [spec.name for spec in topics.all()]

    assert ensure_topics(kafka_settings, path) == dict.fromkeys(names, "created")
    assert _live(kafka_settings, topics.raw)[0] == 2
    assert ensure_topics(kafka_settings, path) == dict.fromkeys(names, "unchanged")

    document = json.loads(path.read_text())
    document["topics"]["raw"]["config"]["retention.ms"] = "7200000"
    document["topics"]["alerts"]["partitions"] = 4
    path.write_text(json.dumps(document))
    results = ensure_topics(kafka_settings, path)
    assert results[topics.raw] == "updated"
    assert results[topics.alerts] == "updated"
    assert {results[name] for name in names if name not in (topics.raw, topics.alerts)} == {"unchanged"}
    partitions, configs = _live(kafka_settings, topics.raw)
    assert (partitions, configs["retention.ms"]) == (2, "7200000")
    assert _live(kafka_settings, topics.alerts)[0] == 4
    assert ensure_topics(kafka_settings, path) == dict.fromkeys(names, "unchanged")


def test_fewer_partitions_than_the_broker_has_is_an_error(kafka_settings, tmp_path):
    path = write_topics_file(tmp_path, partitions=3)
    ensure_topics(kafka_settings, path)
    document = json.loads(path.read_text())
    document["topics"]["quality"]["partitions"] = 1
    path.write_text(json.dumps(document))
    with pytest.raises(TopicManagementError, match=r"expects 1 partitions, the broker has 3; Kafka cannot remove"):
        ensure_topics(kafka_settings, path)


def test_deploy_topic_step_is_idempotent_with_the_project_topics_file(kafka_settings):
    """The deploy runs ensure_topics on every `pulumi up`: the second run must change nothing."""
    topics_file = KafkaSettings().topics_file
    names = [spec.name for spec in load_topics(topics_file).all()]
    first = ensure_topics(kafka_settings, topics_file)
    assert set(first) == set(names)
    assert set(first.values()) <= {"created", "unchanged"}
    assert ensure_topics(kafka_settings, topics_file) == dict.fromkeys(names, "unchanged")
    _, configs = _live(kafka_settings, "medical-claims-processed")
    assert set(configs["cleanup.policy"].split(",")) == {"compact", "delete"}
