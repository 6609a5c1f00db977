# One-command local run and test. Everything runs from the project-local virtualenv .venv/.
PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m scripts.stack

.PHONY: help install install-run browser demo up down publish status logs clean up-celery down-celery env test lint screenshots airflow bench schema

install: $(VENV)/.installed-dev  ## create .venv/ and install everything: what running needs and the development tools

install-run: $(VENV)/.installed-run  ## create .venv/ and install only what running needs (requirements.txt)

# uv installs the same pins several times faster than pip. It is used from PATH when there, else bootstrapped
# into the venv from requirements-uv.txt; where it is missing or fails, pip installs. One stamp per requirement
# set: `make demo` installs the runtime set once, `make test` adds the development set once.
# The venv starts without pip (ensurepip alone was 3 s of a 7 s `make demo` install): the bootstrap
# interpreter's pip puts uv into it (`pip --python`); pip is added to the venv only where that fails.
$(VENV)/bin/python:
	$(PYTHON_BOOTSTRAP) -m venv --without-pip $(VENV)

VENV_PIP = { $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade >/dev/null; }

$(VENV)/.installed-uv: requirements-uv.txt | $(VENV)/bin/python
	@command -v uv >/dev/null || $(PYTHON_BOOTSTRAP) -m pip --python $(PY) install --quiet -r requirements-uv.txt \
		|| { $(VENV_PIP) && $(PY) -m pip install --quiet -r requirements-uv.txt; } \
		|| echo "uv could not be installed: installing with pip"
	touch $@

INSTALL = uv=$$(command -v uv || echo $(VENV)/bin/uv); \
	if [ -x "$$uv" ] && "$$uv" pip install --python $(PY) --quiet $(1); then :; \
	else $(VENV_PIP) && $(PY) -m pip install --quiet $(1); fi

$(VENV)/.installed-run: requirements.txt $(VENV)/.installed-uv
	$(call INSTALL,-r requirements.txt)
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-s3.txt requirements-dev.txt $(VENV)/.installed-run
	$(call INSTALL,-r requirements-dev.txt)
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

demo: install-run  ## start the local stack, publish a batch and follow the pipeline to the end
	$(STACK) demo

up: install-run  ## start the local stack in the background (UI on http://127.0.0.1:8080)
	$(STACK) up

down:  ## stop everything `make up` or `make demo` started
	$(STACK) down

publish: install-run  ## publish another batch at the local data source (KIND=bad|shuffled-labels|drifted-petals; DROP=1: into .airflow/drop/)
	$(STACK) publish --kind $(or $(KIND),good) $(if $(DROP),--drop)

status:  ## which components of the local stack are running
	$(STACK) status

logs: install-run  ## the components' last log lines, then follow them (CELERY=1: the Celery stack; COMPONENT=scheduler)
	$(STACK) logs $(if $(CELERY),--celery) $(if $(COMPONENT),--component $(COMPONENT))

clean: install-run  ## remove the stopped stacks' state: first .airflow/ and data/, then .airflow-celery/ and its database
	$(STACK) clean
	$(STACK) clean --celery

up-celery: install-run  ## the production topology natively: PostgreSQL, Redis, Celery worker, Flower (data in .airflow-celery/data/)
	$(STACK) up --celery

down-celery:  ## stop everything `make up-celery` started
	$(STACK) down --celery

env: install-run  ## write .env for docker compose, with fresh random secrets (MODEL_SERVER_TOKEN too)
	$(PY) -m scripts.make_env

schema: install-run  ## infer a dataset schema from a sample for review: make schema CSV=path LABEL=column [TASK=classification|regression] [OUT=path] [NAME=name] [FORCE=1]
	@if [ -z "$(CSV)" ] || [ -z "$(LABEL)" ]; then \
		echo "make schema needs CSV and LABEL: make schema CSV=path/to/sample.csv LABEL=column [TASK=classification|regression] [OUT=path] [NAME=name] [FORCE=1]" >&2; \
		exit 2; \
	fi
	$(PY) -m scripts.infer_schema --csv "$(CSV)" --label "$(LABEL)" $(if $(TASK),--task "$(TASK)") $(if $(OUT),--out "$(OUT)") $(if $(NAME),--name "$(NAME)") $(if $(FORCE),--force)

lint: install  ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint browser  ## lint, then every tier of pytest tests (dags, unit, bench, integration, own_data, watcher, production, faults): what CI runs
	$(PY) -m pytest tests

screenshots: install browser  ## the UI tests, saving what the browser saw into docs/ui-*.png
	UI_SCREENSHOTS_DIR=$(CURDIR)/docs $(PY) -m pytest tests/integration/test_ui.py

airflow: install-run  ## the airflow CLI against the local stack: make airflow ARGS="dags list"
	$(STACK) airflow -- $(ARGS)

bench: install  ## the benchmarks (bench/README in bench/__main__.py); sizes from BENCH_* variables
	$(PY) -m bench $(BENCH)

help:  ## list every target with what it does
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
