"""GET /dashboard: the analytics page, and /static/...: its script and the vendored chart libraries.

The page itself holds no data and needs no token: its script asks for an analyst token (or takes one from the URL
fragment, `/dashboard#token=...`, which browsers never send to a server or write to its access log), keeps it in
sessionStorage for the tab, and calls the /v1 routes with it; every data request is authenticated, role-checked and
audited there. The chart libraries are served from .cache/web/vendor (`make web-assets`), never from a CDN; when they
are missing the page and the files answer 503 naming the make target, instead of a page with empty charts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from libs.api.context import context_of
from libs.api.problems import ApiProblem
from libs.api.web_assets import VENDOR_FILES, missing_vendor_files

router = APIRouter(tags=["dashboard"])
PAGE_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
MISSING_ASSETS = ("the dashboard's chart libraries are missing from {where}: run `make web-assets` "
                  "(scripts/fetch_web_assets.sh: npm ci of tools/web/package-lock.json, bundles copied to .cache/web)")


def _vendor_dir(request: Request) -> Path:
    """The vendored libraries' directory; 503 naming the make target when any bundle is missing."""
    directory = context_of(request).web_assets
    if missing_vendor_files(directory):
        raise ApiProblem(503, MISSING_ASSETS.format(where=directory))
    return directory


@router.get("/dashboard", response_class=HTMLResponse,
            responses={503: {"description": "The chart libraries are not vendored (make web-assets)."}})
def dashboard(request: Request) -> HTMLResponse:
    """The analytics dashboard (its data calls need an analyst token; see docs/api.md)."""
    _vendor_dir(request)
    html = (PAGE_DIR / "dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                       "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                                       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                       "connect-src 'self'; frame-ancestors 'none'"})


@router.get("/static/dashboard/{name}", include_in_schema=False)
def page_file(name: str) -> FileResponse:
    """The page's own script and style sheet (apps/api/web)."""
    if name not in PAGE_FILES:
        raise ApiProblem(404, f"expected one of {', '.join(PAGE_FILES)}, found another file name")
    return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name])


@router.get("/static/vendor/{name}", include_in_schema=False)
def vendor_file(name: str, request: Request) -> FileResponse:
    """A vendored chart library (.cache/web/vendor, from `make web-assets`)."""
    if name not in VENDOR_FILES:
        raise ApiProblem(404, f"expected one of {', '.join(VENDOR_FILES)}, found another file name")
    return FileResponse(_vendor_dir(request) / name, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})
