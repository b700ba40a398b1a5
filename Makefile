# The two commands a newcomer needs:
#   make test     install into .venv (first time only) and run the test suite
#   make report   install, then run the whole pipeline (PROFILE=demo by default)
#                 and print the path of the HTML report
#
# The settings (make report PROFILE=smoke CORES=4 ...), checked below before anything uses them:
PROFILE ?= demo
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# GPUs the cells may use: CUDA_VISIBLE_DEVICES, else those nvidia-smi -L lists; 0 without.
# Evaluated when the report recipe runs (after install). One cell job per GPU at a time.
GPUS ?= $(shell $(PY) -m fmareport.cli gpus --count 2>/dev/null || echo 0)
PYTHON ?= python3
VENV := .venv
# TORCH_INDEX: a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cu126 (CUDA 12.6, driver
# >= 525) for a driver older than 580. The rest comes from requirements.lock with its hashes, then torch
# and torchaudio at the lock's version from that index only (pinned by version, no hashes: their files
# are not PyPI's), with that build's own CUDA packages; requirements-torch.lock is not used.
TORCH_INDEX ?=
REPORT_LOCK ?= build/report.lock
# Extra Snakemake arguments, before the options (tests use them: a target such as `results`, --directory DIR).
WORKFLOW_ARGS ?=
GPU_CHECK_REPORT ?= build/gpu-check.md

