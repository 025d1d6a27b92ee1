"""The Prometheus tools from Debian: prometheus, promtool, prometheus-alertmanager and amtool.

Why this lookup: scripts/fetch_prometheus.sh unpacks Debian's packages into .cache/prometheus/root without root
(`make prometheus`); when it had to fall back to a system-wide `apt-get install`, the binaries are on PATH instead.
Every caller (the local stack, the promtool and amtool tests) asks here, so both layouts work the same.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from libs.settings import REPO_ROOT

CACHE_ROOT = REPO_ROOT / ".cache" / "prometheus" / "root"
FETCH_SCRIPT = REPO_ROOT / "scripts" / "fetch_prometheus.sh"
TOOLS = ("prometheus", "promtool", "prometheus-alertmanager", "amtool")


class ToolNotFoundError(RuntimeError):
    """A Prometheus binary is neither unpacked under .cache/prometheus nor on PATH."""


def tool_path(name: str, root: Path = CACHE_ROOT) -> Path:
    """The path of one of TOOLS; ToolNotFoundError says how to get it."""
    if name not in TOOLS:
        msg = f"expected one of {', '.join(TOOLS)}, found {name!r}"
        raise ValueError(msg)
    unpacked = root / "usr" / "bin" / name
    if unpacked.is_file():
        return unpacked
    found = shutil.which(name)
    if found:
        return Path(found)
    msg = (f"expected {name} under {unpacked.parent} or on PATH, found neither; "
           f"run `make prometheus` (bash {FETCH_SCRIPT.relative_to(REPO_ROOT)})")
    raise ToolNotFoundError(msg)


def ensure_tools(timeout: float = 600.0) -> None:
    """Fetch the tools with scripts/fetch_prometheus.sh when any is missing (idempotent, as `make prometheus`)."""
    try:
        for name in TOOLS:
            tool_path(name)
    except ToolNotFoundError:
        result = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False,  # noqa: S603, S607
                                timeout=timeout)
        if result.returncode != 0:
            msg = (f"expected {FETCH_SCRIPT.name} to unpack the Prometheus tools, found exit {result.returncode}: "
                   f"{result.stderr.strip()[-1500:]}")
            raise ToolNotFoundError(msg) from None
        for name in TOOLS:
            tool_path(name)


def web_assets(root: Path = CACHE_ROOT) -> Path | None:
    """The classic web UI's templates and static files (Debian's --web.local-assets), when unpacked here."""
    assets = root / "usr" / "share" / "prometheus" / "web"
    return assets if (assets / "templates").is_dir() else None


def run_tool(name: str, *args: str, cwd: Path | None = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run promtool or amtool with `args`; the caller decides what a non-zero exit means."""
    return subprocess.run([str(tool_path(name)), *args], capture_output=True, text=True, check=False,  # noqa: S603
                          cwd=cwd, timeout=timeout)
