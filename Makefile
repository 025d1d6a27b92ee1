# The user's verbs. Every target bootstraps what it needs (venv, packages, jars) idempotently.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
JARS_STAMP := .cache/jars/.resolved
STACK ?= dev
COUNT ?= 100000
SEED ?= 7

.PHONY: help bootstrap jars run test lint typecheck unit bench kafka-up kafka-down topics deploy-apps clean

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

run: $(VENV_STAMP) $(JARS_STAMP)  ## the main job: Kafka -> Spark streaming -> lake, then a reconciliation
	$(PY) -m apps.cli.main run --count $(COUNT) --seed $(SEED)

lint: $(VENV_STAMP)
	.venv/bin/ruff check --output-format concise libs apps infra tests

typecheck: $(VENV_STAMP)
	.venv/bin/mypy libs apps infra

test: $(VENV_STAMP) $(JARS_STAMP) lint typecheck  ## ruff, mypy, then the whole pytest suite (real Kafka and Spark)
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

deploy-apps: $(VENV_STAMP)  ## ship the apps to the stack STACK=dev|staging|prod (reads pulumi stack output)
	$(PY) -m apps.cli.main deploy --stack $(STACK)

clean:  ## remove local data (lake, checkpoints, broker logs); keeps .venv and jars
	rm -rf .local
