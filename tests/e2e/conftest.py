"""End-to-end fixtures: the session Spark session of tests/streaming (one JVM per test session)."""

from __future__ import annotations

from tests.streaming.conftest import spark  # noqa: F401  (re-exported session fixture)
