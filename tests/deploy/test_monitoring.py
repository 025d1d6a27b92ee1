"""Monitoring configs: every metric and label the alerts and the dashboard use is one the apps expose."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from libs.settings import REPO_ROOT

MONITORING = REPO_ROOT / "configs" / "monitoring"

# The metric names the apps expose, with their labels and label values (from the producer and streaming apps).
EXPOSED: dict[str, dict[str, set[str] | None]] = {
    "claims_producer_messages_total": {"result": {"delivered", "failed"}},
    "claims_producer_bytes_total": {},
    "claims_producer_delivery_latency_seconds": {},
    "claims_stream_input_rows_per_second": {},
    "claims_stream_processed_rows_per_second": {},
    "claims_stream_batch_duration_seconds": {},
    "claims_stream_consumer_lag": {"topic": None, "partition": None},
    "claims_stream_rows_total": {"outcome": {"valid", "quarantined", "dead_letter"}},
    "claims_stream_batches_total": {},
    "claims_stream_quarantine_ratio": {},
}
HISTOGRAMS = {"claims_producer_delivery_latency_seconds"}
# Series a Prometheus histogram exposes besides its name.
SERIES: dict[str, dict[str, set[str] | None]] = {
    **EXPOSED, **{f"{h}{suffix}": {"le": None} for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")},
}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "inf", "nan"}


def metric_selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, {label: value}) of every series selector in a PromQL expression."""
    text = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    text = re.sub(r"\boffset\s+\d+[smhdwy]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    selectors = []
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?", text):
        name, matchers = match.group(1), match.group(2) or ""
        following = text[match.end():].lstrip()
        if name.lower() in PROMQL_KEYWORDS or (following.startswith("(") and not matchers):
            continue  # a keyword or a function call
        labels = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', matchers))
        selectors.append((name, labels))
    return selectors


def _assert_exposed(expr: str, where: str) -> set[str]:
    selectors = metric_selectors(expr)
    assert selectors, f"{where}: no metric found in {expr!r}"
    for name, labels in selectors:
        assert name in SERIES, f"{where}: {name} is not a metric the apps expose"
        for label, value in labels.items():
            allowed = SERIES[name]
            assert label in allowed, f"{where}: {name} has no label {label!r}"
            values = allowed[label]
            assert values is None or value in values, f"{where}: {name}{{{label}={value!r}}} never occurs"
    return {name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for name, _ in selectors}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana" / "claims-pipeline.json").read_text(encoding="utf-8"))


def _dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _dashboard()["panels"] for target in panel.get("targets", [])]


def test_the_selector_extractor_sees_metrics_not_functions_labels_or_durations() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{result="failed"}[5m] offset 1h))) > 2 '
            "and sum without (topic) (y) / on (a) z")

    assert metric_selectors(expr) == [("x_bucket", {"result": "failed"}), ("y", {}), ("z", {})]


def test_every_alert_uses_only_exposed_metrics_and_labels() -> None:
    for rule in _rules():
        _assert_exposed(rule["expr"], f"alert {rule['alert']}")


def test_alerts_cover_the_required_failure_modes_and_are_complete() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}

    required = {"ClaimsThroughputDrop", "ClaimsConsumerLagHigh", "ClaimsBatchDurationHigh",
                "ClaimsQuarantineRatioHigh", "ClaimsProducerErrors"}
    assert required <= set(rules)
    assert len(rules) == len(_rules()), "alert names must be unique"
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), f"{name}: 'for' must be a duration"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name


def test_every_dashboard_panel_uses_only_exposed_metrics_and_labels() -> None:
    exprs = _dashboard_exprs()

    assert exprs
    for title, expr in exprs:
        _assert_exposed(expr, f"panel {title!r}")


def test_the_dashboard_shows_every_metric_an_alert_watches() -> None:
    alerted = set().union(*(_assert_exposed(rule["expr"], rule["alert"]) for rule in _rules()))
    shown = set().union(*(_assert_exposed(expr, title) for title, expr in _dashboard_exprs()))

    assert alerted <= shown
    assert shown == set(EXPOSED)  # and every exposed metric has a panel


def test_dashboard_structure_is_importable() -> None:
    dashboard = _dashboard()
    ids = [panel["id"] for panel in dashboard["panels"]]

    assert dashboard["uid"] == "claims-pipeline"
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]

