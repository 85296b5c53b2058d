# The two commands of the README:  `make run` opens the app,  `make test` runs the tests.
# Each creates .venv with the current python3 when it is missing and installs the project into it;
# re-running is fast when pyproject.toml has not changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint screenshot clean

run: $(VENV)/.installed-run
	@tools/system_libs.sh gui
	$(PY) main.py

test: $(VENV)/.installed-test
	@tools/system_libs.sh offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	$(PY) tools/warm_caches.py
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) tools/warm_caches.py
	@touch $@ $(VENV)/.installed-run

screenshot: $(VENV)/.installed-run
	@tools/system_libs.sh xvfb
	$(PY) tools/screenshot.py docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info
