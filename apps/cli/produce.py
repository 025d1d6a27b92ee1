"""`claims produce`: the producer app (apps/producer/main.py) as a `claims` command."""

from __future__ import annotations

import typer

from apps.producer.main import produce_command


def register(app: typer.Typer) -> None:
    """Add `claims produce`."""
    app.command("produce")(produce_command)
