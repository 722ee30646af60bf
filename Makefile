# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint types contracts unit install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/dripcourse demo

lint: install
	$(BIN)/ruff check bot adapters scheduler dripcourse tests benchmarks
	$(BIN)/ruff format --check bot adapters scheduler dripcourse tests benchmarks

types: install
	$(BIN)/mypy bot adapters scheduler dripcourse

contracts: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest -q

test: lint types contracts unit

bench: install
	$(BIN)/python -m benchmarks.scale --learners 100000 --baseline
	$(BIN)/python -m benchmarks.send --seconds 30
	$(BIN)/python -m benchmarks.crash --trials 20
	$(BIN)/python -m benchmarks.fuzz --examples 2000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
