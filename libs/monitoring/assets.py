"""Where the committed monitoring files live: one set of files for the local Prometheus, the tests and AWS.

Everything under configs/monitoring is read by three consumers: the local stack (libs.monitoring.local), the tests
(promtool, amtool) and the AMP component (infra/monitoring.py). Naming the paths once keeps the three on the same files.
"""

from __future__ import annotations

from pathlib import Path

from libs.settings import LOCAL_DIR, REPO_ROOT

MONITORING_DIR = REPO_ROOT / "configs" / "monitoring"
RULES_FILE = MONITORING_DIR / "prometheus-rules.yaml"
RULE_TESTS_DIR = MONITORING_DIR / "rule-tests"
ALERTMANAGER_FILE = MONITORING_DIR / "alertmanager.yml"
SCRAPE_JOBS_FILE = MONITORING_DIR / "scrape-jobs.yaml"
DASHBOARDS_DIR = MONITORING_DIR / "grafana"
STATE_DIR = LOCAL_DIR / "monitoring"
BATCH_STATUS_FILE = STATE_DIR / "batch-status.json"


def rule_test_files(directory: Path = RULE_TESTS_DIR) -> list[Path]:
    """The promtool rule unit-test files, in a stable order."""
    return sorted(directory.glob("*.yaml"))
