"""Entry point of the streaming job: load settings, build the Spark session, start the query, serve metrics.

Thin on purpose: everything it wires lives in `libs.streaming`. On EMR this file is the spark-submit script and the
settings come from the rendered stack config named by CLAIMS_CONFIG.

Before Spark starts, `check` asks the broker (seconds, not the clients' minute-long timeouts) whether it answers and
holds every topic the stream reads and writes; a missing one is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from prometheus_client import start_http_server

from libs.kafka.topics import TopicRole
from libs.phi.logging import LogFormat, configure_logging, default_log_format, safe_exception_message
from libs.pipeline import signals
from libs.preflight import EXIT_PREFLIGHT, Needs, PreflightError, preflight
from libs.settings import Settings, load_settings
from libs.spark.session import build_spark_session
from libs.streaming.processor import BatchOutcome
from libs.streaming.query import RunningQuery, start_claims_query

# The stream reads the raw topic and writes every other one.
STREAM_NEEDS = Needs(topics=tuple(role.value for role in TopicRole))

log = logging.getLogger("claims.stream")


def check(settings: Settings) -> None:
    """The stream's preflight: the broker answers and holds every topic (PreflightError with the one line)."""
    preflight(settings, STREAM_NEEDS)


def run_stream(settings: Settings, *, available_now: bool = False, metrics_port: int | None = None,
               on_batch: Callable[[BatchOutcome], None] | None = None, spark_log: Path | None = None
               ) -> RunningQuery:
    """Start the query and its metrics endpoint; returns the running query (the caller waits on it)."""
    spark = build_spark_session(settings.spark, app_name="claims-stream", log_file=spark_log)
    running = start_claims_query(spark, settings, available_now=available_now, on_batch=on_batch)
    port = settings.monitoring.streaming_metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr="127.0.0.1" if settings.environment == "local" else "0.0.0.0",  # noqa: S104
                          registry=running.metrics.registry)
        log.info("streaming metrics on port %s", port)
    return running


def serve(settings: Settings, *, available_now: bool = False, metrics_port: int | None = None,
          on_batch: Callable[[BatchOutcome], None] | None = None, spark_log: Path | None = None,
          on_tick: Callable[[RunningQuery], None] | None = None) -> int:
    """Run the query until it stops (availableNow) or a signal arrives; 0 when it ended without an error.

    Logging is the entry point's to set up (`main` here, the `claims` callback for `claims stream`). `on_tick` is
    called about every second while the query runs (the CLI draws progress). SIGINT and SIGTERM stop the query at the
    next batch boundary: the handler only takes note, and the query is stopped from this loop, because a call into the
    JVM from a signal handler would cut the call the loop is in (it came back as a Py4JError). The session is stopped
    on the way out, also when the start itself is interrupted.
    """
    running = run_stream(settings, available_now=available_now, metrics_port=metrics_port, on_batch=on_batch,
                         spark_log=spark_log)
    stopped: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping the query at the next batch boundary", signum)
        stopped.append(signum)
        signals.note(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopped and not running.query.awaitTermination(1):
            if on_tick is not None:
                on_tick(running)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        failure = _stop(running, asked=bool(stopped))
    if failure is not None and not stopped:
        log.error("streaming query failed: %s", safe_exception_message(failure))
        return 1
    return 0


def _stop(running: RunningQuery, *, asked: bool) -> BaseException | None:
    """Stop the query and the session; returns the query's failure, if any.

    When a person asked to stop (`asked`), a query caught mid-start may fail its own stop (Py4JError): that is the
    stop they asked for, logged, not a failure of the command.
    """
    failure: BaseException | None = None
    for step in (running.query.exception, running.stop, running.spark.stop):
        try:
            outcome = step()
        except Exception as exc:
            if not asked:
                raise
            log.info("stopping after a signal: %s", safe_exception_message(exc))
            continue
        if isinstance(outcome, BaseException):
            failure = outcome
    return failure


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point."""
    parser = argparse.ArgumentParser(description="Claims streaming job")
    parser.add_argument("--available-now", action="store_true", help="drain the raw topic and stop")
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat], default=None,
                        help="file: .local/logs/stream.log; json: stderr (default: file locally, json elsewhere)")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(process="stream", log_format=args.log_format or default_log_format(settings.environment))
    try:
        check(settings)
    except PreflightError as missing:
        sys.stderr.write(f"error: {missing}\n")
        return EXIT_PREFLIGHT
    return serve(settings, available_now=args.available_now)


if __name__ == "__main__":
    sys.exit(main())
