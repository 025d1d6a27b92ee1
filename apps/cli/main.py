"""The `claims` command: one Typer app; each command group lives in its own module with a `register(app)`.

Why modules register themselves: the CLI grows with every app (convert, validate, generate, produce, stream, run,
bench, deploy, reveal, export) and keeping each command next to its concern keeps this file a table of contents.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from libs.phi.logging import LogFormat, configure_logging

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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
