"""Alert rules and Alertmanager: promtool and amtool judge the files, and every alert has a firing and a quiet test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.kafka.topics import TopicRole
from libs.monitoring.assets import ALERTMANAGER_FILE, RULES_FILE, rule_test_files
from libs.monitoring.catalog import series_catalog
from libs.monitoring.promql import matcher_labels, metric_selectors
from libs.monitoring.tools import run_tool
from libs.settings import REPO_ROOT

pytestmark = pytest.mark.usefixtures("prometheus_tools")

PROMETHEUS_SERIES = {"up"}  # written by Prometheus itself for every scrape target
# What the issue asks alerts for, by failure mode.
REQUIRED_ALERTS = {
    "stream stopped": {"ClaimsStreamDown", "ClaimsStreamNotRunning", "ClaimsStreamStalled"},
    "stream lagging": {"ClaimsStreamLagHigh", "ClaimsStreamLagGrowing"},
    "valid ratio dropping": {"ClaimsValidRatioLow"},
    "dead-letter rate rising": {"ClaimsDeadLetterRateRising"},
    "producer delivery failures": {"ClaimsProducerDeliveryFailures"},
    "batch job failed or late": {"ClaimsBatchJobFailed", "ClaimsBatchJobLate"},
    "API error rate and latency": {"ClaimsApiErrorRateHigh", "ClaimsApiLatencyHigh"},
}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alert_tests() -> list[tuple[str, bool]]:
    """(alertname, expects an alert) of every alert_rule_test in the promtool test files."""
    found = []
    for path in rule_test_files():
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                found.append((case["alertname"], bool(case.get("exp_alerts"))))
    return found


def test_promtool_accepts_the_rules_file():
    result = run_tool("promtool", "check", "rules", str(RULES_FILE))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass():
    files = rule_test_files()
    result = run_tool("promtool", "test", "rules", *[str(path) for path in files])

    assert files, "expected promtool test files in configs/monitoring/rule-tests"
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_a_broken_rule_expectation_fails_promtool(tmp_path):
    """Guard: the unit tests above could not pass if promtool ignored the expectations."""
    source = rule_test_files()[0]
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    document["rule_files"] = [str(RULES_FILE)]
    quiet = next(case for test in document["tests"] for case in test["alert_rule_test"] if not case["exp_alerts"])
    quiet["exp_alerts"] = [{"exp_labels": {"severity": "critical"}}]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")

    result = run_tool("promtool", "test", "rules", str(broken))

    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = _alert_tests()
    for rule in _rules():
        name = rule["alert"]
        assert (name, True) in tests, f"{name}: no promtool test where it fires"
        assert (name, False) in tests, f"{name}: no promtool test where it stays quiet"
    assert {name for name, _ in tests} <= {rule["alert"] for rule in _rules()}, "a test names an unknown alert"


def test_the_required_failure_modes_have_alerts_with_severity_summary_and_runbook():
    rules = {rule["alert"]: rule for rule in _rules()}

    assert len(rules) == len(_rules()), "alert names must be unique"
    for mode, names in REQUIRED_ALERTS.items():
        assert names <= set(rules), f"{mode}: missing {sorted(names - set(rules))}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        document, anchor = rule["annotations"]["runbook"].split("#", 1)
        assert anchor in _anchors(REPO_ROOT / document), f"{name}: #{anchor} is not a heading of {document}"


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped, spaces to hyphens)."""
    return {"".join(c for c in line.lstrip("#").strip().lower() if c.isalnum() or c in " -_").replace(" ", "-")
            for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def test_every_series_an_alert_selects_is_registered_by_the_code():
    catalog = series_catalog()
    for rule in _rules():
        selectors = metric_selectors(rule["expr"])
        assert selectors, f"{rule['alert']}: no series in {rule['expr']!r}"
        for name, labels in selectors:
            if name in PROMETHEUS_SERIES:
                continue
            assert name in catalog, f"{rule['alert']}: {name} is not a series any process registers"
            family = catalog[name]
            for label, value in labels.items():
                assert label in {*family.series()[name], "job", "instance"}, f"{rule['alert']}: {name} has no {label}"
                closed = family.label_values.get(label)
                assert closed is None or value in closed, f"{rule['alert']}: {name}{{{label}={value!r}}} never occurs"
        for name, labels in matcher_labels(rule["expr"]):
            if name not in PROMETHEUS_SERIES:
                assert labels <= {*catalog[name].series()[name], "job", "instance"}, (rule["alert"], name, labels)


def test_rules_select_topics_by_their_role_in_topics_json():
    roles = {role.value for role in TopicRole}
    for rule in _rules():
        assert "topic=" not in rule["expr"], f"{rule['alert']}: select topics by role, not by name"
        for _name, labels in metric_selectors(rule["expr"]):
            if "role" in labels:
                assert labels["role"] in roles, f"{rule['alert']}: role {labels['role']} is not a TopicRole"


def test_amtool_accepts_the_alertmanager_config():
    result = run_tool("amtool", "check-config", str(ALERTMANAGER_FILE))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "claims-page"), ("warning", "claims-team"),
                                                    ("info", "claims-info"), ("none", "claims-team")])
def test_alertmanager_routes_each_severity_to_its_receiver(severity, receiver):
    result = run_tool("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_FILE}",
                      "alertname=ClaimsStreamDown", f"severity={severity}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def test_every_severity_the_rules_use_has_its_own_route():
    document = yaml.safe_load(ALERTMANAGER_FILE.read_text(encoding="utf-8"))
    routed = {matcher.split("=", 1)[1].strip('"') for route in document["route"]["routes"]
              for matcher in route.get("matchers", []) if matcher.startswith("severity=")}

    assert {rule["labels"]["severity"] for rule in _rules()} <= routed
    assert json.dumps(document).count("severity") >= len(routed)
