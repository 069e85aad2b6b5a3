# Every target creates .venv when missing and installs the project into it.
# torch==2.13.0 is installed first: it resolves to the local CPU wheel, and the
# project's torch range is satisfied by it (any other request pulls CUDA builds).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export SB3_LOGDIR := $(or $(TMPDIR),/tmp)/campaign-opt-sb3

.PHONY: install run serve test bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,peers]'
	touch $(STAMP)

# The main job: train the default policy if none is saved, serve the API on 127.0.0.1, run the
# retail campaign over HTTP to its stop, print the report, stop the server.
run: $(STAMP)
	$(VENV)/bin/campaign-opt demo

# The API (docs at http://127.0.0.1:8000/docs) with its live runner, until Ctrl-C.
serve: $(STAMP)
	$(VENV)/bin/campaign-opt serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
