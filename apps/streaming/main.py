"""Entry point of the streaming job: load settings, build the Spark session, start the query, serve metrics.

Thin on purpose: everything it wires lives in `libs.streaming`. On EMR this file is the spark-submit script and the
settings come from the rendered stack config named by CLAIMS_CONFIG.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from prometheus_client import start_http_server

from libs.phi.logging import LogFormat, configure_logging, default_log_format, safe_exception_message
from libs.settings import Settings, load_settings
from libs.spark.session import build_spark_session
from libs.streaming.query import RunningQuery, start_claims_query

log = logging.getLogger("claims.stream")


def run_stream(settings: Settings, *, available_now: bool = False, metrics_port: int | None = None) -> RunningQuery:
    """Start the query and its metrics endpoint; returns the running query (the caller waits on it)."""
    spark = build_spark_session(settings.spark, app_name="claims-stream")
    running = start_claims_query(spark, settings, available_now=available_now)
    port = settings.monitoring.streaming_metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr="127.0.0.1" if settings.environment == "local" else "0.0.0.0",  # noqa: S104
                          registry=running.metrics.registry)
        log.info("streaming metrics on port %s", port)
    return running


def serve(settings: Settings, *, available_now: bool = False, metrics_port: int | None = None) -> int:
    """Run the query until it stops (availableNow) or a signal arrives; 0 when it ended without an error.

    Logging is the entry point's to set up (`main` here, the `claims` callback for `claims stream`).
    """
    running = run_stream(settings, available_now=available_now, metrics_port=metrics_port)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping the query at the next batch boundary", signum)
        running.query.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running.query.awaitTermination()
    failure = running.query.exception()
    if failure is not None:
        log.error("streaming query failed: %s", safe_exception_message(failure))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point."""
    parser = argparse.ArgumentParser(description="Claims streaming job")
    parser.add_argument("--available-now", action="store_true", help="drain the raw topic and stop")
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat], default=None,
                        help="file: .local/logs/stream.log; json: stderr (default: file locally, json elsewhere)")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(process="stream", log_format=args.log_format or default_log_format(settings.environment))
    return serve(settings, available_now=args.available_now)


if __name__ == "__main__":
    sys.exit(main())
