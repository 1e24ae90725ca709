# The index of what a developer can do. Everything runs inside .venv, made on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SANDBOX_PORT ?= 8765
PORT ?= 8000

.PHONY: run serve test lint format screenshots bench loadtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $(STAMP)

# The demo key is the sandbox's own, not a secret: it opens only the demo data.
DEMO_API_KEY := sk-workspace_demo00000000000000000000000000000000000000000000000

run: $(STAMP)  ## Start the stand-in API and the site, with a demo login
	DEBUG=true \
	POLLYBOT_BASE_URL=http://127.0.0.1:$(SANDBOX_PORT) POLLYBOT_API_KEY=$(DEMO_API_KEY) \
	$(PY) manage.py demo --port $(PORT)

serve: $(STAMP)  ## The production stack locally: gunicorn, WhiteNoise, DEBUG off, the sandbox API
	$(PY) scripts/serve.py

test: $(STAMP)  ## Run the whole test suite
	$(PY) -m pytest

lint: $(STAMP)  ## ruff (check and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# mypy's Django plugin imports the settings, which need a SECRET_KEY with DEBUG off.
	DEBUG=true $(VENV)/bin/mypy .

screenshots: $(STAMP)  ## Pictures of the seed lead's page for the README (needs Debian's chromium)
	$(PY) scripts/screenshots.py

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## The benchmark: writes and prints bench/results.md (installs wrk when missing)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m bench

loadtest: $(STAMP)  ## 50 users for 60 s on the production stack, cache warm: 0 errors, p95 < 300 ms
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m bench.loadtest

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache db.sqlite3
