# The two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup system-deps demo test test-postgresql lint bench clean

setup: system-deps $(VENV)/.installed

system-deps:
	@scripts/system-deps $(if $(findstring test,$(MAKECMDGOALS)),--test,)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/classroom-agent demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check-architecture

test: lint
	scripts/whip-web-client
	scripts/loopback-ns $(BIN)/pytest
	$(MAKE) --no-print-directory test-postgresql

# The centre's tests again, on PostgreSQL (a scratch database per test; its Unix socket also
# answers inside the loopback-only namespace).  The city-scale tests run in both passes.
PG_TEST_DB ?= postgresql://postgres@/postgres?host=/var/run/postgresql
test-postgresql: setup
	scripts/postgres-up
	CLASSROOM_TEST_DB='$(PG_TEST_DB)' scripts/loopback-ns $(BIN)/pytest tests/central

bench: setup
	$(BIN)/python bench/serial_roundtrip.py
	$(BIN)/python bench/agent_footprint.py
	$(BIN)/python bench/central_ingest.py
	$(BIN)/python bench/hostile_ingest.py
	$(BIN)/python bench/compose_record.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/broadcast.py
	$(BIN)/python bench/onvif_ptz.py
	$(BIN)/python bench/delivery.py
	scripts/loopback-ns $(BIN)/python bench/lesson_latency.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
