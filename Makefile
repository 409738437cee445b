# Two commands on a fresh machine: `make demo` (the main job on the built-in synthetic dataset) and `make test`.
# Both first create .venv and install the project into it; CPU PyTorch is installed before the project so that
# pip does not pull a multi-GB CUDA build (override TORCH for a GPU machine, e.g. TORCH=torch).
VENV  ?= .venv
TORCH ?= torch==2.13.0
PY    := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml mer_data/_jpeg.c
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

.PHONY: setup demo test
setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/mer-data demo --out demo

test: setup
	$(VENV)/bin/python -m pytest -q
