"""The `claims` command: one Typer app; each command group lives in its own module with a `register(app)`.

Why modules register themselves: the CLI grows with every app (convert, validate, generate, produce, stream, run,
bench, deploy, reveal, export) and keeping each command next to its concern keeps this file a table of contents.

How every command ends (`main`): its exit code; a missing dependency (libs.preflight.PreflightError) as one line and
exit 2; Ctrl-C or SIGTERM as one line and exit 130, after the command's own clean-up ran (its `finally` blocks stop
the query and any broker it started) and the Spark JVM, if one was started, is ended; any other failure as one
PHI-free line (libs.phi.logging.safe_exception_message) and exit 1, the frames in the command's log file. A person
never sees a traceback (it could quote a record), and nothing a command started outlives it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
from typing import Annotated

import typer

from libs.phi.logging import LogFormat, configure_logging, safe_exception_message

EXIT_FAILED, EXIT_PREFLIGHT, EXIT_INTERRUPTED = 1, 2, 130

COMMAND_MODULES = (
    "apps.cli.convert",      # claims convert
    "apps.cli.validate",     # claims validate
    "apps.cli.generate",     # claims generate
    "apps.cli.rules",        # claims rules (catalog, markdown for docs/validation-rules.md)
    "apps.cli.kafka",        # claims kafka up|down|status, claims topics
    "apps.cli.produce",      # claims produce
    "apps.cli.stream",       # claims stream
    "apps.cli.run",          # claims run (the `make run` pipeline)
    "apps.cli.batch",        # claims batch (daily: silver -> warehouse, batch fraud screens)
    "apps.cli.bench",        # claims bench
    "apps.cli.deploy",       # claims deploy
    "apps.cli.phi",          # claims reveal, claims export --deidentified, claims keys
    "apps.cli.monitor",      # claims monitor up|down|status|exporter|dashboards
    "apps.cli.api",          # claims api (the REST API), claims api token
    "apps.cli.analytics",    # claims analytics <mart>, claims screen PATH..., claims fraud score
)

app = typer.Typer(
    name="claims",
    help="Medical claims pipeline: convert, validate, generate, stream, deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _logging(
    ctx: typer.Context,
    log_format: Annotated[LogFormat, typer.Option(
        help="file: JSON lines to .local/logs/<command>.log; json: JSON lines on stderr (as a service runs).",
    )] = LogFormat.FILE,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """One logging set-up for every command (PHI-scrubbed JSON, correlation ids); see libs.phi.logging."""
    configure_logging(log_level, process=ctx.invoked_subcommand or "claims", log_format=log_format)


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def stop_spark_jvm() -> bool:
    """End the Spark JVM this process started, if any (PySpark leaves it to the interpreter's exit; after Ctrl-C
    it must not linger while Python threads unwind). Returns whether there was one."""
    if "pyspark" not in sys.modules:  # no command of this process used Spark: nothing to end, nothing to import
        return False
    from pyspark import SparkContext  # noqa: PLC0415

    if SparkContext._gateway is None:
        return False
    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except Exception:  # noqa: BLE001  (a JVM that ignores SIGTERM is killed)
            process.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None
    return True


def _is_usage_error(failure: BaseException) -> bool:
    """A click exception (Typer vendors its own click, so matched by shape): it knows how to show itself."""
    return callable(getattr(failure, "show", None)) and isinstance(getattr(failure, "exit_code", None), int)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the command, then end the process as the module docstring says."""
    from libs.pipeline import signals  # noqa: PLC0415
    from libs.pipeline.console import person_stderr  # noqa: PLC0415
    from libs.preflight import PreflightError, describe_structure  # noqa: PLC0415

    person = person_stderr()  # taken now, before anything points descriptor 2 elsewhere
    # Ctrl-C and SIGTERM raise KeyboardInterrupt after taking note: an interrupt that lands inside a call into the
    # JVM comes back as a Py4JError, and is still reported as the interrupt it was.
    signals.install()
    try:
        code = app(args=argv, standalone_mode=False)
    except PreflightError as missing:
        typer.echo(f"error: {missing}", file=person)
        sys.exit(EXIT_PREFLIGHT)
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    except Exception as failure:  # one PHI-free line for people; the frames go to the log file
        if _is_usage_error(failure):  # Typer's (vendored) click: a bad option or argument, shown as click shows it
            failure.show()  # type: ignore[attr-defined]
            sys.exit(int(failure.exit_code))  # type: ignore[attr-defined]
        if signals.interrupted():
            code = EXIT_INTERRUPTED
        else:
            logging.getLogger("claims.cli").error("command failed", exc_info=failure)
            detail = safe_exception_message(failure)
            typer.echo(f"error: {describe_structure(failure) if 'withheld' in detail else detail}", file=person)
            stop_spark_jvm()
            sys.exit(EXIT_FAILED)
    if code == EXIT_INTERRUPTED:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        jvm = stop_spark_jvm()
        typer.echo(f"interrupted: stopped cleanly{' (Spark stopped)' if jvm else ''}", file=person)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
