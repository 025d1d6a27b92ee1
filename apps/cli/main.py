"""The `claims` command: one Typer app; each command group lives in its own module with a `register(app)`.

Why modules register themselves: the CLI grows with every app (convert, validate, generate, produce, stream, run,
bench, deploy, reveal, export) and keeping each command next to its concern keeps this file a table of contents.
"""

from __future__ import annotations

import importlib

import typer

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
)

app = typer.Typer(
    name="claims",
    help="Medical claims pipeline: convert, validate, generate, stream, deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
