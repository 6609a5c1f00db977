# One-command local run and test. Everything runs from the project-local virtualenv .venv/.
PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m scripts.stack

.PHONY: help install browser demo up down publish status logs clean up-celery down-celery env test lint screenshots airflow bench schema

install: $(VENV)/.installed  ## create .venv/ and install the pinned requirements (requirements-dev.txt) into it

$(VENV)/.installed: requirements.txt requirements-s3.txt requirements-dev.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The UI tests drive Debian's Chromium (Playwright's own browser download is not reachable from here).
CHROMIUM := /usr/bin/chromium

browser: $(CHROMIUM)  ## check the UI tests' Chromium is there (installs Debian's chromium package when root)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing the chromium package for the UI tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi
	@test -x $@ || { echo "The UI tests need Chromium at $@: install the 'chromium' package (Debian/Ubuntu: apt-get install chromium, as root)."; exit 1; }

demo: install  ## start the local stack, publish a batch and follow the pipeline to the end
	$(STACK) demo

up: install  ## start the local stack in the background (UI on http://127.0.0.1:8080)
	$(STACK) up

down:  ## stop everything `make up` or `make demo` started
	$(STACK) down

publish: install  ## publish another batch at the local data source (KIND=bad|shuffled-labels|drifted-petals; DROP=1: into .airflow/drop/)
	$(STACK) publish --kind $(or $(KIND),good) $(if $(DROP),--drop)

status:  ## which components of the local stack are running
	$(STACK) status

logs: install  ## the components' last log lines, then follow them (CELERY=1: the Celery stack; COMPONENT=scheduler)
	$(STACK) logs $(if $(CELERY),--celery) $(if $(COMPONENT),--component $(COMPONENT))

clean: install  ## remove the stopped stacks' state: first .airflow/ and data/, then .airflow-celery/ and its database
	$(STACK) clean
	$(STACK) clean --celery

up-celery: install  ## the production topology natively: PostgreSQL, Redis, Celery worker, Flower (data in .airflow-celery/data/)
	$(STACK) up --celery

down-celery:  ## stop everything `make up-celery` started
	$(STACK) down --celery

env: install  ## write .env for docker compose, with fresh random secrets (MODEL_SERVER_TOKEN too)
	$(PY) -m scripts.make_env

schema: install  ## infer a dataset schema from a sample for review: make schema CSV=path LABEL=column [TASK=classification|regression] [OUT=path] [NAME=name] [FORCE=1]
	@if [ -z "$(CSV)" ] || [ -z "$(LABEL)" ]; then \
		echo "make schema needs CSV and LABEL: make schema CSV=path/to/sample.csv LABEL=column [TASK=classification|regression] [OUT=path] [NAME=name] [FORCE=1]" >&2; \
		exit 2; \
	fi
	$(PY) -m scripts.infer_schema --csv "$(CSV)" --label "$(LABEL)" $(if $(TASK),--task "$(TASK)") $(if $(OUT),--out "$(OUT)") $(if $(NAME),--name "$(NAME)") $(if $(FORCE),--force)

lint: install  ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint browser  ## lint, then every tier of pytest tests (dags, unit, bench, integration, production, faults): what CI runs
	$(PY) -m pytest tests

screenshots: install browser  ## the UI tests, saving what the browser saw into docs/ui-*.png
	UI_SCREENSHOTS_DIR=$(CURDIR)/docs $(PY) -m pytest tests/integration/test_ui.py

airflow: install  ## the airflow CLI against the local stack: make airflow ARGS="dags list"
	$(STACK) airflow -- $(ARGS)

bench: install  ## the benchmarks (bench/README in bench/__main__.py); sizes from BENCH_* variables
	$(PY) -m bench $(BENCH)

help:  ## list every target with what it does
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
