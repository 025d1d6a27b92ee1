"""`claims api [--host H --port P]` serves the REST API; `claims api token --role ROLE` prints a local bearer token;
`claims api screenshot` regenerates docs/images/dashboard.png; `claims api image-context DIR` writes the API image's
build context.

Thin: the app is apps/api/main.py, token signing libs/api/auth.py (refused outside the local environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

api_app = typer.Typer(help="The REST API (FastAPI on uvicorn) and local bearer tokens.", invoke_without_command=True)


@api_app.callback()
def api_command(
    ctx: typer.Context,
    *,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: settings.monitoring.api_port, 8080).", min=1,
                                             max=65535)] = None,
    ssl_certfile: Annotated[str | None, typer.Option(help="Serve HTTPS with this PEM certificate (chain).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="The certificate's PEM private key.")] = None,
    workers: Annotated[int, typer.Option(help="Server processes on the port (ingestion is CPU-bound Python).",
                                         min=1, max=64)] = 1,
) -> None:
    """Serve the API (OpenAPI at /docs) until Ctrl-C; HTTPS when given a certificate and key."""
    if ctx.invoked_subcommand is not None:
        return
    from apps.api.main import serve  # noqa: PLC0415  (FastAPI and uvicorn only when serving)
    from libs.api.auth import AuthConfigurationError  # noqa: PLC0415
    from libs.ingest import IngestError  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: pass --ssl-certfile and --ssl-keyfile together", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    try:
        serve(host, port or settings.monitoring.api_port, None if workers > 1 else settings,
              ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, workers=workers)
    except (AuthConfigurationError, IngestError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@api_app.command("token")
def token_command(
    role: Annotated[list[str], typer.Option("--role", help="Role(s): ingest, analyst, operator, privacy_officer, "
                                                           "admin (repeat for several).")],
    subject: Annotated[str, typer.Option(help="Who the token names (the audit log's actor).")] = "local-user",
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds (default: api.local_token_ttl_seconds).",
                                            min=60, max=86_400)] = None,
) -> None:
    """Print a bearer token signed with the local keyring's key (local environment only)."""
    from libs.api.auth import AuthConfigurationError, LocalTokenIssuer, Role  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    known = {member.value for member in Role}
    unknown = [name for name in role if name not in known]
    if unknown:
        typer.echo(f"error: expected roles among {', '.join(sorted(known))}, found {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    try:
        issuer = LocalTokenIssuer(load_settings())
    except AuthConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(issuer.issue(subject, [Role(name) for name in role], ttl))


@api_app.command("screenshot")
def screenshot_command(
    output: Annotated[Path, typer.Option(help="Where to write the PNG.")] = Path("docs/images/dashboard.png"),
    count: Annotated[int, typer.Option(help="Generated claims in the sample warehouse.", min=100,
                                       max=200_000)] = 4000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
) -> None:
    """Screenshot /dashboard over a sample warehouse of generated claims in headless Chromium (the browser test's
    code), e.g. to regenerate docs/images/dashboard.png. Needs Debian's chromium and `make web-assets`."""
    from libs.api.dashboard_capture import BrowserMissingError  # noqa: PLC0415
    from libs.api.showcase import screenshot_sample_dashboard  # noqa: PLC0415

    try:
        capture, sample = screenshot_sample_dashboard(output, count=count, seed=seed)
    except BrowserMissingError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    problems = capture.page_errors + capture.console_errors + capture.failed_requests
    if capture.state != "ready" or problems:
        typer.echo(f"error: the page ended {capture.state}: {capture.status_text or '; '.join(problems)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{output}: {sample.claims:,} claims over {sample.first_day} .. {sample.last_day}; "
               f"charts: {', '.join(f'{name} {chart.marks} marks' for name, chart in capture.charts.items())}")


@api_app.command("image-context")
def image_context_command(
    directory: Annotated[Path, typer.Argument(help="Where to write the build context (emptied first).")],
) -> None:
    """Write the API image's build context (apps/api/Dockerfile, requirements.lock, the project wheel, the vendored
    chart libraries) for `docker build DIRECTORY`; `make api-image` runs this and, where docker exists, the build."""
    from libs.deploy.api_image import write_api_image_context  # noqa: PLC0415
    from libs.deploy.artifacts import ArtifactError  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    try:
        context = write_api_image_context(directory, web_assets=load_settings().api.web_assets_dir)
    except ArtifactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{context.directory}: Dockerfile, requirements.lock, dist/{context.wheel.name}, "
               f"web/vendor/ ({', '.join(context.web_files)})")


def register(app: typer.Typer) -> None:
    """Add `claims api` (and `claims api token`)."""
    app.add_typer(api_app, name="api")
