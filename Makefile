# Two commands: `make run` serves the example services, `make test` runs the tox matrix.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CATALOG_PORT ?= 8001
ORDERS_PORT ?= 8002
MANAGE := cd example_service && ../$(BIN)/python manage.py

# Python 3.10-3.13 may be installed through pyenv without being on PATH.
PYENV_EXPOSE := if command -v pyenv >/dev/null; then export PYENV_VERSION="$$(pyenv global | head -1):$$(pyenv versions --bare | grep -E '^3\.1[0-3]\.' | paste -sd: -)"; fi

.PHONY: help venv run test quicktest lint format docs bench clean

help:
	@echo "make run        serve catalog (:$(CATALOG_PORT)) and orders (:$(ORDERS_PORT)) on 127.0.0.1, each with its events worker and relay"
	@echo "make test       run the whole tox matrix (Django 5.2/6.0/6.1, lint, integration, e2e, docs)"
	@echo "make quicktest  run the test suite once on the current Python"
	@echo "make lint       ruff and mypy"
	@echo "make docs       build the docs strictly into site/"
	@echo "make bench      run the benchmarks (a few minutes) into benchmarks/RESULTS.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Running the examples needs the package and the "run" extra only; testing,
# linting and the docs need the "dev" extra: each has its own stamp.
$(VENV)/.run: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[run]'
	touch $@

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

CATALOG := http://127.0.0.1:$(CATALOG_PORT)/api/products/
ORDERS := http://127.0.0.1:$(ORDERS_PORT)/api/orders/
# Wait until every URL given answers (any HTTP status), then print them once.
define WAIT_FOR_URLS
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 60
for url in sys.argv[1:]:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
        except urllib.error.HTTPError:
            pass  # an answer all the same
        except OSError:
            time.sleep(0.2)
            continue
        break
if time.monotonic() >= deadline:
    sys.exit("the example services did not answer within 60 s")
print("catalog:", sys.argv[1], " orders:", sys.argv[2], flush=True)
endef
export WAIT_FOR_URLS

# Each service runs beside its server an events worker that also relays what
# its outbox holds (`microkit_consume --relay`); both talk through kombu's
# filesystem transport in example_service/events-broker/ (no broker server),
# or the RabbitMQ of EVENTS_BROKER_URL when it is set.
run: $(VENV)/.run
	$(MANAGE) migrate --noinput -v0 --settings=catalog.settings
	$(MANAGE) migrate --noinput -v0 --settings=orders.settings
	@trap 'kill 0' EXIT INT TERM; \
	  ( $(MANAGE) runserver 127.0.0.1:$(CATALOG_PORT) --settings=catalog.settings ) & \
	  ( $(MANAGE) microkit_consume --relay --settings=catalog.settings ) & \
	  ( export CATALOG_URL=http://127.0.0.1:$(CATALOG_PORT); \
	    $(MANAGE) runserver 127.0.0.1:$(ORDERS_PORT) --settings=orders.settings ) & \
	  ( $(MANAGE) microkit_consume --relay --settings=orders.settings ) & \
	  $(BIN)/python -c "$$WAIT_FOR_URLS" $(CATALOG) $(ORDERS); \
	  wait

test: venv
	@$(PYENV_EXPOSE); $(BIN)/tox run

quicktest: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: venv
	$(BIN)/mkdocs build --strict

# Benchmarks are not part of `make test` nor of CI: they take minutes and their
# figures depend on the machine. Each script rewrites its own section of
# benchmarks/RESULTS.md. HTTP needs wrk (apt install wrk).
$(VENV)/.bench: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/access_log.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/tracing.py
	$(BIN)/python benchmarks/probes.py
	$(BIN)/python benchmarks/client.py
	$(BIN)/python benchmarks/events.py
	$(BIN)/python benchmarks/http.py

clean:
	rm -rf $(VENV) .tox site dist build .coverage .coverage.* example_service/*.sqlite3 example_service/events-broker
