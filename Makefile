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

.PHONY: install test report workflow clean

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

# One `make report` at a time per checkout: build/report.lock, held by flock(1) for the run and
# released by the kernel however the run ends (kill -9 too). A second one is refused at once.
# --close: the jobs do not inherit the lock (a kernel a kill leaves behind for a moment holds none).
REPORT_LOCK ?= build/report.lock
# Extra Snakemake arguments, before the options (tests use them: a target such as `results`, --directory DIR).
WORKFLOW_ARGS ?=
SNAKEMAKE := $(VENV)/bin/snakemake

report: install
	@mkdir -p $(dir $(REPORT_LOCK)) && flock --nonblock --close --conflict-exit-code 75 $(REPORT_LOCK) $(MAKE) --no-print-directory workflow || { \
		status=$$?; [ $$status -ne 75 ] || echo "make report: another make report is running here ($(REPORT_LOCK) is held): wait for it to finish" >&2; \
		exit $$status; }
	@echo "HTML report: $(CURDIR)/_build/html/index.html"
	@echo "Results page: $(CURDIR)/_build/html/generated/results.html"

# Under the report lock no other make report runs here, so a Snakemake lock left by a killed run
# is stale: release it. --rerun-incomplete runs again the jobs a kill left half done.
# --keep-going: a failing cell does not stop the others; a rerun does only what is missing.
workflow:
	$(SNAKEMAKE) $(WORKFLOW_ARGS) --unlock --cores 1 --config profile=$(PROFILE) > /dev/null
	$(SNAKEMAKE) $(WORKFLOW_ARGS) --cores $(CORES) --keep-going --rerun-incomplete --show-failed-logs \
		--resources gpu=$(GPUS) --config profile=$(PROFILE) gpus=$(GPUS)

clean:
	rm -rf _build build .snakemake book/generated
	find results -type f ! -name .gitkeep -delete
