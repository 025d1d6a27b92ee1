"""The Grafana dashboards of the pipeline, as code (grafana-foundation-sdk, Grafana 11.6 line).

Why generated: the committed JSON in configs/monitoring/grafana is what Grafana imports (the Kubernetes ConfigMaps of
infra/monitoring.py, or a manual import), but reviewing and changing JSON by hand is how panels drift from the
metrics. Panels are declared here as (title, queries, unit); `write_dashboards()` regenerates the JSON, and a test
fails when the committed file differs from what this module produces, when a query does not parse (promtool), or when
it names a series the code does not register (libs.monitoring.catalog).

    python -m libs.monitoring.dashboards        # or: claims monitor dashboards

The SDK line is pinned to the Grafana line targeted (requirements.lock): 11.6, which kube-prometheus-stack's Grafana
(12.x) and Amazon Managed Grafana import unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

from libs.monitoring.assets import DASHBOARDS_DIR

GRAFANA_LINE = "11.6"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"  # Grafana's rate window: at least four scrape intervals, whatever the zoom
STREAM = 'consumer="claims-stream"'
VALID_ROWS = 'claims_stream_rows_total{outcome="valid"}'
SERVER_ERRORS = 'claims_api_requests_total{status=~"5.."}'


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A panel: a stat (one number) or a time series; `alert` names the alert rule it mirrors, if any."""

    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 8
    thresholds: Sequence[tuple[float, str]] = ()


@dataclass(frozen=True)
class RowSpec:
    """A row of panels."""

    title: str
    panels: Sequence[PanelSpec] = field(default_factory=tuple)


def _rate(selector: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({selector}[{RATE}]))"


def _quantile(q: float, bucket: str, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({bucket}[{RATE}])))"


