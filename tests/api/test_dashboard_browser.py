"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright) against a real uvicorn server
over a warehouse of generated claims: every chart draws an SVG with as many marks as the API's answer implies, the
tables and the stream lag show the API's values, and the page logs no error. The screenshot lands in tmp; `claims api
screenshot` regenerates docs/images/dashboard.png with the same code (libs.api.dashboard_capture)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from apps.cli.main import app
from libs.api.auth import Role
from libs.api.dashboard_capture import DashboardCapture, capture_dashboard, chromium_path
from libs.api.sample_warehouse import SampleWarehouse, build_sample_warehouse
from libs.api.stream_lag import STREAM_LAG, LagSource
from tests.api.conftest import AnalyticsServer

TOP_REASONS = 10  # the reasons chart keeps the ten most frequent codes (apps/api/web/dashboard.js)


def _rows(client: httpx.Client, path: str, token: str) -> list[dict]:
    """Every row of a paged analytics answer, as the page reads it (following `next`)."""
    rows: list[dict] = []
    url: str | None = path
    while url is not None:
        answer = client.get(url, headers={"Authorization": f"Bearer {token}"}).json()
        rows += answer["rows"]
        url = answer["next"]
    return rows


@pytest.fixture
def dashboard(serve_analytics: Callable[..., AnalyticsServer], stream_endpoint: str,
              tmp_path: Path) -> tuple[AnalyticsServer, SampleWarehouse, DashboardCapture, str]:
    chromium_path()  # fails (never skips) naming `apt-get install -y chromium` when the browser is missing
    server = serve_analytics(lag_sources=[LagSource("stream", stream_endpoint, STREAM_LAG)])
    sample = build_sample_warehouse(server.settings.warehouse.duckdb_path, count=1500, seed=11)
    token = server.issuer.issue("browser-test", [Role.ANALYST])
    capture = capture_dashboard(server.url, token, tmp_path / "dashboard.png")
    return server, sample, capture, token


def test_every_chart_renders_the_data_the_api_returned(dashboard, tmp_path: Path):
    server, sample, capture, token = dashboard
    with server.client() as client:
        summary = _rows(client, "/v1/analytics/summary?limit=1000", token)
        quality = _rows(client, "/v1/analytics/quality?limit=1000&top=5", token)
        fraud = _rows(client, "/v1/analytics/fraud?limit=1000", token)
    # A chart compared with an empty answer would prove nothing.
    assert summary
    assert quality
    assert fraud
    assert sum(row["claims"] for row in summary) == sample.claims

    assert capture.state == "ready", capture.status_text
    for chart_id, chart in capture.charts.items():
        assert chart.has_svg, f"{chart_id} drew no SVG"
    charts = capture.charts
    # Rows handed to each chart = rows the API answered; marks = what those rows aggregate to.
    assert charts["chart-claims"].rows == len(summary)
    assert charts["chart-claims"].marks == len({(r["intake_date"], r["claim_type"]) for r in summary})
    assert charts["chart-billed"].marks == len({r["intake_date"] for r in summary})
    ratios = [r for r in quality if r["valid_ratio"] is not None]
    assert charts["chart-valid"].rows == charts["chart-valid"].marks == len(ratios)
    totals: dict[str, int] = {}
    for row in quality:
        for reason in row["top_reasons"]:
            totals[reason["reason_code"]] = totals.get(reason["reason_code"], 0) + reason["claim_count"]
    assert charts["chart-reasons"].marks == min(len(totals), TOP_REASONS)
    shown = sorted(totals, key=lambda code: (-totals[code], code))[:TOP_REASONS]
    assert set(shown) <= set(charts["chart-reasons"].texts)  # the ten most frequent codes label the bars
    assert charts["chart-fraud"].rows == len(fraud)
    rules = {r["rule"] for r in fraud}
    assert charts["chart-fraud"].marks == len(rules)
    assert rules <= set(charts["chart-fraud"].texts)  # every rule is an axis label


def test_tables_and_stream_lag_show_the_api_values(dashboard):
    server, _sample, capture, token = dashboard
    with server.client() as client:
        providers = client.get("/v1/analytics/providers?limit=10", headers={"Authorization": f"Bearer {token}"})
    assert [row[0] for row in capture.provider_rows] == [row["npi"] for row in providers.json()["rows"]]
    assert [row[2] for row in capture.provider_rows] == [str(row["claims"]) for row in providers.json()["rows"]]
    (run,) = capture.batch_rows
    assert (run[0], run[1], run[2]) == ("sample-11-1500", "2026-11-28", "succeeded")
    assert capture.lag_text.startswith("12 messages behind")  # 7 + 5 from the stream's metrics endpoint


def test_the_page_logs_no_error_and_takes_a_screenshot(dashboard, tmp_path: Path):
    _server, _sample, capture, _token = dashboard
    assert capture.page_errors == []
    assert capture.console_errors == []
    assert capture.failed_requests == []
    png = (tmp_path / "dashboard.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 50_000  # a page of charts, not a blank one


def test_without_a_token_the_page_asks_for_one(serve_analytics: Callable[..., AnalyticsServer], tmp_path: Path):
    server = serve_analytics()
    capture = capture_dashboard(server.url, "", tmp_path / "no-token.png")
    assert capture.state == "needs-token"
    assert capture.page_errors == []
    assert capture.console_errors == []
    refused = capture_dashboard(server.url, "forged.token.value", tmp_path / "forged.png")
    assert refused.state == "needs-token"
    assert "refused (401)" in refused.status_text
    assert refused.page_errors == []


def test_screenshot_command_writes_the_picture(tmp_path: Path):
    output = tmp_path / "images" / "dashboard.png"
    result = CliRunner().invoke(app, ["api", "screenshot", "--output", str(output), "--count", "400"])
    assert result.exit_code == 0, result.output
    assert output.read_bytes().startswith(b"\x89PNG")
    assert "chart-fraud" in result.output
