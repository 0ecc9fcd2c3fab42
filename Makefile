# One way to set up, check and run Podium: the README, .ci/run and developers all use these.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo check lint format typecheck test test-unit test-integration test-browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ml]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install Podium with its dev tools (and chromium for browser tests)
	@scripts/ensure-chromium.sh

demo: setup ## the main job: a hub on SQLite, the census pod registered, access decided
	$(BIN)/podium demo

check: lint typecheck test ## everything CI runs: lint, type check, all tests

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when no test ran; make treats that as a failure, as it should.
test: setup
	$(BIN)/pytest --cov=podium --cov-report=term:skip-covered --cov-fail-under=85

test-unit: setup
	$(BIN)/pytest -m "not integration and not browser"

test-integration: setup
	$(BIN)/pytest -m integration

test-browser: setup
	$(BIN)/pytest -m browser

bench: setup ## every benchmark in quick mode
	$(BIN)/python -m bench data --quick
	$(BIN)/python -m bench heartbeats --quick
	$(BIN)/python -m bench relay --quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist src/*.egg-info
