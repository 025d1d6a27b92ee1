"""What the deploy ships for monitoring names only series the code registers.

The assets infra/monitoring.py deploys (rules, dashboards, Alertmanager, scrape jobs) are read the way the program
reads them; every series they select is looked up in libs.monitoring.catalog, which reads the metric registries of
the stream, the producer, the API and the lag exporter. No metric name is typed in this test.
"""

from __future__ import annotations

import json

import yaml

from infra.monitoring import load_monitoring_assets, scrape_configs
from libs.monitoring.assets import DASHBOARDS_DIR, RULES_FILE
from libs.monitoring.catalog import series_catalog
from libs.monitoring.dashboards import panel_queries
from libs.monitoring.promql import metric_selectors
from libs.monitoring.scrape import load_scrape_jobs

PROMETHEUS_SERIES = {"up"}  # Prometheus' own series for every target


def _deployed_exprs() -> list[tuple[str, str]]:
    assets = load_monitoring_assets(RULES_FILE, DASHBOARDS_DIR)
    rules = [(f"alert {rule['alert']}", rule["expr"]) for group in yaml.safe_load(assets.rule_groups_yaml)["groups"]
             for rule in group["rules"]]
    panels = [(f"{name}: {title}", expr) for name, text in assets.dashboards.items()
              for title, expr in panel_queries(json.loads(text))]
    return rules + panels


def test_every_deployed_rule_and_panel_selects_registered_series():
    catalog = series_catalog()
    exprs = _deployed_exprs()

    assert exprs
    unknown = [(where, name) for where, expr in exprs for name, _labels in metric_selectors(expr)
               if name not in catalog and name not in PROMETHEUS_SERIES]
    assert not unknown, f"series no process registers: {unknown}"


def test_the_deployed_scrape_jobs_are_the_local_ones():
    assets = load_monitoring_assets(RULES_FILE, DASHBOARDS_DIR)
    assert assets.scrape_jobs_yaml is not None

    deployed = {config["job_name"]: config["static_configs"][0]["targets"][0].rsplit(":", 1)[1]
                for config in scrape_configs(assets.scrape_jobs_yaml)}

    assert deployed == {job.job_name: str(job.port) for job in load_scrape_jobs().jobs}


def test_every_process_with_metrics_is_a_scrape_job():
    processes = {family.process for family in series_catalog().values()}
    jobs = {job.job_name.removeprefix("claims-") for job in load_scrape_jobs().jobs}

    assert processes <= jobs
