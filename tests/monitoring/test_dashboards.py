"""Dashboards as code: the committed JSON is what the generator makes, every query parses (promtool), and every
series a panel names is one the code registers (read from the registries, libs.monitoring.catalog)."""

from __future__ import annotations

import json

import pytest
import yaml

from libs.kafka.topics import TopicRole
from libs.monitoring import dashboards
from libs.monitoring.assets import DASHBOARDS_DIR
from libs.monitoring.catalog import registered_families, series_catalog
from libs.monitoring.promql import matcher_labels, metric_selectors
from libs.monitoring.tools import run_tool

PROMETHEUS_SERIES = {"up"}
# Grafana replaces its variables before the query reaches Prometheus; promtool sees what Prometheus would.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def _committed(name: str) -> dict:
    return json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))


def _queries() -> list[tuple[str, str]]:
    return [query for name in dashboards.DASHBOARDS for query in dashboards.panel_queries(_committed(name))]


def test_the_committed_dashboards_are_what_the_generator_makes():
    committed = sorted(path.name for path in DASHBOARDS_DIR.glob("*.json"))

    assert committed == sorted(dashboards.DASHBOARDS), "a dashboard JSON without a generator (or the reverse)"
    for name in dashboards.DASHBOARDS:
        assert (DASHBOARDS_DIR / name).read_text(encoding="utf-8") == dashboards.render(name), (
            f"configs/monitoring/grafana/{name} is stale: run `claims monitor dashboards`")


@pytest.mark.usefixtures("prometheus_tools")
def test_promtool_parses_every_panel_query(tmp_path):
    queries = _queries()
    rules = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{index}", "expr": _as_prometheus_sees_it(expr)}
        for index, (_title, expr) in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")

    result = run_tool("promtool", "check", "rules", str(path))

    assert queries
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


@pytest.mark.usefixtures("prometheus_tools")
def test_promtool_rejects_a_broken_query(tmp_path):
    """Guard: the check above is not vacuous."""
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "dashboard:broken", "expr": "sum(rate(claims_stream_rows_total[5m])"}]}]}), encoding="utf-8")

    assert run_tool("promtool", "check", "rules", str(path)).returncode != 0


def _as_prometheus_sees_it(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_series_a_panel_names_is_registered_with_its_labels():
    catalog = series_catalog()
    for title, expr in _queries():
        selectors = metric_selectors(expr)
        assert selectors, f"panel {title!r}: no series in {expr!r}"
        for name, labels in selectors:
            if name in PROMETHEUS_SERIES:
                continue
            assert name in catalog, f"panel {title!r}: {name} is not registered by any process"
            for label, value in labels.items():
                closed = catalog[name].label_values.get(label)
                assert closed is None or value in closed, f"panel {title!r}: {name}{{{label}={value!r}}} never occurs"
        for name, labels in matcher_labels(expr):
            if name not in PROMETHEUS_SERIES:
                assert labels <= {*catalog[name].series()[name], "job", "instance"}, (title, name, labels)


def test_every_registered_family_has_a_panel():
    shown = {name for _title, expr in _queries() for name, _labels in metric_selectors(expr)}
    catalog = series_catalog()
    shown_families = {catalog[name].name for name in shown if name in catalog}

    missing = {family.name for family in registered_families()} - shown_families
    assert not missing, f"registered but on no panel: {sorted(missing)}"


def test_topics_are_selected_by_their_role_in_topics_json():
    roles = {role.value for role in TopicRole}
    used = [labels["role"] for _title, expr in _queries()
            for _name, labels in metric_selectors(expr) if "role" in labels]

    assert used, "expected panels that select topics by role"
    assert set(used) <= roles
    assert not [expr for _title, expr in _queries() if "topic=" in expr], "select topics by role, not by name"


def test_dashboard_structure_is_importable():
    document = _committed("claims-pipeline.json")
    ids = [panel["id"] for panel in document["panels"]]

    assert document["uid"] == "claims-pipeline"
    assert len(ids) == len(set(ids))
    assert document["templating"]["list"][0]["type"] == "datasource"
    for panel in document["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
