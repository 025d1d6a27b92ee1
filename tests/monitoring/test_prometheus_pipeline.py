"""The pipeline with a real Prometheus scraping it: real broker, real Spark stream and the lag exporter, all scraped
every second; assertions go through Prometheus' HTTP API, as an operator would look.

What it proves: every process' endpoint is a target that is up; claims produced and processed have rates above zero;
the broker-side lag gauge is present for every raw partition and drains to zero; the quality ratio is published; and
every query of the committed dashboard over these processes' series returns data from the live metrics (not only
parses). The API is not part of this run; its panels are checked by promtool and against its registry.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from libs.generator import GeneratorConfig, generate_claims
from libs.kafka.producer import ClaimProducer
from libs.monitoring import dashboards
from libs.monitoring.assets import DASHBOARDS_DIR
from libs.monitoring.catalog import series_catalog
from libs.monitoring.lag import STREAM_CONSUMER, PipelineLagCollector, record_batch_run
from libs.monitoring.local import LocalMonitoring, StackPorts
from libs.monitoring.promql import metric_selectors
from libs.settings import MonitoringSettings
from libs.streaming.metrics import StreamMetrics
from libs.streaming.query import start_claims_query
from tests.monitoring.conftest import free_port
from tests.streaming.pipeline_helpers import AS_OF, Pipeline, make_pipeline, stop_query, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.spark, pytest.mark.usefixtures("prometheus_tools")]

COUNT = 300
CHUNKS = 3
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


class PrometheusApi:
    """Instant queries against a Prometheus' HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def _serve(registry: CollectorRegistry) -> tuple[int, Any]:
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return port, server


@pytest.fixture
def pipeline(kafka_broker, tmp_path: Path) -> Pipeline:
    return make_pipeline(tmp_path, kafka_broker.bootstrap, partitions=3, trigger_seconds=1.0)


@dataclass
class Served:
    """The four processes' registries, each served on its own loopback port (as the processes serve them)."""

    registries: dict[str, CollectorRegistry]
    ports: dict[str, int]
    stream: StreamMetrics


@pytest.fixture
def served(pipeline: Pipeline, tmp_path: Path) -> Iterator[Served]:
    topics = pipeline.topics
    exporter = CollectorRegistry()
    exporter.register(PipelineLagCollector(pipeline.settings.kafka,
                                           {role.value: spec.name for role, spec in topics.specs.items()},
                                           [pipeline.checkpoint], tmp_path / "batch-status.json"))
    record_batch_run(tmp_path / "batch-status.json", succeeded=True, day=AS_OF, started_at=1.0)
    stream = StreamMetrics()
    registries = {"claims-producer": CollectorRegistry(), "claims-stream": stream.registry,
                  "claims-exporter": exporter}
    servers = {job: _serve(registry) for job, registry in registries.items()}
    yield Served(registries=registries, ports={job: port for job, (port, _server) in servers.items()}, stream=stream)
    for _port, server in servers.values():
        server.shutdown()


@pytest.fixture
def prometheus(served: Served, tmp_path: Path) -> Iterator[PrometheusApi]:
    stack = LocalMonitoring(MonitoringSettings(), state_dir=tmp_path / "monitoring",
                            ports=StackPorts(prometheus=free_port(), alertmanager=free_port()),
                            app_ports=dict(served.ports), scrape_interval="1s")
    try:
        stack.up()
        yield PrometheusApi(stack.prometheus_url)
    finally:
        stack.down()


def test_prometheus_scrapes_the_running_pipeline(spark, pipeline, served, prometheus):
    api = prometheus
    wait_until(lambda: {r["metric"]["job"] for r in api.query('up{job=~"claims-.*"} == 1')} == set(served.ports),
               "every claims target up in Prometheus", 120)
    claims = [claim for claim, _labels in generate_claims(GeneratorConfig(count=COUNT, seed=31, defect_rate=0.2))]
    protector = pipeline.protector()
    running = start_claims_query(spark, pipeline.settings, metrics=served.stream, as_of=AS_OF)
    try:
        producer = ClaimProducer(pipeline.settings.kafka, pipeline.topics.raw, protect=protector.protect,
                                 registry=served.registries["claims-producer"])
        size = COUNT // CHUNKS
        for chunk in range(CHUNKS):  # several scrapes see the counters grow, so rate() has something to show
            report = producer.produce_all(claims[chunk * size:(chunk + 1) * size], flush_timeout=60)
            assert report.failed == 0
            delivered = (chunk + 1) * size
            wait_until(lambda n=delivered: api.value('sum(claims_producer_messages_total{result="delivered"})') == n,
                       f"Prometheus to see {delivered} delivered")
            wait_until(lambda n=delivered: api.value("sum(claims_stream_rows_total)") == n,
                       f"Prometheus to see {delivered} rows processed")
        wait_until(lambda: api.value(f'sum(claims_kafka_consumer_lag{{consumer="{STREAM_CONSUMER}"}})') == 0,
                   "the broker-side lag to drain to zero")

        assert api.value('sum(rate(claims_producer_messages_total{result="delivered"}[1m]))') > 0
        assert api.value("sum(rate(claims_stream_rows_total[1m]))") > 0
        lag = api.query(f'claims_kafka_consumer_lag{{consumer="{STREAM_CONSUMER}"}}')
        assert {series["metric"]["partition"] for series in lag} == {"0", "1", "2"}
        assert all(series["metric"]["topic"] == pipeline.topics.raw for series in lag)
        ratio = api.value("claims_stream_valid_ratio")
        assert ratio is not None
        assert 0 < ratio < 1  # the generator's defects make some claims invalid
        valid = api.value('claims_stream_rows_total{outcome="valid"}')
        quarantined = api.value('claims_stream_rows_total{outcome="quarantined"}')
        assert valid is not None
        assert quarantined is not None
        assert valid + quarantined == COUNT
        assert quarantined > 0
        _every_dashboard_query_returns_data(api)
    finally:
        stop_query(spark, running)


def _every_dashboard_query_returns_data(api: PrometheusApi) -> None:
    """Every panel whose series come from the processes running here (the API is not) shows data."""
    catalog = series_catalog()
    running = {"producer", "stream", "exporter"}
    empty, checked = [], 0
    for name in dashboards.DASHBOARDS:
        document = json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
        for title, panel_expr in dashboards.panel_queries(document):
            processes = {catalog[series].process for series, _ in metric_selectors(panel_expr) if series in catalog}
            if not processes <= running:
                continue
            checked += 1
            expr = panel_expr
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            if not api.query(expr):
                empty.append(f"{title}: {expr}")
    assert checked > 20, f"expected most panels to be checked, found {checked}"
    assert not empty, "dashboard queries without data on the live pipeline:\n" + "\n".join(empty)
