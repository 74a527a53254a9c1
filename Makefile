# csflow: two commands from a fresh clone — `make demo` and `make test`.
# Only Python 3.11+ and make are needed; everything else installs into .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "csflow needs Python 3.11 or later; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: install
	$(BIN)/csflow demo

test: lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check csflow flows tests benchmarks

bench: install
	$(BIN)/python benchmarks/ingest.py --accounts 10000

clean:
	rm -rf $(VENV) .csflow outbox demo_data .pytest_cache dbt_project/target dbt_project/logs
