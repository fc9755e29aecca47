# Every target works from nothing: it builds its own virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean kafka-start kafka-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the main job on the embedded default: simulator -> engine -> live board
	$(BIN)/tickindex run $(ARGS)

test: $(STAMP) lint  ## lint, type-check and the whole test suite
	bash tests/run.sh

test-fast: $(STAMP)  ## the edit loop: unit tests only (no broker, no promtool, nothing slow)
	$(BIN)/python -m pytest -q -m "not kafka and not prometheus and not slow" $(ARGS)

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
