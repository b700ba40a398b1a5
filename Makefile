# The two commands a newcomer needs:
#   make test     install into .venv (first time only) and run the test suite
#   make report   install, then run the whole pipeline (PROFILE=demo by default)
#                 and print the path of the HTML report
PROFILE ?= demo
CORES ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test report clean

# Re-installs only when pyproject.toml changes: a second `make` is fast.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

# Lint and format check first (ruff, configured in pyproject.toml), then the suite.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

# --keep-going: a failing cell does not stop the others; a rerun does only what is missing.
report: install
	$(VENV)/bin/snakemake --cores $(CORES) --keep-going --show-failed-logs --config profile=$(PROFILE)
	@echo "HTML report: $(CURDIR)/_build/html/index.html"
	@echo "Results page: $(CURDIR)/_build/html/generated/results.html"

clean:
	rm -rf _build build .snakemake book/generated
	find results -type f ! -name .gitkeep -delete
