"""The local KRaft broker: the session fixture's broker answers, and `claims kafka up|status|down` manage another."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from apps.cli import kafka as kafka_cli
from libs.kafka.broker import broker_answers, broker_properties, is_broker_process, read_state

pytestmark = pytest.mark.kafka


def test_session_broker_answers_and_records_its_pid(kafka_broker):
    assert broker_answers(kafka_broker.bootstrap)
    state = read_state(kafka_broker.home)
    assert state is not None
    assert state.pid == kafka_broker.pid
    assert state.bootstrap == kafka_broker.bootstrap
    assert is_broker_process(state.pid)
    assert (kafka_broker.data_dir / "meta.properties").exists()
    assert kafka_broker.server_log.exists()


def _claims(*args: str):
    """Run `claims ARGS` in-process (importing the whole CLI costs seconds per call); each call is independent,
    so `down` finds the broker through the pid file exactly as a separate `claims kafka down` process does."""
    app = typer.Typer()
    kafka_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # two commands: Typer keeps the group names
    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_cli_up_status_down_cycle(tmp_path):
    home = str(tmp_path / "broker")
    up = _claims("kafka", "up", "--home", home, "--port", "0", "--controller-port", "0", "--no-topics")
    assert up.exit_code == 0, up.output
    state = read_state(tmp_path / "broker")
    try:
        assert state is not None
        assert broker_answers(state.bootstrap)
        again = _claims("kafka", "up", "--home", home, "--no-topics")  # idempotent: keeps the running broker
        assert again.exit_code == 0
        assert f"already running: pid {state.pid}" in again.output
        status = _claims("kafka", "status", "--home", home)
        assert status.exit_code == 0
        assert "answering" in status.output
    finally:
        down = _claims("kafka", "down", "--home", home)
    assert down.exit_code == 0, down.output
    assert state is not None
    assert not is_broker_process(state.pid)
    assert not (tmp_path / "broker" / "broker.pid").exists()
    stopped = _claims("kafka", "status", "--home", home)
    assert stopped.exit_code == 1
    assert "not running" in stopped.output


def test_generated_properties_listen_on_loopback_only(tmp_path):
    text = broker_properties(tmp_path, 19092, 19093)
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text
    assert "auto.create.topics.enable=false" in text


@pytest.mark.slow
def test_storage_format_accepts_a_cluster_id_that_starts_with_a_dash(tmp_path, monkeypatch):
    # One random id in 64 starts with '-'; passed as a separate argument, the storage tool read it as an option and
    # `make run` failed before producing anything.
    from libs.kafka import broker as broker_module  # noqa: PLC0415

    monkeypatch.setattr(broker_module, "new_cluster_id", lambda: "-dashStartsThisId0000A")
    local = broker_module.LocalKafka(home=tmp_path / "broker", port=0, controller_port=0)
    local.data_dir.mkdir(parents=True)
    properties = tmp_path / "server.properties"
    properties.write_text(broker_properties(local.data_dir, local.port, local.controller_port), encoding="utf-8")
    local._format(local.classpath(), properties)
    assert "cluster.id=-dashStartsThisId0000A" in (local.data_dir / "meta.properties").read_text(encoding="utf-8")
