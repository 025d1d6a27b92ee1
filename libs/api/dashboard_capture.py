"""Open the dashboard in headless Chromium, wait for every chart, and report what was drawn (and a screenshot).

One function for the browser test (tests/api/test_dashboard_browser.py) and for `claims api screenshot`, which
regenerates docs/images/dashboard.png: the committed picture is what the test saw, not a separate script's idea of it.

Debian's `chromium` package, driven by Playwright's Python package through `executable_path`: Playwright's own
browser downloads (`playwright install`) are never used, so the browser comes from the distribution's signed
packages like every other system tool here. A missing browser is an error naming the package, never a skip.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Each chart's container and the SVG elements that are its data marks (legend symbols and axes are other roles).
CHART_MARKS = {
    "chart-claims": "g.mark-rect.role-mark path",
    "chart-billed": "g.mark-symbol.role-mark path",
    "chart-valid": "g.mark-symbol.role-mark path",
    "chart-reasons": "g.mark-rect.role-mark path",
    "chart-fraud": "g.mark-rect.role-mark path",
}
# A selector, not a JS predicate: the page's Content-Security-Policy forbids eval, which Playwright's
# wait_for_function would need.
SETTLED = ", ".join(f'body[data-state="{state}"]' for state in ("ready", "partial", "needs-token"))


class BrowserMissingError(RuntimeError):
    """Chromium is not installed where the capture expects it."""


@dataclass(frozen=True)
class ChartRender:
    """One chart as drawn: rows the page gave it, whether an SVG is there, its data marks and its texts."""

    rows: int
    has_svg: bool
    marks: int
    texts: tuple[str, ...]


@dataclass
class DashboardCapture:
    """What the page showed and what went wrong in it."""

    state: str
    status_text: str
    charts: dict[str, ChartRender]
    lag_text: str
    batch_rows: list[list[str]]
    provider_rows: list[list[str]]
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


def chromium_path(executable: str = CHROMIUM) -> str:
    """The browser executable; BrowserMissingError naming the Debian package when it is absent."""
    found = executable if Path(executable).is_file() else shutil.which("chromium")
    if not found:
        msg = (f"expected Debian's chromium at {executable}, found none: install it with `apt-get install -y "
               "chromium` (Playwright's own browser downloads are not used)")
        raise BrowserMissingError(msg)
    return found


def _table(page: Any, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))")
    return rows


def capture_dashboard(base_url: str, token: str, screenshot: Path, *, executable: str = CHROMIUM,
                      timeout_ms: int = 60_000, width: int = 1400, height: int = 1700) -> DashboardCapture:
    """Load `base_url`/dashboard with `token` (URL fragment), wait until every panel settled, screenshot the page."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (the browser driver only when capturing)

    browser_path = chromium_path(executable)
    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda message: console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.url.split('#')[0]}"))
            page.goto(f"{base_url}/dashboard#token={token}", wait_until="load", timeout=timeout_ms)
            page.wait_for_selector(SETTLED, state="attached", timeout=timeout_ms)
            charts = {}
            for chart_id, marks in CHART_MARKS.items():
                container = page.locator(f"#{chart_id}")
                charts[chart_id] = ChartRender(
                    rows=int(container.get_attribute("data-rows") or -1),
                    has_svg=page.locator(f"#{chart_id} svg").count() > 0,
                    marks=page.locator(f"#{chart_id} {marks}").count(),
                    texts=tuple(page.locator(f"#{chart_id} svg text").all_text_contents()))
            capture = DashboardCapture(
                state=str(page.locator("body").get_attribute("data-state")),
                status_text=page.locator("#status").inner_text(), charts=charts,
                lag_text=page.locator("#stream-lag").inner_text(),
                batch_rows=_table(page, "#batches"), provider_rows=_table(page, "#providers"),
                console_errors=console_errors, page_errors=page_errors, failed_requests=failed)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return capture
