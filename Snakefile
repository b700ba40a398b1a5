"""The fmareport workflow: data -> clip store -> one papermill run per table cell -> book.

    snakemake --cores 2                              # the demo profile: data, every cell, the book
    snakemake --cores 2 --config profile=smoke       # the same pipeline at another scale
    snakemake --cores 2 results                      # every cell's results, no book
    snakemake --cores 2 results/demo/table1/raw_whole.json   # one cell

Jobs (docs/running.md has the details and the measured times):

  synth | fetch   the FMA-format data set of the profile (data_source: synth | fma)
  prepare         decode it once into the clip store; every cell waits for it
  cell            the README's command: papermill book/experiment.ipynb
                  results/<profile>/<cell>.ipynb -p profile <profile> -p cell <cell>,
                  which writes results/<profile>/<cell>.json beside the executed notebook,
                  and the first seed's weights, results/<profile>/<cell>.weights.pt, and
                  every seed's test-set embeddings, results/<profile>/<cell>.embeddings.npz
  baseline        fmareport baseline: the baselines of the profile (fmareport.baseline),
                  results/<profile>/baselines/<name>.json
  book            fmareport book --complete: the HTML report of the profile's results, refused
                  unless every cell has a current run

The profile, its cells, the GPUs a cell job takes and the stamps below come from
fmareport.workflow (`start`, at every start of the workflow).

The cells are the YAML files under params/table1/, params/table2/ and params/ablations/
(Table 3 reuses the segmented cells' runs). A cell job's inputs are the notebook, the
profile, the cell YAML and its settings stamp (build/<profile>/settings/<cell>.yaml, the
resolved config), so editing one cell's file re-runs that cell only; editing the profile
re-runs them all; a result written with other settings is run again. Every cell's result is
a target: a deleted or failed one runs again even when the book is still there. Paths are
relative to the working directory (the repo root, or --directory, whose params/ then holds
the profiles and cells).

Config (--config KEY=VALUE):
  profile       params/profiles/<profile>.yaml (default: demo)
  cell_threads  CPU threads per cell job (default: 1; on 2 cores two cells at a time is
                faster than one cell on two threads, see docs/running.md)
  gpus          GPUs of this machine (default: counted, `fmareport gpus --count`: 0 when
                torch, asked in a subprocess, sees no usable CUDA device; else the entries of
                CUDA_VISIBLE_DEVICES, else of nvidia-smi -L (MIG slices each), else torch's)
  gpu           GPUs per cell job, as the resource `gpu` (default: 1 when this machine has
                GPUs and the profile's device is not cpu, else 0). With --executor slurm
                it asks SLURM for a GPU per cell job: say gpu=1 there (the submitting
                host usually has no GPU to count).

A profile that needs a GPU (device cuda, or auto without cpu_fallback: the paper's) with no GPU
to give (gpus=0 and no gpu=N) stops here, before fetch and prepare, saying why and what to do.

One cell per GPU: a cell job with gpu=1 runs through `fmareport on-gpu`, which claims a GPU
no other job claims or computes on and sets CUDA_VISIBLE_DEVICES to it; the cell's run then
holds that GPU's lock itself while it computes (device.claimed_device), waiting while another
run (another user's too) holds it. `--resources gpu=N` (what `make report` passes) keeps
Snakemake from starting more cell jobs than GPUs in the first place.
"""

import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from fmareport.config import ConfigError
from fmareport.data.store import synth_arguments
from fmareport.results import BASELINE_SCHEMA_VERSION
from fmareport.workflow import CELL_FOLDER, NOT_LOADED, cell_inputs, cell_priority, start

