"""Observability of the pipeline: a real Prometheus and Alertmanager locally, the metrics every process registers,
the broker-side lag exporter, dashboards as code, and the stream side of the correlation id.

Why a package of its own: monitoring reads from every app (their metric registries, the stream's checkpoint, the
broker's offsets) but no app depends on it beyond serving metrics and recording the batch run; the arrows stay one-way.
Modules:
- `assets`: where the committed monitoring files live (rules, their tests, Alertmanager, scrape jobs, dashboards);
- `tools`: the Debian Prometheus binaries (promtool, amtool) unpacked by scripts/fetch_prometheus.sh;
- `catalog`: every metric family the code registers, read from the registries themselves;
- `lag`: consumer lag computed from Kafka offsets and the stream's checkpoint, and the batch job's last run;
- `serve`: a registry's /metrics endpoint, the same way in every process;
- `scrape`: the Prometheus configuration (scrape jobs, rule files, Alertmanager) for any set of hosts;
- `local`: start, stop and inspect the local Prometheus, Alertmanager and exporter (`claims monitor up|down|status`);
- `dashboards`: the Grafana dashboards, generated with grafana-foundation-sdk into configs/monitoring/grafana;
- `promql`: the metric names a PromQL expression selects;
- `correlation`: the stream side of the correlation id (Kafka header -> logs).
"""
