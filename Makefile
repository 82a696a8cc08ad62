# Two commands: `make demo` runs the main job, `make test` runs the test suite. Both create .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: setup.py | $(BIN)/python
	$(PIP) install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/pixelrnn demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) *.egg-info