PY = sys.executable  # the environment Snakemake runs in runs every step (no PATH needed)
REPO = Path(workflow.basedir)
NOTEBOOK = REPO / "book/experiment.ipynb"
try:  # the profile, its cells, GPUs per cell job; the stamps written (fmareport.workflow.start)
    PLAN = start(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
PROFILE, CFG, CELLS, BUILD, RESULTS = PLAN.profile, PLAN.cfg, PLAN.cells, PLAN.build, PLAN.results
RESULTS_ROOT = Path(CFG.run.results_dir).resolve()  # for the book, which may run elsewhere
# A cell job on a GPU runs on one of its own (a claim per GPU, CUDA_VISIBLE_DEVICES set).
ON_GPU = f"{PY} -m fmareport.cli on-gpu --" if PLAN.gpu else ""
# synth and prepare take every core of a local run (--cores). A cluster executor has no --cores
# (workflow.cores raises): there the profile's set-threads gives their threads, else one.
try:
    ALL_CORES = workflow.cores
except WorkflowError:
    ALL_CORES = 1


wildcard_constraints:
    cell=rf"({CELL_FOLDER})/[^/]+",

localrules: all, results


# Every cell's result is a target of its own: a deleted or failed cell runs again even when the
# book built from it is still there (an intermediate file alone would not be remade).
rule all:
    input:
        expand(RESULTS / "{cell}.json", cell=CELLS),
        PLAN.baselines,
        REPO / "_build/html/generated/results.html",
        BUILD / "book.done",


rule results:
    input:
        expand(RESULTS / "{cell}.json", cell=CELLS),
        PLAN.baselines,


rule baseline:
    input:
        profile=PLAN.profile_yaml,
        store=BUILD / "store.txt",  # on FMA data, fetch (before prepare) brought features.csv too
    output:
        PLAN.baselines,
    params:
        # A new results schema re-runs the baselines (Snakemake's params trigger): no stale file
        # of an older one is left for the book to refuse.
        schema=BASELINE_SCHEMA_VERSION,
    log:
        BUILD / "logs/baseline.log",
    shell:
        "{PY} -m fmareport.cli baseline --profile {PROFILE:q} > {log:q} 2>&1"


if CFG.data.source == "synth":

    rule synth:
        input:
            # The set's settings stamp (fmareport.workflow.synth_stamp), kept at every start: changed
            # settings re-make the set, and so does a set on disk made with other settings by anyone
            # (papermill, a user, an older synth that cut no artists), which prepare would refuse.
            BUILD / "synth.txt",
        output:
            PLAN.data,
        params:
            data_dir=CFG.run.data_dir,
            settings=shlex.join(synth_arguments(CFG)),
        threads: ALL_CORES
        shell:
            "{PY} -m fmareport.cli synth {params.data_dir:q} {params.settings} --workers {threads} --force"

else:

    rule fetch:
        output:
            touch(PLAN.data),
        params:
            data_dir=CFG.run.data_dir,
        shell:
            "{PY} -m fmareport.cli fetch {params.data_dir:q}"

    localrules: fetch  # on a cluster: the download runs where Snakemake runs (compute nodes may be offline)


rule prepare:
    input:
        PLAN.data,
        profile=PLAN.profile_yaml,
    output:
        BUILD / "store.txt",  # the store's path and counts: the marker every cell waits for
    threads: ALL_CORES
    shell:
        "{PY} -m fmareport.cli prepare --profile {input.profile} --workers {threads} > {output}"


rule cell:
    input:
        notebook=NOTEBOOK,
        profile=PLAN.profile_yaml,
        params=lambda wildcards: cell_inputs(wildcards.cell),  # and its base's, for an ablation
        settings=BUILD / "settings/{cell}.yaml",
        store=BUILD / "store.txt",
    output:
        json=RESULTS / "{cell}.json",
        # The first seed's weights and every seed's test-set embeddings (fmareport.weights): run_cell
        # writes them, then the json naming them.
        weights=RESULTS / "{cell}.weights.pt",
        embeddings=RESULTS / "{cell}.embeddings.npz",
        notebook=RESULTS / "{cell}.ipynb",
    log:
        papermill=BUILD / "logs/{cell}.log",
    threads: PLAN.cell_threads
    priority: lambda wildcards: cell_priority(PROFILE, wildcards.cell)  # longest first
    resources:
        gpu=PLAN.gpu,
    shell:
        # 1. A params file that does not load fails here, before papermill starts: its settings
        #    stamp, written as the workflow started (load_cell: every layer checked, the cell's name
        #    its path), holds the config layer's message naming the file and key.
        # 2. The documented papermill command, its cell outputs logged (a bar line per 30 s, not
        #    per step). A kernel can lose the race for a free TCP port to another kernel starting
        #    at the same moment (ZMQError: Address already in use): that start alone is retried.
        """
        if grep -q '^{NOT_LOADED}' {input.settings:q}; then
            sed '1s/^{NOT_LOADED}//' {input.settings:q} >&2
            exit 2
        fi
        export TQDM_MININTERVAL=30
        for attempt in 1 2 3; do
            if {ON_GPU} {PY} -m papermill {input.notebook:q} {output.notebook:q} -p profile {PROFILE:q} -p cell {wildcards.cell:q} \\
                    --no-progress-bar --log-output 2> {log.papermill:q}; then
                break
            fi
            grep -q "Address already in use" {log.papermill:q} && [ $attempt -lt 3 ] || exit 1
            echo "{wildcards.cell}: the kernel lost a port race on start; starting it again" >&2
        done
        """


rule book:
    input:
        expand(RESULTS / "{cell}.{ext}", cell=CELLS, ext=("json", "ipynb")),
        PLAN.baselines,
        REPO / "_config.yml",
        REPO / "_toc.yml",
        sorted((REPO / "book/pages").glob("*.md")),
    output:
        REPO / "_build/html/generated/results.html",
        # The HTML is the repo's, whichever profile or working directory built it last; this stamp
        # is this working directory's and profile's, so an HTML built elsewhere never stands in
        # for a book of this profile that was never built (with no .snakemake records to say so).
        touch(BUILD / "book.done"),
    shell:
        # --complete: every cell of the profile has a current run, or the book fails naming the others.
        "{PY} -m fmareport.cli book --profile {PROFILE:q} --results-dir {RESULTS_ROOT:q} --complete"
