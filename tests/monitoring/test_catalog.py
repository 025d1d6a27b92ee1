"""The metric catalog reads the registries themselves, and the PromQL extractor finds series, not functions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from libs.monitoring.catalog import families_of, registered_families, series_catalog
from libs.monitoring.promql import matcher_labels, metric_selectors
from libs.settings import REPO_ROOT
from libs.streaming.metrics import RowOutcome, StreamMetrics


def test_families_come_from_what_a_registry_holds():
    registry = CollectorRegistry()
    Counter("demo_events_total", "d", ["kind"], registry=registry)
    Histogram("demo_latency_seconds", "d", registry=registry)

    families = {family.name: family for family in families_of(registry, "demo")}

    assert set(families) == {"demo_events", "demo_latency_seconds"}
    assert families["demo_events"].labels == ("kind",)
    assert families["demo_events"].series() == {"demo_events_total": ("kind",), "demo_events_created": ("kind",)}
    assert families["demo_latency_seconds"].series()["demo_latency_seconds_bucket"] == ("le",)


def test_the_catalog_follows_a_rename_in_the_stream_metrics(monkeypatch):
    original = StreamMetrics.__init__

    def renamed(self, registry=None):
        original(self, registry)
        Counter("claims_stream_renamed_total", "a metric added by a change", registry=self.registry)

    monkeypatch.setattr(StreamMetrics, "__init__", renamed)

    assert "claims_stream_renamed_total" in series_catalog()


def test_every_process_contributes_and_pre_created_children_give_closed_label_values():
    families = registered_families()
    by_name = {family.name: family for family in families}

    assert {family.process for family in families} == {"stream", "producer", "api", "exporter"}
    assert by_name["claims_stream_rows"].label_values == {"outcome": frozenset(o.value for o in RowOutcome)}
    assert by_name["claims_producer_messages"].labels == ("result",)
    assert by_name["claims_kafka_consumer_lag"].labels == ("consumer", "topic", "partition")
    assert by_name["claims_api_request_duration_seconds"].type == "histogram"
    assert all(family.name.startswith("claims_") for family in families)


def test_the_selector_extractor_sees_metrics_not_functions_labels_or_durations():
    expr = ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{result="failed"}[5m] offset 1h))) > 2 '
            'and sum without (topic) (y) / on (a) z{s=~"5.."} and time() - w > 26 * 3600 '
            'and topk(10, sum by (reason) (rate(v[$__rate_interval])))')

    assert metric_selectors(expr) == [("x_bucket", {"result": "failed"}), ("y", {}), ("z", {}), ("w", {}), ("v", {})]
    assert matcher_labels(expr)[2] == ("z", {"s"})


def test_the_operations_guide_lists_every_registered_metric():
    text = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [family.name for family in registered_families()
               if f"`{family.name}" not in text and not any(f"`{series}" in text for series in family.series())]

    assert not missing, f"docs/operations.md does not list {missing}"