def pipeline_rows() -> list[RowSpec]:
    """The claims-pipeline dashboard, row by row (one row per process, plus an overview)."""
    return [
        RowSpec("Overview", (
            PanelSpec("Claims produced / s", [Query(_rate('claims_producer_messages_total{result="delivered"}'))],
                      "cps", "stat", "Claims the broker acknowledged.", 6),
            PanelSpec("Claims processed / s", [Query(_rate("claims_stream_rows_total"))], "cps", "stat",
                      "Input rows of the stream, valid and quarantined.", 6),
            PanelSpec("Valid ratio (last batch)", [Query("claims_stream_valid_ratio")], "percentunit", "stat",
                      "The quality topic's valid_ratio. Alert: ClaimsValidRatioLow (15-minute window).", 6,
                      thresholds=((0.0, "red"), (0.9, "green"))),
            PanelSpec("Stream lag (messages)", [Query(f"sum(claims_kafka_consumer_lag{{{STREAM}}})")], "short",
                      "stat", "Broker end offsets minus the stream's last commit. Alert: ClaimsStreamLagHigh.", 6,
                      thresholds=((0.0, "green"), (50000.0, "orange"), (100000.0, "red"))),
        )),
        RowSpec("Stream", (
            PanelSpec("Rows by outcome / s", [Query(_rate("claims_stream_rows_total", "outcome"), "{{outcome}}")],
                      "cps"),
            PanelSpec("Spark input vs processed rows / s",
                      [Query("claims_stream_input_rows_per_second", "input"),
                       Query("claims_stream_processed_rows_per_second", "processed")], "cps"),
            PanelSpec("Micro-batch duration", [Query("claims_stream_batch_duration_seconds", "last batch")], "s",
                      description="Alert: ClaimsBatchDurationHigh above 30 s."),
            PanelSpec("Time since the last batch",
                      [Query(f"time() - claims_kafka_consumer_last_commit_timestamp_seconds{{{STREAM}}}",
                             "checkpoint commit (exporter)"),
                       Query("time() - claims_stream_last_batch_timestamp_seconds", "stream's own clock")], "s",
                      description="Alert: ClaimsStreamStalled (5 minutes with claims waiting)."),
            PanelSpec("Micro-batches / min", [Query(f"{_rate('claims_stream_batches_total')} * 60", "batches")]),
            PanelSpec("Fraud alerts / s", [Query(_rate("claims_stream_fraud_alerts_total"), "alerts")], "cps"),
        )),
        RowSpec("Kafka lag and topics", (
            PanelSpec("Lag per partition (broker)",
                      [Query(f"claims_kafka_consumer_lag{{{STREAM}}}", "{{topic}}/{{partition}}")],
                      description="Alerts: ClaimsStreamLagHigh, ClaimsStreamLagGrowing."),
            PanelSpec("Lag per partition (Spark progress)",
                      [Query("claims_stream_consumer_lag", "{{topic}}/{{partition}}")]),
            PanelSpec("Committed vs end offset",
                      [Query(f"sum(claims_kafka_consumer_committed_offset{{{STREAM}}})", "committed"),
                       Query('sum(claims_kafka_topic_end_offset{role="raw"})', "end")]),
            PanelSpec("Messages written / s by topic role", [Query(_rate("claims_kafka_topic_end_offset", "role"),
                                                                   "{{role}}")], "cps", width=12),
            PanelSpec("Broker reachable", [Query("claims_kafka_exporter_up", "exporter")], kind="stat", width=12,
                      description="Alert: ClaimsBrokerUnreachable.", thresholds=((0.0, "red"), (1.0, "green"))),
        )),
        RowSpec("Quality", (
            PanelSpec("Valid and quarantined ratio",
                      [Query(f"{_rate(VALID_ROWS)} / {_rate('claims_stream_rows_total')}", "valid (window)"),
                       Query("claims_stream_valid_ratio", "valid (last batch)"),
                       Query("claims_stream_quarantine_ratio", "quarantined (last batch)")], "percentunit"),
            PanelSpec("Rejections by reason code / s",
                      [Query(f"topk(10, {_rate('claims_stream_rejections_total', 'reason')})", "{{reason}}")], "cps"),
            PanelSpec("Dead letters / s",
                      [Query(_rate("claims_stream_dead_letters_total"), "from the stream"),
                       Query(_rate('claims_kafka_topic_end_offset{role="dead_letter"}'), "topic (all writers)")],
                      "cps",
                      description="Alert: ClaimsDeadLetterRateRising."),
        )),
        RowSpec("Producer", (
            PanelSpec("Deliveries / s by result",
                      [Query(_rate("claims_producer_messages_total", "result"), "{{result}}")], "cps",
                      description="Alert: ClaimsProducerDeliveryFailures above 1 % failed."),
            PanelSpec("Bytes delivered / s", [Query(_rate("claims_producer_bytes_total"), "bytes")], "Bps"),
            PanelSpec("Delivery latency",
                      [Query(_quantile(0.5, "claims_producer_delivery_latency_seconds_bucket"), "p50"),
                       Query(_quantile(0.99, "claims_producer_delivery_latency_seconds_bucket"), "p99")], "s",
                      description="Alert: ClaimsProducerDeliveryLatencyHigh (p99 above 2 s)."),
        )),
        RowSpec("Daily batch", (
            PanelSpec("Last run succeeded", [Query("claims_batch_last_run_success")], kind="stat", width=6,
                      description="Alert: ClaimsBatchJobFailed.", thresholds=((0.0, "red"), (1.0, "green"))),
            PanelSpec("Since the last success", [Query("time() - claims_batch_last_success_timestamp_seconds")],
                      "s", "stat", "Alert: ClaimsBatchJobLate (26 h).", 6),
            PanelSpec("Since the last run", [Query("time() - claims_batch_last_run_timestamp_seconds")], "s",
                      "stat", width=6),
            PanelSpec("Last run duration", [Query("claims_batch_last_run_duration_seconds")], "s", "stat",
                      width=6),
        )),
        RowSpec("API", (
            PanelSpec("Requests / s by status", [Query(_rate("claims_api_requests_total", "status"), "{{status}}")],
                      "reqps"),
            PanelSpec("Server error ratio",
                      [Query(f"{_rate(SERVER_ERRORS)} / {_rate('claims_api_requests_total')}", "5xx")], "percentunit",
                      description="Alert: ClaimsApiErrorRateHigh above 5 %."),
            PanelSpec("Latency p99 by route",
                      [Query(_quantile(0.99, "claims_api_request_duration_seconds_bucket", "le, route"), "{{route}}")],
                      "s", description="Alert: ClaimsApiLatencyHigh (p99 above 1 s)."),
            PanelSpec("Claims ingested / s by outcome",
                      [Query(_rate("claims_api_claims_total", "outcome"), "{{outcome}}")], "cps", width=12),
            PanelSpec("Audit records not written", [Query("sum(increase(claims_api_audit_failures_total[1h]))",
                                                          "last hour")], kind="stat", width=12,
                      description="Alert: ClaimsApiAuditWriteFailures.", thresholds=((0.0, "green"), (1.0, "red"))),
        )),
        RowSpec("Scrape targets", (
            PanelSpec("Targets up", [Query('up{job=~"claims-.*"}', "{{job}}")], width=24,
                      description="Alert: ClaimsStreamDown, ClaimsTargetDown."),
        )),
    ]


