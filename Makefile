# One-command local run and test. Everything runs from the project-local virtualenv .venv/.
PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m scripts.stack

.PHONY: install demo up down publish status up-celery down-celery env test lint airflow bench

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-s3.txt requirements-dev.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: install  ## start the local stack, publish a batch and follow the pipeline to the end
	$(STACK) demo

up: install  ## start the local stack in the background (UI on http://127.0.0.1:8080)
	$(STACK) up

down:  ## stop everything `make up` or `make demo` started
	$(STACK) down

publish: install  ## publish another batch at the local data source (KIND=bad|shuffled-labels; DROP=1: into .airflow/drop/)
	$(STACK) publish --kind $(or $(KIND),good) $(if $(DROP),--drop)

status:
	$(STACK) status

up-celery: install  ## the production topology natively: PostgreSQL, Redis, Celery worker, Flower
	$(STACK) up --celery

down-celery:
	$(STACK) down --celery

env: install  ## write .env for docker compose, with fresh random secrets
	$(PY) -m scripts.make_env

lint: install
	$(VENV)/bin/ruff check .

test: lint  ## the whole test suite: dags, unit and integration tiers
	$(PY) -m pytest tests

airflow: install  ## the airflow CLI against the local stack: make airflow ARGS="dags list"
	$(STACK) airflow -- $(ARGS)

bench: install  ## the benchmarks (bench/README in bench/__main__.py); sizes from BENCH_* variables
	$(PY) -m bench $(BENCH)
