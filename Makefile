# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: run test lint install clean bench

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) passes init-db
	$(FLASK) passes dev-certs --if-missing
	$(FLASK) passes demo
	$(FLASK) passes serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy passes/

test: lint
	$(BIN)/pytest

# The benchmarks (not tests: they print figures, they assert no timings). aioapns, the baseline
# of bench/push.py, is a bench-only dependency. till, webservice and google_sync start a
# throw-away PostgreSQL cluster (its server binaries must be installed, as for `make test`).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/pkpass.py
	$(BIN)/python bench/till.py
	$(BIN)/python bench/webservice.py
	$(BIN)/python bench/push.py
	$(BIN)/python bench/google_sync.py
	$(BIN)/python bench/campaign.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
