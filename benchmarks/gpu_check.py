"""The prepared GPU check: what only a GPU can show, in one run, written as one markdown report.

    make gpu-check                        # install (the lock), then this on the GPU: build/gpu-check.md
    make gpu-check DRY=1                  # every step on the CPU at tiny sizes (what tests/ runs)
    python benchmarks/gpu_check.py [--dry] [--out build/gpu-check.md]

Sized to finish in under 8 minutes on one H100 or H200 from a fresh clone (the install not counted).
Each check gets a section with a verdict (pass, FAIL, skipped: why) and its numbers; the report is
rewritten after each one, so a run stopped half way leaves the checks done so far. The checks:

1. gpu tests: `pytest -m gpu` (the tests marked gpu, which skip without CUDA); on the GPU a skip fails.
2. paper shapes: a synthetic FMA-format set at the paper profile's shapes (10^6-sample clips at
   44.1 kHz, 256 maps, n_fft 2048), made by `fmareport.data.store.prepare` as a run makes its own; per
   input (raw, spectrogram, both), whole and segmented, a few real training steps (train.train_step on
   a batch of batch_size clips): ms per step, FLOPs (torch.utils.flop_counter), the share of the
   device's dense bf16 peak (a table by device name) and the peak memory.
3. sync-free steps: one training epoch whose steps run under torch.cuda.set_sync_debug_mode("error")
   (the loss read every SYNC_EVERY steps and the validation pass are the loop's intended waits).
4. resume after kill -9: a deterministic run killed (SIGKILL) once its first epoch's checkpoint is on
   disk, then resumed, against one never stopped: the same history, test accuracy, confusion, weights.
5. > 2^31 samples: a resident store with more than 2^31 int16 samples, indexed past 2^31 by
   train.load_clips (an int32 offset anywhere would read the wrong clip).
6. bf16 vs fp32: the same tiny run with and without bf16 autocast: the final losses and accuracies.

--dry runs every check on the CPU at tiny sizes (the smoke profile's shapes; the 2^31 store is
2^20 samples there), and says which parts only a GPU runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from fmareport import provenance, train
from fmareport.config import REPO_ROOT, from_dict, load_profile
from fmareport.data.store import open_store, prepare
from fmareport.device import device_policy
from fmareport.files import write_atomic
from fmareport.gpus import cuda_problem
from fmareport.inputs import INPUTS
from fmareport.results import Predictions, TestTracks

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s; the first name
# the device's name contains counts (so the specific ones come first).
BF16_DENSE_PEAK_TFLOPS = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)
STEPS = 3  # timed steps per shape, after one warm-up step
RESUME_EPOCHS = 3
BIG = 2**31  # samples in the resident store of check 5 (more than this)


def bf16_peak(name: str) -> float | None:
    """The dense bf16 peak of a device by its name, FLOP/s; None when the table does not know it."""
    return next((tflops * 1e12 for key, tflops in BF16_DENSE_PEAK_TFLOPS if key in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Report:
    """The markdown report, rewritten whole after each section."""

    def __init__(self, path: Path, dry: bool):
        self.path, self.dry, self.sections, self.t0 = path, dry, [], time.perf_counter()

    def add(self, title: str, verdict: str, body: str, seconds: float) -> None:
        self.sections.append((title, verdict, body, seconds))
        print(f"{title}: {verdict} ({seconds:.1f} s)", flush=True)
        self.write()

    def write(self) -> None:
        mode = "dry (CPU, tiny sizes: the numbers mean nothing)" if self.dry else "GPU"
        lines = [
            "# GPU check",
            "",
            f"Mode: {mode}. Written by `benchmarks/gpu_check.py` on {provenance.now().isoformat()}; "
            f"{time.perf_counter() - self.t0:.0f} s so far.",
            "",
            "| check | verdict | seconds |",
            "|---|---|---:|",
            *(f"| {t} | {v} | {s:.1f} |" for t, v, _, s in self.sections),
        ]
        for title, verdict, body, _ in self.sections:
            lines += ["", f"## {title}: {verdict}", "", body.rstrip()]
        write_atomic(self.path, "\n".join(lines) + "\n")


def table(rows: list[dict]) -> str:
    """A markdown table of dicts with the same keys."""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


# --- the data ----------------------------------------------------------------------------------


def synth_config(profile: str, root: Path, per_genre: int, **overrides):
    """A profile's config on a synthetic FMA-format set under root (synthesized, then prepared as a run does)."""
    base = load_profile(profile)
    rate = base.store.sample_rate
    seconds = base.store.clip_samples / rate + 0.5  # a little longer than a clip
    return load_profile(
        profile,
        overrides={
            "data_source": "synth",
            "data_dir": str(root / f"synth-{profile}"),
            "store_root": str(root / "stores"),
            "results_dir": str(root / "results"),
            "build_dir": str(root / "build"),
            "synth_tracks_per_genre": per_genre,
            "synth_seconds": round(seconds, 2),
            "synth_sample_rate": 44100 if rate > 22050 else 22050,
            "synth_bad_cases": False,
            "cpu_fallback": True,
            **overrides,
        },
    )


