"""The locust users of the API load bench (libs/bench/api_load.py runs `locust -f` on this file in a subprocess).

Kept out of api_load.py because importing locust monkey-patches the process for gevent; the bench process (Kafka
clients, Spark) must never be patched. Everything comes from environment variables the bench sets:

    CLAIMS_BENCH_TOKEN        a bearer token with the ingest and analyst roles
    CLAIMS_BENCH_BODIES       a directory of NDJSON bodies (one file per request body)
    CLAIMS_BENCH_DAYS         comma-separated intake days of the warehouse (analytics date filters)

IngestUser posts NDJSON bodies and counts a request as failed unless every record was acknowledged by Kafka (202
and one `accepted` entry per line). AnalyticsUser reads the four analytics routes with varied filters and pages.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

from locust import FastHttpUser, between, constant, task

TOKEN = os.environ.get("CLAIMS_BENCH_TOKEN", "")
BODIES = sorted(Path(os.environ.get("CLAIMS_BENCH_BODIES", ".")).glob("*.ndjson"))
DAYS = [day for day in os.environ.get("CLAIMS_BENCH_DAYS", "").split(",") if day]


class IngestUser(FastHttpUser):
    """A clearinghouse posting NDJSON batches back to back."""

    wait_time = constant(0)

    def on_start(self) -> None:
        # FastHttpSession types `data` as str; the NDJSON bodies are ASCII-safe UTF-8 text, sent as is.
        self.bodies = itertools.cycle([(text, text.count("\n")) for text in
                                       (path.read_text(encoding="utf-8") for path in BODIES)])
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}

    @task
    def post_batch(self) -> None:
        body, lines = next(self.bodies)
        with self.client.post("/v1/claims", data=body, headers=self.headers, name="POST /v1/claims",
                              catch_response=True) as response:
            accepted = len(response.json().get("accepted", [])) if response.status_code == 202 else 0
            if accepted != lines:
                response.failure(f"expected {lines} acknowledged claims, found {accepted} (HTTP "
                                 f"{response.status_code})")


class AnalyticsUser(FastHttpUser):
    """An analyst (or the dashboard) reading the analytics routes, with a short pause between requests: the latency
    target is for a served load, not for a closed loop that only measures the queue."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {TOKEN}"}
        self.random = random.Random(len(DAYS))  # noqa: S311  (load shapes, not secrets)

    def _range(self) -> str:
        if len(DAYS) < 2:
            return ""
        first, last = sorted(self.random.sample(DAYS, 2))
        return f"&from={first}&to={last}"

    @task(3)
    def summary(self) -> None:
        self.client.get(f"/v1/analytics/summary?limit=200{self._range()}", headers=self.headers,
                        name="/v1/analytics/summary")

    @task(2)
    def providers(self) -> None:
        order = self.random.choice(["billed", "claims", "alerts"])
        self.client.get(f"/v1/analytics/providers?limit=20&order_by={order}{self._range()}", headers=self.headers,
                        name="/v1/analytics/providers")

    @task(2)
    def quality(self) -> None:
        self.client.get(f"/v1/analytics/quality?limit=100&top=5{self._range()}", headers=self.headers,
                        name="/v1/analytics/quality")

    @task(2)
    def fraud(self) -> None:
        self.client.get(f"/v1/analytics/fraud?limit=100&offset={self.random.choice([0, 20])}{self._range()}",
                        headers=self.headers, name="/v1/analytics/fraud")
