"""A pool of worker processes that die with their parent: used by synth (encoding) and
prepare (decoding), which both fan one function out over many tracks."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

# Thread pools of the numeric libraries a worker may load. Each worker is one of
# usable_cpus() processes, so one thread each; under Snakemake, OPENBLAS_NUM_THREADS and
# friends are set to the job's threads (all cores for prepare) and would multiply.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _init_worker(parent_pid: int) -> None:
    """Worker initializer: one thread per numeric library (before the job's function imports
    numpy and friends), and exit as soon as the parent is gone (a killed run must leave no orphans)."""
    for name in THREAD_ENV:
        os.environ[name] = "1"

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under SLURM or taskset), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def imap_unordered(fn: Callable, jobs: Iterable, workers: int, n_jobs: int) -> Iterator:
    """Yield fn(job) for every job, in completion order, over `workers` processes (0: all usable CPUs;
    1: in this process). At most 4 jobs a worker are in flight, so results stream out as they finish
    and a kill loses at most those."""
    workers = min(workers or usable_cpus(), max(n_jobs, 1))
    if workers == 1:
        yield from map(fn, jobs)
        return
    spawn = multiprocessing.get_context("spawn")  # safe beside torch's threads
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker, initargs=(os.getpid(),)) as executor:
        pending = set()
        for job in jobs:
            pending.add(executor.submit(fn, job))
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        for f in pending:
            yield f.result()
