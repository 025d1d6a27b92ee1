"""Per-client rate limits: a token bucket per caller, so one noisy client cannot starve the others (HTTP 429).

Why per client and in process: the API's expensive path (parse, validate, protect, produce) runs on the replica that
took the request, so each replica protects its own CPU; a client is its token subject once authenticated, its address
before (which also slows down token guessing). Buckets idle for a while are forgotten, so memory stays bounded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

IDLE_FORGET_SECONDS = 600.0
SWEEP_EVERY = 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, and if not, after how many whole seconds to retry (Retry-After)."""

    allowed: bool
    retry_after_seconds: int = 0


class RateLimiter:
    """Token buckets keyed by client: `rate` requests per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            msg = f"rate limit: expected rate > 0 and burst >= 1, found rate {rate} and burst {burst}"
            raise ValueError(msg)
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._checks = 0

    def check(self, client: str) -> Decision:
        """Take one token for `client` if it has one."""
        with self._lock:
            now = self._clock()
            self._checks += 1
            if self._checks % SWEEP_EVERY == 0:
                self._forget_idle(now)
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Decision(allowed=True)
            return Decision(allowed=False, retry_after_seconds=max(1, math.ceil((1.0 - bucket.tokens) / self.rate)))

    def _forget_idle(self, now: float) -> None:
        for client in [name for name, bucket in self._buckets.items() if now - bucket.updated > IDLE_FORGET_SECONDS]:
            del self._buckets[client]
