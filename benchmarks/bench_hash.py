"""What a content hash of the clip store's audio.npy costs: the stdlib's hashes over one file.

    python benchmarks/bench_hash.py                  # a 1 GiB int16 .npy of noise in a temporary folder
    python benchmarks/bench_hash.py --gib 2 --dir /big/disk

For each hash it reads the whole file with `hashlib.file_digest` (zlib's crc32 by 1 MiB
blocks) twice: with the file's pages in the OS cache (the hash's own cost: a store just
written, or one a run reads again), and after `posix_fadvise(DONTNEED)` has dropped them
(the disk's cost too: a store read for the first time since boot). It prints GiB/s of
wall clock and of CPU time (the CPU rate does not change when other programs share the
cores) and what the paper's store (8000 clips x 10**6 int16 samples = 16 GB) would take.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import tiny  # benchmarks/tiny.py: the --tiny option

PAPER_BYTES = 8000 * 10**6 * 2  # the paper's store: 8000 clips of 10**6 int16 samples


TINY = {"gib": 0.002, "hashes": ["sha1", "crc32"]}  # --tiny's settings


def crc32_digest(f, _name):
    """zlib.crc32 over the file in 1 MiB blocks (not a cryptographic hash; for comparison)."""
    crc = 0
    while block := f.read(1 << 20):
        crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


HASHES = {
    "sha1": lambda f: hashlib.file_digest(f, "sha1").hexdigest(),
    "md5": lambda f: hashlib.file_digest(f, "md5").hexdigest(),
    "blake2b": lambda f: hashlib.file_digest(f, "blake2b").hexdigest(),
    "sha256": lambda f: hashlib.file_digest(f, "sha256").hexdigest(),
    "crc32": lambda f: crc32_digest(f, None),
}


def drop_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages (clean pages: no root needed)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def timed(name: str, path: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one hash of the whole file."""
    wall, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        HASHES[name](f)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="size of the test file (GiB)")
    p.add_argument("--dir", help="folder for the test file (default: the system's temporary folder)")
    p.add_argument("--hashes", nargs="*", default=list(HASHES), choices=list(HASHES))
    args = tiny.parse_args(p, argv, TINY)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "audio.npy"
        rows = int(args.gib * 2**30) // (2 * 10**6)
        audio = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(rows, 10**6))
        rng = np.random.default_rng(0)
        for r in range(rows):
            audio[r] = rng.integers(-32768, 32767, 10**6, dtype=np.int16)
        audio.flush()
        del audio
        size = path.stat().st_size
        print(f"{path}: {size / 2**30:.2f} GiB ({rows} clips of 10**6 int16); {os.cpu_count()} cores")
        print(
            f"{'hash':8s} {'cached GiB/s':>13s} {'CPU GiB/s':>10s} {'cold GiB/s':>11s} {'paper 16 GB (cached, cold)':>28s}"
        )
        for name in args.hashes:
            timed(name, path)  # the file in the cache
            hot, cpu = timed(name, path)
            drop_cache(path)
            cold, _ = timed(name, path)
            rate = [size / t / 2**30 for t in (hot, cpu, cold)]
            print(
                f"{name:8s} {rate[0]:13.2f} {rate[1]:10.2f} {rate[2]:11.2f} "
                f"{PAPER_BYTES / size * hot:17.0f} s, {PAPER_BYTES / size * cold:5.0f} s"
            )


if __name__ == "__main__":
    main()
