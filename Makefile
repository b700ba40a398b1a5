# The two commands a newcomer needs:
#   make test     install into .venv (first time only) and run the test suite
#   make report   install, then run the whole pipeline (PROFILE=demo by default)
#                 and print the path of the HTML report
PROFILE ?= demo
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# GPUs the cells may use: CUDA_VISIBLE_DEVICES, else those nvidia-smi -L lists; 0 without.
# Evaluated when the report recipe runs (after install). One cell job per GPU at a time.
GPUS ?= $(shell $(PY) -m fmareport.cli gpus --count 2>/dev/null || echo 0)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test report clean

# Re-installs only when pyproject.toml changes: a second `make` is fast.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,cluster]'
	touch $(STAMP)

install: $(STAMP)

# Lint and format check first (ruff, configured in pyproject.toml), then the suite.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

# --keep-going: a failing cell does not stop the others; a rerun does only what is missing.
report: install
	$(VENV)/bin/snakemake --cores $(CORES) --keep-going --show-failed-logs --resources gpu=$(GPUS) \
		--config profile=$(PROFILE) gpus=$(GPUS)
	@echo "HTML report: $(CURDIR)/_build/html/index.html"
	@echo "Results page: $(CURDIR)/_build/html/generated/results.html"

clean:
	rm -rf _build build .snakemake book/generated
	find results -type f ! -name .gitkeep -delete
