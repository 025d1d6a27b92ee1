"""The scrape jobs render a configuration Prometheus accepts, and the local stack starts, answers and stops."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from libs.monitoring.assets import RULES_FILE
from libs.monitoring.local import LocalMonitoring, StackPorts
from libs.monitoring.scrape import ScrapeJobsError, load_scrape_jobs, prometheus_config, write_config
from libs.monitoring.tools import run_tool
from libs.settings import MonitoringSettings
from tests.monitoring.conftest import free_port
from tests.streaming.pipeline_helpers import wait_until


def test_scrape_job_ports_are_the_settings_defaults():
    defaults = MonitoringSettings()
    jobs = load_scrape_jobs()

    assert {job.job_name for job in jobs.jobs} == {"claims-producer", "claims-stream", "claims-api", "claims-exporter"}
    for job in jobs.jobs:
        if job.port_setting:
            assert job.port == getattr(defaults, job.port_setting), job.job_name


def test_settings_ports_win_over_the_file_locally():
    jobs = load_scrape_jobs()
    monitoring = MonitoringSettings(streaming_metrics_port=19465)

    assert jobs.job("claims-stream").port_in(monitoring) == 19465
    assert jobs.job("claims-exporter").port_in(monitoring) == 9466


def test_every_port_is_a_setting_the_exporter_and_the_stack_included():
    jobs = load_scrape_jobs()
    monitoring = MonitoringSettings(exporter_port=19466, prometheus_port=19090, alertmanager_port=19094)

    assert all(job.port_setting for job in jobs.jobs), "a job whose port is only a constant in the file"
    assert jobs.job("claims-exporter").port_in(monitoring) == 19466
    stack = LocalMonitoring(monitoring, exporter_command=["exporter"], state_dir=Path("/nonexistent"))
    assert stack.prometheus_url == "http://127.0.0.1:19090"
    assert stack.alertmanager_url == "http://127.0.0.1:19094"
    assert stack.job_ports()["claims-exporter"] == 19466
    assert StackPorts() == StackPorts.from_settings(MonitoringSettings())


def test_a_port_setting_that_settings_do_not_have_is_named(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - {job_name: x, port: 1, port_setting: no_such_port}\n", encoding="utf-8")

    with pytest.raises(ScrapeJobsError, match=r"jobs\[0\]: port_setting 'no_such_port' is not a field"):
        load_scrape_jobs(path)


@pytest.mark.usefixtures("prometheus_tools")
def test_promtool_accepts_the_rendered_configuration(tmp_path):
    jobs = load_scrape_jobs()
    config = prometheus_config(jobs, {job.job_name: job.port for job in jobs.jobs}, rule_files=[RULES_FILE],
                               alertmanager="127.0.0.1:9094", self_address="127.0.0.1:9090")
    path = write_config(config, tmp_path / "prometheus.yml")

    result = run_tool("promtool", "check", "config", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["job_name"] for c in config["scrape_configs"]] == [*(j.job_name for j in jobs.jobs), "prometheus"]


def _jobs(stack: LocalMonitoring) -> set[str]:
    targets = _get(f"{stack.prometheus_url}/api/v1/targets")["data"]["activeTargets"]
    return {target["labels"]["job"] for target in targets}


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.usefixtures("prometheus_tools")
def test_local_stack_starts_answers_and_stops(tmp_path: Path):
    stack = LocalMonitoring(MonitoringSettings(), state_dir=tmp_path / "monitoring",
                            ports=StackPorts(prometheus=free_port(), alertmanager=free_port()),
                            app_ports={"claims-stream": free_port()}, scrape_interval="1s")
    try:
        states = stack.up()
        assert {state.name: state.ready for state in states} == {"alertmanager": True, "prometheus": True}
        stack.up()
        assert {s.pid for s in stack.status()} == {s.pid for s in states}, "up is idempotent"
        wait_until(lambda: _jobs(stack) == {"claims-stream", "prometheus"}, "Prometheus to list both scrape jobs", 60)
        rules = _get(f"{stack.prometheus_url}/api/v1/rules")["data"]["groups"]
        assert {group["name"] for group in rules} >= {"claims-stream", "claims-producer", "claims-api"}
        alertmanagers = _get(f"{stack.prometheus_url}/api/v1/alertmanagers")["data"]
        assert alertmanagers["activeAlertmanagers"] or alertmanagers.get("droppedAlertmanagers") is not None
        assert _get(f"{stack.alertmanager_url}/api/v2/status")["config"]["original"].count("claims-page") >= 1
    finally:
        stopped = stack.down()
    assert sorted(stopped) == ["alertmanager", "prometheus"]
    assert not any(state.running for state in stack.status())
    assert stack.down() == [], "down is idempotent"


@pytest.mark.slow
@pytest.mark.usefixtures("prometheus_tools")
def test_the_stack_comes_up_with_its_exporter_while_no_broker_answers(tmp_path: Path):
    # `make monitor-up` before `make kafka-up` or `make run`: the exporter's scrape waits out its broker probe and
    # answers claims_kafka_exporter_up 0; the readiness check must wait that long too, or `up` fails.
    exporter_port, dead_broker = free_port(), f"127.0.0.1:{free_port()}"
    exporter = [sys.executable, "-m", "apps.cli.main", "monitor", "exporter", "--port", str(exporter_port),
                "--bootstrap", dead_broker, "--checkpoint", str(tmp_path / "no-checkpoint")]
    stack = LocalMonitoring(MonitoringSettings(), exporter_command=exporter, state_dir=tmp_path / "monitoring",
                            ports=StackPorts(prometheus=free_port(), alertmanager=free_port()),
                            app_ports={"claims-exporter": exporter_port})
    try:
        states = stack.up()
        assert {state.name: state.ready for state in states} == {
            "exporter": True, "alertmanager": True, "prometheus": True}
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter_port}/metrics", timeout=30) as response:
            assert "claims_kafka_exporter_up 0.0" in response.read().decode()
    finally:
        stack.down()
