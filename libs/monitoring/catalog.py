"""Every metric family the pipeline's code registers, read from the registries themselves.

Why: alert rules and dashboards name series by string; a rename in the code would silently blank a panel or mute an
alert. The tests compare every name a rule or panel uses with this catalog, which builds each app's real metric
objects (StreamMetrics, the producer's metrics, the API's from libs.api.metrics, the lag exporter's collector) in
private registries and reads back what they registered, so there is no list of names to keep in step by hand.

Label vocabularies: a family whose children the code creates at registration (StreamMetrics' `outcome`) has a
closed set of label values, and the catalog reports it; other label values are open (reason codes, routes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from libs.api.metrics import api_metrics
from libs.kafka.producer import producer_metrics
from libs.monitoring.lag import PipelineLagCollector
from libs.settings import KafkaSettings
from libs.streaming.metrics import StreamMetrics

# Series a family of each type exposes besides (or instead of) its name, and the labels those series add.
_SERIES_SUFFIXES: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "counter": (("_total", ()), ("_created", ())),
    "gauge": (("", ()),),
    "histogram": (("_bucket", ("le",)), ("_sum", ()), ("_count", ()), ("_created", ())),
    "summary": (("", ("quantile",)), ("_sum", ()), ("_count", ()), ("_created", ())),
    "info": (("_info", ()),),
}


@dataclass(frozen=True)
class MetricFamily:
    """One registered family: its name, type, label names, the process that exposes it, and closed label values."""

    name: str
    type: str
    labels: tuple[str, ...]
    process: str
    label_values: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def series(self) -> dict[str, tuple[str, ...]]:
        """Series name -> its label names, as Prometheus stores them (`x_total`, `x_bucket{le}`, ...)."""
        suffixes = _SERIES_SUFFIXES.get(self.type, (("", ()),))
        return {f"{self.name}{suffix}": (*self.labels, *extra) for suffix, extra in suffixes}


def _label_names(collector: object, family: object) -> tuple[str, ...]:
    # prometheus_client keeps label names on the metric wrapper (`Counter(...)._labelnames`) and on custom metric
    # families (`GaugeMetricFamily._labelnames`); describe() returns families without samples, hence this look-up.
    names = getattr(family, "_labelnames", None) or getattr(collector, "_labelnames", None) or ()
    return tuple(str(name) for name in names)


def families_of(registry: CollectorRegistry, process: str) -> list[MetricFamily]:
    """The families registered in `registry`, tagged with the process that serves them."""
    values: dict[str, dict[str, set[str]]] = {}
    # The registry's only list of its collectors (prometheus_client has no public accessor).
    collectors = list(registry._collector_to_names)
    for collector in collectors:
        if not isinstance(collector, MetricWrapperBase):
            continue  # a custom collector's collect() does real work (the lag exporter asks the broker)
        for metric in collector.collect():  # samples exist only for children created at registration
            for sample in metric.samples:
                for label, value in sample.labels.items():
                    values.setdefault(metric.name, {}).setdefault(label, set()).add(value)
    families = []
    for collector in collectors:
        describe = getattr(collector, "describe", None)
        for family in describe() if callable(describe) else []:
            closed = {label: frozenset(found) for label, found in values.get(family.name, {}).items() if label != "le"}
            families.append(MetricFamily(name=family.name, type=family.type,
                                         labels=_label_names(collector, family), process=process,
                                         label_values=closed))
    return families


def registered_families() -> list[MetricFamily]:
    """Every family of every process: the stream, the producer, the API and the lag exporter."""
    producer, api, exporter = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    producer_metrics(producer)
    api_metrics(api)
    exporter.register(PipelineLagCollector(KafkaSettings(), topics={}, checkpoints=[],
                                           batch_status=Path("batch-status.json")))
    return [
        *families_of(StreamMetrics().registry, "stream"),
        *families_of(producer, "producer"),
        *families_of(api, "api"),
        *families_of(exporter, "exporter"),
    ]


def series_catalog(families: Iterable[MetricFamily] | None = None) -> dict[str, MetricFamily]:
    """Series name -> the family that exposes it (what a PromQL selector may name)."""
    catalog: dict[str, MetricFamily] = {}
    for family in registered_families() if families is None else families:
        for series in family.series():
            if series in catalog and catalog[series].process != family.process:
                msg = (f"expected each series from one process, found {series} in both "
                       f"{catalog[series].process} and {family.process}")
                raise ValueError(msg)
            catalog[series] = family
    return catalog