def data_sets(dry: bool, root: Path, device: str) -> dict:
    """{'shapes': (cfg, store) at the paper's shapes (smoke's when dry), 'tiny': (cfg, store) for the short runs}."""
    # dry: 1.5 s clips at 8 kHz (the test suite's tiny set), one decode process
    small = {"clip_samples": 8192, "segment_samples": 2048, "prepare_workers": 1} if dry else {}
    tiny_cfg = synth_config("smoke", root, 3 if dry else 10, device=device, amp=False, **small)
    sets = {"tiny": (tiny_cfg, prepare(tiny_cfg, progress=False))}
    if dry:
        sets["shapes"] = sets["tiny"]
    else:  # batch_size (50) clips of 10^6 samples: 7 tracks per genre, 56 clips
        cfg = synth_config("paper", root, 7, device=device)
        sets["shapes"] = (cfg, prepare(cfg, progress=False))
    return sets


# --- 1. the GPU tests --------------------------------------------------------------------------


def check_gpu_tests(dry: bool) -> tuple[str, str]:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "tests"]
    if dry:
        return "skipped in dry mode (they skip without CUDA)", f"On the GPU: `{' '.join(cmd[1:])}`; a skip there fails."
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    tail = "\n".join(done.stdout.strip().splitlines()[-15:])
    body = f"`{' '.join(cmd[1:])}`, exit status {done.returncode}:\n\n```\n{tail}\n```"
    if done.returncode != 0:
        return "FAIL", body
    return ("FAIL (a GPU test skipped on the GPU)" if "skipped" in tail else "pass"), body


# --- 2. the paper's shapes ---------------------------------------------------------------------


