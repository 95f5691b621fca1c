# Two commands on a fresh machine:  make reproduce  (the figures, quick profile)  and  make test.
# Both create .venv from requirements/lock.txt the first time; make lab opens the notebooks in JupyterLab.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.atomtools-installed

.PHONY: all install test lint reproduce paper lab lock benchmark clean

all: test

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## make test: ruff, unit tests and doctests, every notebook at the smoke profile with papermill, then nbval
test: $(STAMP) lint
	$(PY) -m pytest
	rm -rf results/smoke  # throwaway: a smoke run from older code must not be resumed
	ATOMTOOLS_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks/ -p no:cacheprovider -q

## make lint: ruff (configured in pyproject.toml), checks and formatting
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## make reproduce: every notebook at the quick profile; results/quick/{summary.md,metrics.json,figures/}
reproduce: $(STAMP)
	$(PY) -m atomtools reproduce --profile quick

## make paper: the source works' scale (a GPU or a cluster)
paper: $(STAMP)
	$(PY) -m atomtools reproduce --profile paper

## make lab: JupyterLab (pinned in the lock) on the notebooks
lab: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e ".[test,lab]"
	$(VENV)/bin/jupyter lab notebooks/

benchmark: $(STAMP)
	$(PY) benchmarks/simulate.py
	$(PY) benchmarks/infer.py
	$(PY) benchmarks/tomo.py
	$(PY) benchmarks/series.py
	$(PY) benchmarks/localize.py

## make lock: re-pin requirements/lock.txt from a fresh venv built from pyproject.toml
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e ".[test,lab]"
	{ sed -n '1,4p' requirements/lock.txt; .lockenv/bin/pip freeze --exclude-editable | grep -iv '^atomtools' | sed 's/+cpu$$//'; } > requirements/lock.txt.partial
	mv requirements/lock.txt.partial requirements/lock.txt
	rm -rf .lockenv

clean:
	rm -rf results .pytest_cache
