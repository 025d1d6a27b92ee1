"""The deploy's topic step against the real local broker: topics are created, then a second deploy changes nothing.

MSK is not reachable from here, so the stack's outputs are pointed at the session broker (PLAINTEXT on loopback);
everything else of the deploy runs against the moto server as in test_deploy_e2e.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from libs.deploy.deployer import DeployOptions, deploy
from libs.deploy.emr_steps import JobKind
from libs.deploy.outputs import read_outputs_file
from libs.deploy.plan import Action, Component
from libs.kafka.broker import LocalKafka
from libs.kafka.topics import load_topics
from tests.deploy.conftest import Stack
from tests.kafka.helpers import write_topics_file

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_deploy_creates_the_topics_on_the_brokers_of_the_outputs_and_is_idempotent(
    stack: Stack, kafka_broker: LocalKafka, prebuilt_wheel_dir: Path, job_scripts: dict[JobKind, Path],
    tmp_path: Path,
) -> None:
    outputs = dict(stack.outputs)
    outputs["msk_bootstrap_brokers"] = kafka_broker.bootstrap
    outputs["app_config"] = {**outputs["app_config"], "kafka": {"bootstrap_servers": kafka_broker.bootstrap,
                                                                 "security_protocol": "PLAINTEXT"}}
    outputs_file = tmp_path / "outputs-local-kafka.json"
    outputs_file.write_text(json.dumps(outputs), encoding="utf-8")
    topics_file = write_topics_file(tmp_path)
    options = DeployOptions(stack="dev", wheel_dir=prebuilt_wheel_dir, job_scripts=job_scripts,
                            topics_file=topics_file, replication_factor=1, ddl_poll_seconds=0.001)

    first = deploy(read_outputs_file(outputs_file), options)
    second = deploy(read_outputs_file(outputs_file), options)

    expected = sorted(spec.name for spec in load_topics(topics_file).all())
    assert [(item.name, item.action) for item in first.by_component(Component.TOPIC)] == [
        (name, Action.CREATE) for name in expected]
    assert [(item.name, item.action) for item in second.by_component(Component.TOPIC)] == [
        (name, Action.UNCHANGED) for name in expected]
    on_broker = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=15).topics
    assert set(expected) <= set(on_broker)
