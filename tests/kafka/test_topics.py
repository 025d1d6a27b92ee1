"""topics.json is the only source of topic names: it loads into typed specs and bad files fail with the file named."""

from __future__ import annotations

import json

import pytest

from libs.kafka.topics import TopicRole, TopicsFileError, load_topics, parse_topics
from libs.settings import KafkaSettings


def _document(**overrides):
    topics = {role.value: {"name": f"t-{role.value}", "partitions": 2, "replication_factor": 1,
                           "config": {"retention.ms": "1000"}} for role in TopicRole}
    topics.update(overrides)
    return {"topics": topics}


def test_project_topics_file_has_every_role_with_its_name():
    topics = load_topics(KafkaSettings().topics_file)
    assert topics.raw == "medical-claims-raw"
    assert topics.validated == "medical-claims-validated"
    assert topics.processed == "medical-claims-processed"
    assert topics.quality == "medical-claims-quality"
    assert topics.alerts == "medical-claims-alerts"
    assert topics.dead_letter == "medical-claims-dead-letter"
    assert topics.spec(TopicRole.PROCESSED).config["cleanup.policy"] == "compact,delete"
    assert [spec.name for spec in topics.all()] == [topics.name(role) for role in TopicRole]


def test_numeric_config_values_are_kept_as_kafka_strings():
    document = _document(raw={"name": "t-raw", "partitions": 1, "replication_factor": 1,
                              "config": {"retention.ms": 604800000}})
    assert parse_topics(document).spec("raw").config == {"retention.ms": "604800000"}


def test_missing_role_is_reported_with_the_file(tmp_path):
    document = _document()
    del document["topics"]["alerts"]
    path = tmp_path / "topics.json"
    path.write_text(json.dumps(document))
    with pytest.raises(TopicsFileError, match=r"topics\.json: expected a topic for every role, missing alerts"):
        load_topics(path)


def test_unknown_role_names_the_entry():
    with pytest.raises(TopicsFileError, match=r"topics\.rawr: expected a role among"):
        parse_topics(_document(rawr={"name": "x", "partitions": 1, "replication_factor": 1}))


def test_invalid_partitions_names_the_field():
    with pytest.raises(TopicsFileError, match=r"topics\.raw: partitions"):
        parse_topics(_document(raw={"name": "t-raw", "partitions": 0, "replication_factor": 1}))


def test_two_roles_on_one_topic_name_are_rejected():
    with pytest.raises(TopicsFileError, match="t-raw twice"):
        parse_topics(_document(validated={"name": "t-raw", "partitions": 1, "replication_factor": 1}))


def test_malformed_json_reports_line_and_column(tmp_path):
    path = tmp_path / "topics.json"
    path.write_text('{"topics": {\n  "raw": ,\n}}')
    with pytest.raises(TopicsFileError, match=r"topics\.json: line 2 column"):
        load_topics(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(TopicsFileError, match="found no such file"):
        load_topics(tmp_path / "absent.json")
