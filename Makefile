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

.PHONY: install lock test report workflow gpu-check clean

# The pinned environment: every package `make install` installs, each at one version with the SHA-256
# of its files, for Linux x86_64 and Python 3.11 (pyproject.toml keeps the ranges; `make lock` remakes
# the pins from them). Two files, so that the torch build can be swapped and the rest kept:
#   requirements-torch.lock  torch, torchaudio and what PyPI's torch wheel (CUDA 13.0, NVIDIA driver
#                            >= 580) pulls in for its CUDA: nvidia-*, cuda-*, triton
#   requirements.lock        everything else, the build backend (setuptools) and pip included
LOCK := requirements.lock
TORCH_LOCK := requirements-torch.lock
# TORCH_INDEX: a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cu126 (CUDA 12.6, driver
# >= 525) for a driver older than 580. The rest comes from requirements.lock with its hashes, then torch
# and torchaudio at the lock's version from that index only (pinned by version, no hashes: their files
# are not PyPI's), with that build's own CUDA packages; requirements-torch.lock is not used.
TORCH_INDEX ?=
TORCH_PINS := $(shell sed -n 's/^\(torch\|torchaudio\)==\([^ ]*\).*/\1==\2/p' $(TORCH_LOCK))
# What either torch side installs: removed before the other side goes in (no CUDA 13 package stays
# beside a CUDA 12 torch, nor the reverse).
TORCH_SIDE := ^(torch|torchaudio|triton|nvidia-[a-z0-9.-]+|cuda-[a-z0-9.-]+)==
# One stamp per torch side: .installed-stamp for the lock's own, .installed-stamp-cu126 for TORCH_INDEX=.../cu126.
STAMP := $(VENV)/.installed-stamp$(if $(TORCH_INDEX),-$(notdir $(patsubst %/,%,$(TORCH_INDEX))))

# Re-installs only when pyproject.toml, a lock or TORCH_INDEX changes: a second `make` is fast.
$(STAMP): pyproject.toml $(LOCK) $(TORCH_LOCK)
	$(PYTHON) -m venv $(VENV)
	@if ls $(VENV)/.installed-stamp* 2>/dev/null | grep -qvxF '$(STAMP)'; then \
		echo "make install: another torch build is installed in $(VENV): removing it first"; \
		$(PY) -m pip list --format=freeze | grep -E '$(TORCH_SIDE)' | cut -d= -f1 | xargs -r $(PY) -m pip uninstall --quiet -y; \
	fi
	rm -f $(VENV)/.installed-stamp*
ifeq ($(TORCH_INDEX),)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK) -r $(TORCH_LOCK)
else
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --index-url $(TORCH_INDEX) $(TORCH_PINS)
endif
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# Remakes both lock files from pyproject.toml (its dependencies and the extras test, bench, cluster)
# and the build backend, with uv (pinned, in its own venv under build/); needs PyPI. Commit the result.
UV_VERSION := 0.13.9
LOCK_VENV := build/lock-venv
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	printf 'setuptools>=77\npip\n' > build/install-tools.in
	$(LOCK_VENV)/bin/uv pip compile --quiet --generate-hashes --no-header --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --extra test --extra bench --extra cluster \
		pyproject.toml build/install-tools.in -o build/requirements.all
	for f in $(LOCK) $(TORCH_LOCK); do \
		printf '# Made by `make lock` (uv %s pip compile --generate-hashes) from pyproject.toml [test,bench,cluster],\n# for Linux x86_64, Python 3.11. Installed by `make install`: do not edit.\n' $(UV_VERSION) > $$f; done
	awk '/^[A-Za-z0-9]/ { torch = ($$0 ~ /$(TORCH_SIDE)/) } { print >> (torch ? "$(TORCH_LOCK)" : "$(LOCK)") }' build/requirements.all

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
# GPUS is counted once (a torch subprocess: the eval makes it a simple variable) and given to both runs.
workflow:
	$(eval GPUS := $(GPUS))$(SNAKEMAKE) $(WORKFLOW_ARGS) --unlock --cores 1 --config profile=$(PROFILE) gpus=$(GPUS) > /dev/null
	$(SNAKEMAKE) $(WORKFLOW_ARGS) --cores $(CORES) --keep-going --rerun-incomplete --show-failed-logs \
		--resources gpu=$(GPUS) --config profile=$(PROFILE) gpus=$(GPUS)

# The prepared GPU check (benchmarks/gpu_check.py, docs/running.md): one markdown report, GPU_CHECK_REPORT.
# DRY=1: every check on the CPU at tiny sizes (or skipped, saying so).
GPU_CHECK_REPORT ?= build/gpu-check.md
gpu-check: install
	$(PY) benchmarks/gpu_check.py $(if $(DRY),--dry) --out $(GPU_CHECK_REPORT)

clean:
	rm -rf _build build .snakemake book/generated
	find results -type f ! -name .gitkeep -delete
