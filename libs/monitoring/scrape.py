"""The Prometheus configuration of the pipeline, rendered from configs/monitoring/scrape-jobs.yaml.

Why rendered: the job list is data shared with AWS (infra/monitoring.py renders the agent's configuration from the
same file), while hosts, ports and intervals differ per place. Locally every process listens on loopback at the
ports in settings.monitoring; the tests render the same jobs at the free ports their processes took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from libs.monitoring.assets import SCRAPE_JOBS_FILE
from libs.settings import MonitoringSettings


class ScrapeJobsError(ValueError):
    """The scrape-jobs file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job: a name the rules select on, and where its port comes from."""

    job_name: str
    port: int
    port_setting: str | None = None
    metrics_path: str = "/metrics"

    def port_in(self, monitoring: MonitoringSettings) -> int:
        """The port from settings when the job names a setting, otherwise the file's port."""
        return int(getattr(monitoring, self.port_setting)) if self.port_setting else self.port


@dataclass(frozen=True)
class ScrapeJobs:
    """The jobs and the global intervals of the file."""

    jobs: tuple[ScrapeJob, ...]
    scrape_interval: str
    scrape_timeout: str
    evaluation_interval: str

    def job(self, name: str) -> ScrapeJob:
        """The job called `name`."""
        for job in self.jobs:
            if job.job_name == name:
                return job
        msg = f"expected a scrape job {name!r}, found only {', '.join(j.job_name for j in self.jobs)}"
        raise KeyError(msg)


def load_scrape_jobs(path: Path = SCRAPE_JOBS_FILE) -> ScrapeJobs:
    """Parse and check the scrape-jobs file (every port setting must be a field of MonitoringSettings)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list) or not document["jobs"]:
        msg = f"{path}: expected a mapping with a non-empty 'jobs' list"
        raise ScrapeJobsError(msg)
    jobs = []
    for index, entry in enumerate(document["jobs"]):
        where = f"{path}: jobs[{index}]"
        if not isinstance(entry, dict) or not entry.get("job_name") or not isinstance(entry.get("port"), int):
            msg = f"{where}: expected 'job_name' and an integer 'port', found {entry!r}"
            raise ScrapeJobsError(msg)
        setting = entry.get("port_setting")
        if setting is not None and setting not in MonitoringSettings.model_fields:
            msg = f"{where}: port_setting {setting!r} is not a field of settings.monitoring"
            raise ScrapeJobsError(msg)
        jobs.append(ScrapeJob(job_name=str(entry["job_name"]), port=int(entry["port"]), port_setting=setting,
                              metrics_path=str(entry.get("metrics_path", "/metrics"))))
    return ScrapeJobs(jobs=tuple(jobs), scrape_interval=str(document.get("scrape_interval", "15s")),
                      scrape_timeout=str(document.get("scrape_timeout", "10s")),
                      evaluation_interval=str(document.get("evaluation_interval", "15s")))


def prometheus_config(
    jobs: ScrapeJobs,
    ports: Mapping[str, int],
    *,
    host: str = "127.0.0.1",
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    scrape_interval: str | None = None,
    external_labels: Mapping[str, str] | None = None,
    self_address: str | None = None,
) -> dict[str, Any]:
    """A prometheus.yml document: one static job per scrape job at `host:ports[job]`, the rules and Alertmanager.

    `ports` maps job names to ports (jobs missing from it are left out); `self_address` adds Prometheus' own job.
    """
    interval = scrape_interval or jobs.scrape_interval
    timeout = jobs.scrape_timeout if scrape_interval is None else scrape_interval
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "scrape_timeout": timeout,
                   "evaluation_interval": scrape_interval or jobs.evaluation_interval,
                   "external_labels": dict(external_labels or {"environment": "local"})},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job.job_name, "metrics_path": job.metrics_path,
             "static_configs": [{"targets": [f"{host}:{ports[job.job_name]}"]}]}
            for job in jobs.jobs if job.job_name in ports
        ],
    }
    if self_address:
        config["scrape_configs"].append({"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]})
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def write_config(config: Mapping[str, Any], path: Path) -> Path:
    """Write a configuration document as YAML (keys in the order given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path