def _thresholds(steps: Sequence[tuple[float, str]]) -> dash.ThresholdsConfig:
    # Grafana's first step is the base colour (value null = minus infinity).
    return dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None if index == 0 else value, color=color) for index, (value, color) in enumerate(steps)])


def _panel(spec: PanelSpec, panel_id: int) -> Any:
    builder: Any = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
    builder = builder.id(panel_id).title(spec.title).datasource(DATASOURCE).unit(spec.unit).span(spec.width)
    builder = builder.height(4 if spec.kind == "stat" else 8)
    if spec.description:
        builder = builder.description(spec.description)
    if spec.thresholds:
        builder = builder.thresholds(_thresholds(spec.thresholds))
    if spec.kind == "stat":
        builder = builder.graph_mode(common.BigValueGraphMode.AREA).color_mode(common.BigValueColorMode.VALUE)
        builder = builder.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    for index, query in enumerate(spec.queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        builder = builder.with_target(target.legend_format(query.legend) if query.legend else target)
    return builder


def pipeline_dashboard() -> dict[str, Any]:
    """The claims-pipeline dashboard as the JSON document Grafana imports."""
    builder = (dash.Dashboard("Claims pipeline").uid("claims-pipeline")
               .description("Producer -> Kafka -> Spark stream -> lake, the daily batch and the API: throughput, lag, "
                            "quality and errors. Panels mirror the alerts in configs/monitoring/prometheus-rules.yaml; "
                            "generated by libs/monitoring/dashboards.py, do not edit the JSON.")
               .tags(["claims", "kafka", "spark"]).timezone("utc").refresh("30s").time("now-6h", "now").readonly()
               .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")))
    panel_id = 1
    for row in pipeline_rows():
        builder = builder.with_row(dash.Row(row.title).id(panel_id))
        panel_id += 1
        for spec in row.panels:
            builder = builder.with_panel(_panel(spec, panel_id))
            panel_id += 1
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return document


DASHBOARDS = {"claims-pipeline.json": pipeline_dashboard}


def render(name: str) -> str:
    """The JSON text of one dashboard, exactly as committed (sorted keys, two-space indent, final newline)."""
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=True) + "\n"


def write_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Regenerate every dashboard file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = directory / name
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def panel_queries(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every target of a dashboard document, rows' nested panels included."""
    for panel in document.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []) or []:
                if target.get("expr"):
                    yield str(inner.get("title", "")), str(target["expr"])


if __name__ == "__main__":
    for written in write_dashboards():
        print(written)
