"""The dashboard's vendored chart libraries: which files, and which of them a directory lacks.

Why one place: the API serves them (apps/api/routers/dashboard.py), warns at start when they are missing
(apps/api/main.py), and the API image's build context must contain them (libs/deploy/api_image.py); `make
web-assets` (scripts/fetch_web_assets.sh) vendors them from npm at tools/web/package-lock.json's versions.
"""

from __future__ import annotations

from pathlib import Path

VENDOR_FILES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


def missing_vendor_files(directory: Path) -> list[str]:
    """The chart libraries `directory` does not hold (empty when the dashboard can be served from it)."""
    return [name for name in VENDOR_FILES if not (directory / name).is_file()]
