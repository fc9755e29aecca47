# Every target works from nothing: it builds its own virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The live page's chart library, from the npm registry (web/package-lock.json); see web/vendor.sh
VENDOR := consumers/gateway/static/vendor/lightweight-charts.mjs

.PHONY: run test test-fast lint bench clean kafka-start kafka-stop vendor

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	bash web/vendor.sh
	touch $(STAMP)

$(VENDOR): web/package.json web/package-lock.json
	bash web/vendor.sh

vendor: ## the live page's chart library into consumers/gateway/static/vendor/ (npm ci in web/)
	bash web/vendor.sh

run: $(STAMP) $(VENDOR)  ## the main job on the embedded default: simulator -> engine -> live board
	$(BIN)/tickindex run $(ARGS)

test: $(STAMP) $(VENDOR) lint  ## lint, type-check and the whole test suite (browser tests too)
	bash tests/run.sh

test-fast: $(STAMP)  ## the edit loop: unit tests only (no broker, no promtool, no browser, nothing slow)
	$(BIN)/python -m pytest -q -m "not kafka and not prometheus and not slow and not browser" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/tickindex bench $(ARGS)

kafka-start:
	bash deploy/kafka/kafka.sh start

kafka-stop:
	bash deploy/kafka/kafka.sh stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache web/node_modules consumers/gateway/static/vendor
