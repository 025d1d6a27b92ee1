# The user's verbs. Every target bootstraps what it needs (venv, packages, jars) idempotently.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
JARS_STAMP := .cache/jars/.resolved
PROMETHEUS_STAMP := .cache/prometheus/.installed
WEB_STAMP := .cache/web/.installed
STACK ?= dev
COUNT ?= 100000
SEED ?= 7

.PHONY: help bootstrap jars run test lint typecheck unit bench kafka-up kafka-down topics deploy-apps serve clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(VENV_STAMP): pyproject.toml requirements.lock
	@test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.lock
	.venv/bin/pip install --quiet --no-deps -e .
	@touch $@

bootstrap: $(VENV_STAMP)  ## create .venv and install pinned packages

$(JARS_STAMP): tools/maven/kafka/pom.xml tools/maven/spark/pom.xml tools/maven/settings.xml scripts/fetch_jars.sh
	bash scripts/fetch_jars.sh
	@touch $@

jars: $(JARS_STAMP)  ## resolve Kafka and Spark connector jars from Maven Central into .cache/jars

.PHONY: prometheus monitor-up monitor-down monitor-status
$(PROMETHEUS_STAMP): scripts/fetch_prometheus.sh
	bash scripts/fetch_prometheus.sh
	@touch $@

prometheus: $(PROMETHEUS_STAMP)  ## Debian's prometheus (promtool) and alertmanager (amtool) into .cache/prometheus

.PHONY: web-assets api-image
$(WEB_STAMP): tools/web/package.json tools/web/package-lock.json scripts/fetch_web_assets.sh
	bash scripts/fetch_web_assets.sh
	@touch $@

web-assets: $(WEB_STAMP)  ## the dashboard's chart libraries (vega, vega-lite, vega-embed) from npm into .cache/web

run: $(VENV_STAMP) $(JARS_STAMP) $(WEB_STAMP)  ## the main job: Kafka -> Spark streaming -> lake, reconciliation, daily batch -> warehouse (FRESH=1: start from empty state)
	$(PY) -m apps.cli.main run --count $(COUNT) --seed $(SEED)$(if $(filter 1 yes true,$(FRESH)), --fresh,)

lint: $(VENV_STAMP)
	.venv/bin/ruff check --output-format concise libs apps infra tests

typecheck: $(VENV_STAMP)
	.venv/bin/mypy libs apps infra

test: $(VENV_STAMP) $(JARS_STAMP) $(PROMETHEUS_STAMP) $(WEB_STAMP) lint typecheck  ## ruff, mypy, then the whole pytest suite (real Kafka and Spark)
	.venv/bin/pytest -q

unit: $(VENV_STAMP)  ## fast tests only (no Kafka, no Spark)
	.venv/bin/pytest -q -m "not kafka and not spark"

bench: $(VENV_STAMP) $(JARS_STAMP)  ## benchmarks with ratios against baselines measured in the same run
	$(PY) -m apps.cli.main bench

kafka-up: $(VENV_STAMP) $(JARS_STAMP)  ## start the local single-node KRaft broker on 127.0.0.1:9092
	$(PY) -m apps.cli.main kafka up

kafka-down: $(VENV_STAMP)  ## stop the local broker
	$(PY) -m apps.cli.main kafka down

topics: $(VENV_STAMP)  ## create or update topics from configs/kafka/topics.json
	$(PY) -m apps.cli.main topics

API_IMAGE ?= claims-api:dev
api-image: $(VENV_STAMP) $(WEB_STAMP)  ## the API's container image (apps/api/Dockerfile; API_IMAGE=registry/claims-api:tag); writes .cache/api-image, builds where a Docker daemon answers
	$(PY) -m apps.cli.main api image-context .cache/api-image
	@if docker info >/dev/null 2>&1; then docker build -t $(API_IMAGE) .cache/api-image; \
	else echo "no docker daemon here: build .cache/api-image elsewhere (docker build -t $(API_IMAGE) .cache/api-image)"; fi

serve: $(VENV_STAMP) $(WEB_STAMP)  ## the REST API on 127.0.0.1:8080 (OpenAPI at /docs; tokens: claims api token --role ROLE)
	$(PY) -m apps.cli.main api --host 127.0.0.1 --port 8080

monitor-up: $(VENV_STAMP) $(PROMETHEUS_STAMP)  ## local Prometheus + Alertmanager + lag exporter on loopback; prints the URL
	$(PY) -m apps.cli.main monitor up

monitor-down: $(VENV_STAMP)  ## stop the local monitoring processes
	$(PY) -m apps.cli.main monitor down

monitor-status: $(VENV_STAMP)  ## the local monitoring processes and their URLs
	$(PY) -m apps.cli.main monitor status

deploy-apps: $(VENV_STAMP) $(JARS_STAMP)  ## ship the apps to the stack STACK=dev|staging|prod (reads pulumi stack output)
	$(PY) -m apps.cli.main deploy --stack $(STACK)

clean:  ## remove all local state (lake, checkpoints, broker, warehouse, keyring, audit log, logs); keeps .venv and .cache
	rm -rf .local
