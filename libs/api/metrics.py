"""The API's Prometheus metrics: requests by route and status, their latency, and claims by outcome.

Labels use the route *template* (`/v1/batches/{batch_id}`), never the concrete path, so a client cannot create
unbounded label values (and ids never become metric labels).

    claims_api_requests_total{method, route, status}
    claims_api_request_duration_seconds{method, route}
    claims_api_claims_total{outcome="accepted"|"rejected"|"failed"}
    claims_api_audit_failures_total                  audit records that could not be written
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class ApiMetrics:
    """The API's collectors in one registry."""

    requests: Counter
    duration: Histogram
    claims: Counter
    audit_failures: Counter

    def count_claims(self, accepted: int, rejected: int, failed: int) -> None:
        """Add one ingestion request's per-record outcomes."""
        for outcome, value in (("accepted", accepted), ("rejected", rejected), ("failed", failed)):
            if value:
                self.claims.labels(outcome=outcome).inc(value)


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, ApiMetrics] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def api_metrics(registry: CollectorRegistry = REGISTRY) -> ApiMetrics:
    """The API metrics registered in `registry` (once per registry; tests use their own)."""
    with _LOCK:
        metrics = _METRICS.get(registry)
        if metrics is None:
            metrics = ApiMetrics(
                requests=Counter("claims_api_requests_total", "API requests by route and status.",
                                 ["method", "route", "status"], registry=registry),
                duration=Histogram("claims_api_request_duration_seconds", "API request latency.",
                                   ["method", "route"], buckets=DURATION_BUCKETS, registry=registry),
                claims=Counter("claims_api_claims_total", "Records of ingestion requests by outcome.", ["outcome"],
                               registry=registry),
                audit_failures=Counter("claims_api_audit_failures_total",
                                       "API requests whose audit record could not be written.", registry=registry),
            )
            _METRICS[registry] = metrics
        return metrics