def shape_row(cfg, store, rng: np.random.Generator, steps: int) -> dict:
    """One input and window: a warm-up step under the FLOP counter, then STEPS timed steps."""
    run = train.start_seed(cfg, store, seed=0, checkpoint_dir=None, progress=False)
    device = run.policy.device
    n = min(cfg.train.batch_size, len(store.audio))

    def one_step():
        b = np.sort(rng.choice(len(store.audio), n, replace=False))
        idx = run.policy.to_device(torch.from_numpy(b))
        return train.train_step(run, b, idx, None)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with FlopCounterMode(display=False) as counter:
        one_step()
    flops = counter.get_total_flops()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    sync(device)
    seconds = (time.perf_counter() - t0) / steps
    peak = bf16_peak(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    return {
        "input": cfg.model.input,
        "window": "segments" if cfg.model.segmented else "whole",
        "per step": f"{n} clips" + (f" x {cfg.n_segments} segments" if cfg.model.segmented else ""),
        "autocast": "bf16" if run.policy.amp else "fp32",
        "ms/step": f"{seconds * 1e3:.1f}",
        "GFLOP/step": f"{flops / 1e9:.1f}",
        "TFLOP/s": f"{flops / seconds / 1e12:.2f}",
        "of bf16 peak": f"{flops / seconds / peak:.1%}" if peak else "n/a",
        "peak memory GiB": f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "n/a",
    }


def check_shapes(cfg, store, dry: bool) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    steps = 1 if dry else STEPS
    if dry:
        cfg = cfg.replace(batch_size=4)
    rows, failed = [], []
    for kind in INPUTS:
        for segmented in (False, True):
            c = cfg.replace(input=kind, segmented=segmented)
            try:
                rows.append(shape_row(c, store, rng, steps))
            except torch.cuda.OutOfMemoryError as e:
                failed.append(f"{kind}, {'segments' if segmented else 'whole'}: out of memory ({str(e)[:200]})")
                torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() and cfg.compute.device != "cpu" else "cpu"
    peak = bf16_peak(name)
    body = (
        f"Profile {cfg.profile} on {name} (dense bf16 peak {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'not in the table'}); "
        f"clips of {cfg.store.clip_samples} samples, {len(store.audio)} synthetic tracks; best of nothing: "
        f"the mean of {steps} steps after one warm-up step (which the FLOPs count).\n\n"
    )
    body += table(rows) if rows else ""
    body += "".join(f"\n\n{f}" for f in failed)
    return ("FAIL" if failed else "pass"), body


# --- 3. a training epoch without a hidden wait ---------------------------------------------------


@contextlib.contextmanager
def steps_sync_checked(on: bool):
    """train.train_step under set_sync_debug_mode('error') (with on: CUDA only) for the block."""
    real = train.train_step

    def checked(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return real(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    train.train_step = checked if on else real
    try:
        yield
    finally:
        train.train_step = real


def check_sync(cfg, store) -> tuple[str, str]:
    on = cfg.compute.device == "cuda"
    cfg = cfg.replace(input="both", segmented=True, batch_size=8)
    run = train.start_seed(cfg, store, seed=0, checkpoint_dir=None, progress=False)
    n_steps = len(train.epoch_steps(run.rows["training"], cfg, 0, 1))
    with steps_sync_checked(on):
        try:
            train.train_epoch(run, 1, progress=False)
        except RuntimeError as e:
            where = "".join(traceback.format_exception(e)[-6:])
            return "FAIL", f"A training step waited for the GPU:\n\n```\n{where}\n```"
    what = f"One epoch, input both, segmented, batch_size 8: {n_steps} steps, train loss {run.history[0]['train_loss']:.3f}."
    if not on:
        return "skipped on the CPU (no CUDA sync to check); the epoch ran", what
    return "pass", what + " No step synchronized with the GPU (set_sync_debug_mode('error') raised nothing)."


# --- 4. resume after kill -9 -------------------------------------------------------------------


def child_run(spec: str) -> None:
    """`--child SPEC`: train one seed of a config on a store with a checkpoint folder; write its record."""
    s = json.loads(spec)
    cfg = from_dict(s["config"], source="gpu_check --child")
    rec = train.train_seed(cfg, open_store(s["store"]), seed=0, checkpoint_dir=s["ckpt"], progress=False)
    out = rec.model_dump(exclude={"seconds", "segments_per_second"})
    for h in out["history"]:
        h.pop("seconds")
    Path(s["out"]).write_text(json.dumps(out))


def child(spec: dict, wait: bool = True) -> subprocess.Popen:
    """A training process: a new interpreter (CUDA does not survive a fork; nor, here, torch's CPU threads)."""
    p = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], cwd=REPO_ROOT)
    if wait and p.wait(timeout=300) != 0:
        raise RuntimeError(f"the training process exited {p.returncode} (its error is above, on stderr)")
    return p


def check_resume(cfg, store, root: Path) -> tuple[str, str]:
    run_cfg = cfg.replace(
        input="both", segmented=True, batch_size=8, epochs=RESUME_EPOCHS, deterministic=True, dropout=0.2
    )
    spec = {"config": run_cfg.to_dict(), "store": str(store.path)}
    straight = {**spec, "ckpt": str(root / "a"), "out": str(root / "a.json")}
    killed = {**spec, "ckpt": str(root / "b"), "out": str(root / "b.json")}
    child(straight)
    p = child(killed, wait=False)
    ckpt = Path(killed["ckpt"]) / "seed0.pt"
    while not ckpt.exists() and p.poll() is None:
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    status = p.wait()
    at = torch.load(ckpt, weights_only=True)["epoch"]
    child(killed)  # resumes from the checkpoint
    a, b = (json.loads(Path(x["out"]).read_text()) for x in (straight, killed))
    test = TestTracks.of(store)

    def accuracy(probs) -> float:
        return Predictions(test, [probs]).accuracies[0]

    wa, wb = (torch.load(Path(x["ckpt"]) / "seed0.pt", weights_only=True)["model"] for x in (straight, killed))
    same_weights = all(torch.equal(wa[k], wb[k]) for k in wa)
    body = (
        f"input both, segmented, dropout 0.2, deterministic, {RESUME_EPOCHS} epochs, on {cfg.compute.device}: killed with "
        f"SIGKILL (exit {status}) after epoch {at}'s checkpoint, then resumed.\n\n"
        f"| | never stopped | killed and resumed |\n|---|---|---|\n"
        f"| last train loss | {a['history'][-1]['train_loss']!r} | {b['history'][-1]['train_loss']!r} |\n"
        f"| test accuracy (last) | {accuracy(a['test_probs'])} | {accuracy(b['test_probs'])} |\n"
        f"| history, confusion, predictions identical | {a == b} | |\n"
        f"| weights identical | {same_weights} | |"
    )
    ok = a == b and same_weights and at < RESUME_EPOCHS
    return ("pass" if ok else "FAIL"), body


# --- 5. more than 2^31 samples -----------------------------------------------------------------


def check_big_index(cfg, dry: bool) -> tuple[str, str]:
    policy = device_policy(cfg.replace(store_on_device="always"))
    n_samples = cfg.store.clip_samples
    total = 2**20 if dry else BIG
    rows = total // n_samples + 2
    store = torch.zeros((rows, n_samples), dtype=torch.int16, device=policy.device)  # (rows, N)
    pattern = (torch.arange(n_samples, device=policy.device) % 30011 - 15000).to(torch.int16)  # (N,)
    store[-1] = pattern
    store[1] = -pattern
    got = train.load_clips(store, np.array([1, rows - 1]), policy)  # (2, N) float32
    want = torch.stack([-pattern, pattern]).float() / train.INT16_SCALE
    ok = torch.equal(got, want)
    last = rows * n_samples - 1
    body = (
        f"A resident int16 store of {rows} x {n_samples} = {rows * n_samples:,} samples "
        f"({rows * n_samples * 2 / 2**30:.2f} GiB) on {policy.device}; rows 1 and {rows - 1} (its last sample "
        f"at offset {last:,}, {'past' if last >= 2**31 else 'before'} 2^31) read by train.load_clips: "
        f"{'the right values' if ok else 'WRONG values'}."
    )
    del store
    if policy.device.type == "cuda":
        torch.cuda.empty_cache()
    if dry:
        return ("pass (2^20 samples in dry mode; the GPU run uses 2^31)" if ok else "FAIL"), body
    return ("pass" if ok else "FAIL"), body


# --- 6. bf16 against fp32 ----------------------------------------------------------------------


def check_bf16(cfg, store, dry: bool) -> tuple[str, str]:
    cfg = cfg.replace(input="both", segmented=True, epochs=1 if dry else 8, batch_size=8)
    runs = {amp: train.train_seed(cfg.replace(amp=amp), store, seed=0, progress=False) for amp in (False, True)}
    fp32, bf16 = runs[False], runs[True]
    rows = [
        {
            "autocast": "bf16" if amp else "fp32",
            "train loss (last)": f"{r.history[-1].train_loss:.4f}",
            "val acc (last)": f"{r.history[-1].val_acc:.3f}",
            "test acc (last)": f"{Predictions(TestTracks.of(store), [r.test_probs]).accuracies[0]:.3f}",
        }
        for amp, r in runs.items()
    ]
    l32, l16 = fp32.history[-1].train_loss, bf16.history[-1].train_loss
    close = np.isfinite(l16) and abs(l16 - l32) <= 0.1 * abs(l32)
    n_test = len(store.split_indices("test"))
    body = (
        f"Profile smoke's shapes, {len(store.audio)} synthetic tracks ({n_test} test), input both, segmented, "
        f"{cfg.schedule.epochs} epochs, seed 0, on {cfg.compute.device}; the same run with and without bf16 "
        "autocast. Pass: the final training losses within 10 % of each other (the test sets are small: "
        "an accuracy moves by 1/n).\n\n" + table(rows)
    )
    return ("pass" if close else "FAIL"), body


# --- the run -----------------------------------------------------------------------------------


def environment(device: str) -> str:
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        smi = "nvidia-smi not found"
    locks = provenance.lock_hashes()
    rows = [
        ("device", device),
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda})"),
        ("cuda problem", cuda_problem() or "none: CUDA is usable"),
        ("nvidia-smi", smi or "no GPU listed"),
        ("python", platform.python_version()),
        ("git commit", provenance.git_state()[0]),
        *((f"{name} SHA-256", sha or "missing") for name, sha in locks.items()),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def checked(report: Report, title: str, fn, *args) -> None:
    """Run one check; an exception fails it, with its traceback, and the next check runs."""
    t0 = time.perf_counter()
    try:
        verdict, body = fn(*args)
    except Exception as e:  # noqa: BLE001 - a check that breaks is a finding, not the end of the report
        verdict, body = "FAIL (error)", "```\n" + "".join(traceback.format_exception(e)[-8:]) + "\n```"
    report.add(title, verdict, body, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="every check on the CPU at tiny sizes (tests run this)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "gpu-check.md", help="the report (markdown)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_run(args.child)
        return 0
    device = "cpu" if args.dry else "cuda"
    report = Report(args.out, args.dry)
    if not args.dry and (problem := cuda_problem()) is not None:
        report.add("environment", "FAIL", environment(device) + f"\n\nNo usable GPU: {problem}.", 0.0)
        return 1
    report.add("environment", "recorded", environment(device), 0.0)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sets = data_sets(args.dry, root, device)
        report.add(
            "synthetic data",
            "made",
            "\n".join(
                f"* {k}: {len(s.audio)} tracks x {s.audio.shape[1]} samples, {s.path}" for k, (_, s) in sets.items()
            ),
            time.perf_counter() - t0,
        )
        checked(report, "1. gpu tests", check_gpu_tests, args.dry)
        checked(report, "2. paper shapes", check_shapes, *sets["shapes"], args.dry)
        checked(report, "3. sync-free steps", check_sync, *sets["shapes"])
        checked(report, "4. resume after kill -9", check_resume, *sets["shapes"], root)
        checked(report, "5. > 2^31 samples", check_big_index, sets["shapes"][0], args.dry)
        checked(report, "6. bf16 vs fp32", check_bf16, *sets["tiny"], args.dry)
    failed = [t for t, v, _, _ in report.sections if v.startswith("FAIL")]
    print(f"report: {args.out}" + (f"; failed: {', '.join(failed)}" if failed else "; no check failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
