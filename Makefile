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

# Three pytest-xdist workers on the two cores (the browser tests stay on one of them, see tests/conftest.py): the
# third fills the time the others wait on Chromium, PostgreSQL and the runtime's processes (fresh-clone .ci/run:
# 295 s of tests with three, 312-316 s with two). The 20 slowest tests are listed at the end;
# `make test TEST_ARGS= ARGS=tests/unit` runs in one process.
TEST_ARGS ?= -n 3 --dist loadgroup --durations=20

test: $(STAMP)
	$(PY) -m tests.run $(TEST_ARGS) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	for b in bench/*.py; do [ "$$(basename $$b)" = "__init__.py" ] || $(PY) -m bench.$$(basename $$b .py) || exit 1; done
