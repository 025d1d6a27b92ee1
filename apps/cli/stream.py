"""`claims stream`: run the Spark Structured Streaming job (raw topic -> validation -> lake and topics)."""

from __future__ import annotations

from typing import Annotated

import typer


def stream_command(
    *,
    available_now: Annotated[bool, typer.Option("--available-now", help="Drain the raw topic, then stop.")] = False,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers (overrides settings).")] = None,
    trigger_seconds: Annotated[float | None, typer.Option(help="Micro-batch interval (default 5 s).", min=0.1)] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0 disables).", min=0)] = None,
) -> None:
    """Stream claims from medical-claims-raw into the Delta lake and the output topics (Ctrl-C stops cleanly)."""
    from apps.streaming.main import serve  # noqa: PLC0415  (imports PySpark only when the command runs)
    from libs.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    if bootstrap:
        settings.kafka.bootstrap_servers = bootstrap
    if trigger_seconds:
        settings.spark.trigger_seconds = trigger_seconds
    raise typer.Exit(serve(settings, available_now=available_now, metrics_port=metrics_port))


def register(app: typer.Typer) -> None:
    """Add `claims stream`."""
    app.command("stream")(stream_command)
