# One command per chore. Every target creates the virtualenv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench bench-import bench-estimate bench-dispatch bench-providers bench-receipts bench-journey bench-scale bench-latency clean

$(BIN)/clarion: pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found; set PY=python3"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: $(BIN)/clarion
	$(BIN)/clarion serve

test: $(BIN)/clarion
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/clarion
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: bench-import bench-estimate bench-dispatch bench-providers bench-receipts bench-journey bench-scale bench-latency

bench-import: $(BIN)/clarion
	$(BIN)/python bench/import.py

bench-estimate: $(BIN)/clarion
	$(BIN)/python bench/estimate.py

bench-dispatch: $(BIN)/clarion
	$(BIN)/python bench/dispatch.py

bench-providers: $(BIN)/clarion
	$(BIN)/python bench/providers.py

bench-receipts: $(BIN)/clarion
	$(BIN)/python bench/receipts.py

bench-journey: $(BIN)/clarion
	$(BIN)/python bench/journey.py

bench-scale: $(BIN)/clarion
	$(BIN)/python bench/scale.py

bench-latency: $(BIN)/clarion
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
