# kpledger: `make devnet` runs a local 4-participant network; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: devnet test lint typecheck unit clean bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kpledger needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The third-party verifier of credentials (tests/interop/vc), from its committed lock file.
INTEROP := tests/interop/vc/node_modules/.installed
$(INTEROP): tests/interop/vc/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/interop/vc --no-audit --no-fund --silent && touch $(INTEROP); \
	else echo "npm not found: the third-party credential check will be skipped" >&2; fi

devnet: $(STAMP)
	$(BIN)/kpledger devnet --dir devnet

lint: $(STAMP)
	$(BIN)/ruff check ledger node scripts tests
	$(BIN)/ruff format --check ledger node scripts tests
	$(BIN)/mypy ledger node

# The suite runs in TEST_WORKERS processes (pytest-xdist): most of its time is spent waiting on
# real node processes, so two workers on two cores take about two thirds of the time of one.
# TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 2
test: lint $(INTEROP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal --durations=25

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
