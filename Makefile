# smsbot: `make run` serves the bot on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_PROCESSES ?= auto

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: export SMSBOT_ENV ?= development
run: $(STAMP)
	$(BIN)/smsbot db upgrade
	$(BIN)/smsbot demo
	$(BIN)/smsbot run

test: $(STAMP)
	$(BIN)/pytest -n $(TEST_PROCESSES)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/webhook_cpu.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/governor.py
	$(BIN)/python bench/worker_fork.py

clean:
	rm -rf $(VENV) instance .pytest_cache
