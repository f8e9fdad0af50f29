# One command per chore. Every target creates the virtualenv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# The web console (console/, Node.js 20 + npm) builds into the package; make rebuilds it when
# its sources, its lockfile or the API (whose schema its client is generated from) change.
CONSOLE_DIST := src/clarion/console_dist/index.html
CONSOLE_DEPS := console/node_modules/.package-lock.json
CONSOLE_SOURCES := $(shell find console/src console/public -type f -not -name 'schema.*' 2>/dev/null) \
	console/index.html console/package.json console/vite.config.ts console/tsconfig.json \
	console/scripts/schema.mjs scripts/dump_openapi.py
API_SOURCES := $(shell find src/clarion -name '*.py' -not -path '*/console_dist/*' 2>/dev/null)
PORT ?= 8000
HOST ?= 127.0.0.1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test lint console test-console bench bench-import bench-estimate bench-dispatch bench-providers bench-receipts bench-journey bench-events bench-console bench-scale bench-latency bench-metrics bench-retention bench-compliance clean

$(BIN)/clarion: pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found; set PY=python3"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

$(CONSOLE_DEPS): console/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20 with npm"; exit 1; }
	cd console && npm ci --no-audit --no-fund
	@touch $@

$(CONSOLE_DIST): $(BIN)/clarion $(CONSOLE_DEPS) $(CONSOLE_SOURCES) $(API_SOURCES)
	cd console && npm run build

console: $(CONSOLE_DIST)

run: $(BIN)/clarion $(CONSOLE_DIST)
	$(BIN)/clarion serve --host $(HOST) --port $(PORT)

test: $(BIN)/clarion test-console
	$(BIN)/pytest $(PYTEST_ARGS)

# Unit tests, then the browser tests against a real `clarion serve` (the system's Chromium;
# without one they are skipped, saying so: console/playwright.config.ts).
test-console: $(CONSOLE_DIST)
	cd console && npm test
	cd console && npm run e2e

lint: $(BIN)/clarion $(CONSOLE_DEPS)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd console && npm run lint

bench: bench-import bench-estimate bench-dispatch bench-providers bench-receipts bench-journey bench-events bench-console bench-scale bench-latency bench-metrics bench-retention bench-compliance

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

bench-console: $(BIN)/clarion $(CONSOLE_DIST)
	$(BIN)/python bench/console.py

bench-journey: $(BIN)/clarion
	$(BIN)/python bench/journey.py

bench-events: $(BIN)/clarion
	$(BIN)/python bench/events.py

bench-scale: $(BIN)/clarion
	$(BIN)/python bench/scale.py

bench-latency: $(BIN)/clarion
	$(BIN)/python bench/latency.py

bench-metrics: $(BIN)/clarion
	$(BIN)/python bench/metrics.py

bench-retention: $(BIN)/clarion
	$(BIN)/python bench/retention.py
bench-compliance: $(BIN)/clarion
	$(BIN)/python bench/compliance.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -rf console/node_modules console/test-results src/clarion/console_dist
