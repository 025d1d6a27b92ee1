"""How far the stream is behind, for the dashboard: read from a Prometheus endpoint, never computed here.

Why read a metrics endpoint: the lag exporter (libs.monitoring.lag, `claims monitor up`) computes the broker-side
truth (raw topic end offsets minus the stream's last committed checkpoint) and the stream publishes Spark's own view
(`claims_stream_consumer_lag`); the API asks the exporter first, then the stream, and reports which one answered.
When neither answers (no `make run` / `claims monitor up` going) the dashboard says "no stream metrics" plainly
rather than showing a zero that would read as "caught up". Each endpoint gets a short timeout: the dashboard must
not wait on a dead process.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from libs.monitoring.scrape import load_scrape_jobs
from libs.settings import MonitoringSettings

EXPORTER_JOB = "claims-exporter"
EXPORTER_LAG = "claims_kafka_consumer_lag"
EXPORTER_COMMIT = "claims_kafka_consumer_last_commit_timestamp_seconds"
STREAM_LAG = "claims_stream_consumer_lag"
TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class LagSource:
    """A metrics endpoint and the lag metric it publishes."""

    name: str  # "exporter" or "stream"
    url: str
    metric: str


@dataclass(frozen=True)
class StreamLag:
    """The stream's lag in messages (summed over the raw topic's partitions), or why there is none."""

    available: bool
    source: str | None
    lag_messages: int | None
    partitions: int
    last_commit_timestamp: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer."""
        return asdict(self)


def default_sources(monitoring: MonitoringSettings) -> tuple[LagSource, ...]:
    """The local exporter (port from configs/monitoring/scrape-jobs.yaml), then the stream's own endpoint."""
    exporter_port = load_scrape_jobs().job(EXPORTER_JOB).port_in(monitoring)
    return (LagSource("exporter", f"http://127.0.0.1:{exporter_port}/metrics", EXPORTER_LAG),
            LagSource("stream", f"http://127.0.0.1:{monitoring.streaming_metrics_port}/metrics", STREAM_LAG))


def _scrape(url: str, timeout: float) -> str:
    if not url.startswith(("http://127.0.0.1", "http://localhost", "https://")):
        msg = f"expected a loopback http or an https metrics URL, found {url.split('?', maxsplit=1)[0]}"
        raise ValueError(msg)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (scheme checked above)
        return bytes(response.read()).decode("utf-8")


def parse_lag(text: str, source: LagSource) -> StreamLag | None:
    """The lag published in one exposition text, or None when the endpoint publishes no lag sample."""
    lags: list[float] = []
    commit: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == source.metric:
                lags.append(sample.value)
            elif sample.name == EXPORTER_COMMIT:
                commit = sample.value
    if not lags:
        return None
    return StreamLag(True, source.name, int(sum(lags)), len(lags), commit,
                     f"{source.metric} from {source.name} ({source.url})")


def read_stream_lag(sources: Sequence[LagSource], timeout: float = TIMEOUT_SECONDS) -> StreamLag:
    """The first source's lag that answers with samples; else 'no stream metrics' and what was tried."""
    tried: list[str] = []
    for source in sources:
        try:
            found = parse_lag(_scrape(source.url, timeout), source)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            tried.append(f"{source.name} {source.url}: {type(reason).__name__}")
            continue
        if found is not None:
            return found
        tried.append(f"{source.name} {source.url}: no {source.metric} samples")
    return StreamLag(False, None, None, 0, None, "no stream metrics (" + "; ".join(tried) + ")")