# Every variable of this file a user gives (on the command line or in the environment) is checked here,
# as make reads the file and before anything uses it: a value that is not one is refused naming the
# variable (make exits 2) before any recipe runs, so that no shell ever sees it. The checks are make's
# own functions on the value as given ($(value ...): a '$' in it is refused, never expanded).
, := ,
empty :=
space := $(empty) $(empty)
lower := a b c d e f g h i j k l m n o p q r s t u v w x y z
upper := A B C D E F G H I J K L M N O P Q R S T U V W X Y Z
digits := 0 1 2 3 4 5 6 7 8 9
name_chars := $(lower) $(digits) _ -
# A path's characters, also in a make target (VENV): no space, quote, '$', ';', '&', '|', '*', '?', '<',
# '>', '(', ':', '=', '%', ... A URL's add ':' and '~'; an argument's (WORKFLOW_ARGS) ':', '=' and ','.
path_chars := $(lower) $(upper) $(digits) . _ / + - @
url_chars := $(path_chars) : ~
arg_chars := $(path_chars) : = $(,)
# $(call strip_chars,TEXT,CHARS): TEXT without any of CHARS, a list of single characters.
strip_chars = $(if $(2),$(call strip_chars,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
# $(call spread,TEXT,CHARS): TEXT (of CHARS only) one character a word, to count them.
spread = $(if $(2),$(call spread,$(subst $(firstword $(2)),$(firstword $(2)) ,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
# $(call given,VAR): VAR as given (on the command line, in the environment, or this file's default), unexpanded.
given = $(value $(1))
# $(call refuse,VAR,what it must be): stop, naming VAR and its value.
refuse = $(error $(1)='$(call given,$(1))': $(2))
# $(call from_user,VAR): non-empty when the user gave VAR (the command line or the environment).
from_user = $(filter-out file default undefined,$(origin $(1)))
# $(call whole,TEXT): non-empty when TEXT is a whole number written without leading zeros (0, 1, 12, ...).
whole = $(and $(1),$(if $(call strip_chars,$(1),$(digits)),,1),$(or $(filter 0,$(1)),$(if $(filter 0%,$(1)),,1)))
# $(call one_of,TEXT,CHARS): non-empty when TEXT is one word of CHARS, not starting with '-'.
one_of = $(and $(1),$(if $(call strip_chars,$(1),$(2)),,1),$(if $(filter -%,$(1)),,1))

profiles := $(sort $(basename $(notdir $(wildcard params/profiles/*.yaml))))
ifneq ($(call strip_chars,$(call given,PROFILE),$(name_chars))$(filter _% -%,$(call given,PROFILE)),)
  $(call refuse,PROFILE,not a profile name (lower-case letters$(,) digits$(,) '_' and '-'$(,) starting with a letter or digit); profiles: $(profiles))
else ifeq ($(call given,PROFILE),)
  $(call refuse,PROFILE,empty; profiles: $(profiles))
else ifneq ($(word 65,$(call spread,$(call given,PROFILE),$(name_chars))),)
  $(call refuse,PROFILE,a profile name has at most 64 characters; profiles: $(profiles))
else ifeq ($(wildcard params/profiles/$(PROFILE).yaml),)
  $(call refuse,PROFILE,no such profile (no params/profiles/$(PROFILE).yaml); profiles: $(profiles))
endif
ifneq ($(call from_user,CORES),)
  ifeq ($(and $(call whole,$(call given,CORES)),$(filter-out 0,$(call given,CORES))),)
    $(call refuse,CORES,must be a whole number of CPU cores$(,) 1 or more (e.g. CORES=2))
  endif
endif
ifneq ($(call from_user,GPUS),)
  ifeq ($(call whole,$(call given,GPUS)),)
    $(call refuse,GPUS,must be a whole number of GPUs$(,) 0 or more (GPUS=0: every cell on the CPU))
  endif
endif
ifneq ($(call given,TORCH_INDEX),)
  ifeq ($(and $(filter http://% https://%,$(call given,TORCH_INDEX)),$(call one_of,$(call given,TORCH_INDEX),$(url_chars))),)
    $(call refuse,TORCH_INDEX,must be an http:// or https:// URL of letters$(,) digits and . _ / + - @ : ~ (e.g. https://download.pytorch.org/whl/cu126))
  endif
endif
ifneq ($(filter-out 0 1,$(call given,DRY))$(word 2,$(call given,DRY)),)
  $(call refuse,DRY,must be 1 (every check on the CPU at tiny sizes)$(,) or 0 or empty (the real check))
endif
$(foreach v,PYTHON VENV REPORT_LOCK GPU_CHECK_REPORT,$(if $(call one_of,$(call given,$(v)),$(path_chars)),,\
  $(call refuse,$(v),must be a path of letters$(,) digits and . _ / + - @ (no space$(,) quote or other character a shell reads)$(,) not starting with '-')))
ifneq ($(subst $(space),,$(call strip_chars,$(call given,WORKFLOW_ARGS),$(arg_chars))),)
  $(call refuse,WORKFLOW_ARGS,must be words of letters$(,) digits and . _ / + - @ : = $(,) separated by spaces (no quote or other character a shell reads))
endif
# The others are this file's own, not settings: refused when given on the command line.
$(foreach v,PY LOCK TORCH_LOCK TORCH_PINS TORCH_SIDE STAMP UV_VERSION LOCK_VENV SNAKEMAKE,\
  $(if $(filter command line,$(origin $(v))),$(error $(v) is this Makefile's own variable$(,) not a setting: \
  the settings are PROFILE$(,) CORES$(,) GPUS$(,) PYTHON$(,) VENV$(,) TORCH_INDEX$(,) REPORT_LOCK$(,) \
  WORKFLOW_ARGS$(,) DRY and GPU_CHECK_REPORT)))

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
TORCH_PINS := $(shell sed -n 's/^\(torch\|torchaudio\)==\([^ ]*\).*/\1==\2/p' $(TORCH_LOCK))
# What either torch side installs: removed before the other side goes in (no CUDA 13 package stays
# beside a CUDA 12 torch, nor the reverse).
TORCH_SIDE := ^(torch|torchaudio|triton|nvidia-[a-z0-9.-]+|cuda-[a-z0-9.-]+)==
# One stamp per torch side: .installed-stamp for the lock's own, .installed-stamp-cu126 for TORCH_INDEX=.../cu126.
STAMP := $(VENV)/.installed-stamp$(if $(TORCH_INDEX),-$(subst :,_,$(notdir $(patsubst %/,%,$(TORCH_INDEX)))))

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

# One `make report` at a time per checkout: REPORT_LOCK, held for the run by `fmareport locked`
# (fmareport.workflow.run_locked) and released by the kernel however the run ends (kill -9 too); a second
# one is refused at once. The jobs do not inherit the lock (a kernel a kill leaves behind for a moment
# holds none). A SIGTERM to make alone, which GNU make passes on to this recipe's process only (exec: the
# lock's holder), reaches every process of the run (Snakemake's own SIGTERM waits for its running jobs):
# none is left running detached. `make -n report` shows the workflow's commands without it (nothing runs).
SNAKEMAKE := $(VENV)/bin/snakemake
dry_run = $(findstring n,$(firstword -$(MAKEFLAGS)))

report: install
	@$(if $(dry_run),,exec $(PY) -m fmareport.cli locked --busy "make report: another make report is running \
		here ($(REPORT_LOCK) is held): wait for it to finish" $(REPORT_LOCK) --) $(MAKE) --no-print-directory workflow
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

# The prepared GPU check (benchmarks/gpu_check.py, docs/running.md): one markdown report, GPU_CHECK_REPORT
# (default build/gpu-check.md). DRY=1: every check on the CPU at tiny sizes (or skipped, saying so).
gpu-check: install
	$(PY) benchmarks/gpu_check.py $(if $(filter 1,$(DRY)),--dry) --out $(GPU_CHECK_REPORT)

clean:
	rm -rf _build build .snakemake book/generated
	find results -type f ! -name .gitkeep -delete
