# The two commands: `make run` (start on the embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# uv (pinned in requirements-dev.txt) fetches and installs the wheels in parallel: a fresh .venv in 39-60 s
# against pip's 112-262 s on this machine. pip stays the fallback when uv cannot be installed or fails.
$(STAMP): $(PY) requirements.txt requirements-dev.txt
	{ $(PY) -m pip install --quiet "$$(grep -m1 '^uv==' requirements-dev.txt)" \
	  && $(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements-dev.txt; } \
	|| { echo "make: uv could not install the requirements; installing them with pip"; \
	  $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -r requirements-dev.txt; }
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m dev.server

# Two pytest-xdist workers (the browser tests stay on one of them, see tests/conftest.py) and the 20 slowest tests
# listed at the end; `make test TEST_ARGS= ARGS=tests/unit` runs in one process.
TEST_ARGS ?= -n 2 --dist loadgroup --durations=20

test: $(STAMP)
	$(PY) -m tests.run $(TEST_ARGS) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in bench/*.py; do [ "$$(basename $$b)" = "__init__.py" ] || $(PY) -m bench.$$(basename $$b .py) || exit 1; done
