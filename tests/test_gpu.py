"""The GPU side without a GPU (issue 18): what the workflow counts, the lock the computing process
holds, how a seed records the way it ran, and the small device fixes. Every GPU here is faked:
a fake `nvidia-smi` on PATH or none, torch's answer in the count's subprocess replaced, and
monkeypatched torch.cuda calls."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fakes import cell_result

from fmareport import device as device_mod
from fmareport import gpus, model, train
from fmareport.cli import main
from fmareport.config import load_profile
from fmareport.device import DeviceError, bf16_autocast, claimed_device, device_policy, pick_device
from fmareport.experiment import run_cell
from fmareport.files import take_lock
from fmareport.results import DevicePolicyRecord, load_results, validate

REPO = Path(__file__).resolve().parents[1]


def torch_sees(monkeypatch, uuids: list[str], problem: str | None = None) -> None:
    """The count's torch subprocess answers `uuids` (and `problem`), as a machine with those GPUs would."""
    answer = json.dumps({"uuids": uuids, "problem": problem})
    monkeypatch.setattr(gpus, "TORCH_GPUS_CODE", f"print({answer!r})")


def on_path(monkeypatch, tmp_path: Path, smi: str | None) -> None:
    """PATH with only a fake nvidia-smi printing `smi` for -L (None: no nvidia-smi at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if smi is not None:
        script = bin_dir / "nvidia-smi"
        query = "0, GPU-aaaa, NVIDIA A100, 550.54\n1, GPU-bbbb, NVIDIA A100, 550.54\n"
        script.write_text(
            f'#!/bin/sh\nif [ "$1" = "-L" ]; then printf %b {json.dumps(smi)}; else printf %b {json.dumps(query)}; fi\n'
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# --- 1. the count agrees with torch ----------------------------------------------------------------


def test_without_nvidia_smi_the_count_is_the_devices_torch_sees(monkeypatch, tmp_path, capsys):
    on_path(monkeypatch, tmp_path, None)
    torch_sees(monkeypatch, ["aaaa", "bbbb"])
    assert main(["gpus", "--count"]) == 0
    assert capsys.readouterr().out == "2\n"  # was 0: every paper cell then started at once on cuda:0
    assert gpus.visible_gpus() == ["0", "1"]
    assert gpus.gpu_keys(["0", "1"]) == {"0": "aaaa", "1": "bbbb"}  # the locks' names: torch's UUIDs


def test_mig_slices_are_counted_and_claimed_by_their_uuid(monkeypatch, tmp_path):
    listing = (
        "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)\n"
        "  MIG 3g.20gb     Device  0: (UUID: MIG-1111)\n"
        "  MIG 3g.20gb     Device  1: (UUID: MIG-2222)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb)\n"
    )
    on_path(monkeypatch, tmp_path, listing)
    torch_sees(monkeypatch, ["1111"])  # a CUDA process enumerates one MIG slice
    assert gpus.visible_gpus() == ["MIG-1111", "MIG-2222", "1"]
    assert gpus.gpu_count() == 3
    assert gpus.gpu_keys(["MIG-2222", "1"]) == {"MIG-2222": "2222", "1": "bbbb"}


def test_gpus_torch_cannot_use_count_zero(monkeypatch, tmp_path, capsys):
    on_path(monkeypatch, tmp_path, "GPU 0: NVIDIA A100 (UUID: GPU-aaaa)\n")
    torch_sees(monkeypatch, [], "torch 2.11.0+cpu is a CPU-only build")
    assert main(["gpus", "--count"]) == 0
    assert capsys.readouterr().out == "0\n"  # was 1: nvidia-smi's count, which no cell could use


def test_the_count_asks_the_real_torch_in_a_subprocess(monkeypatch):
    """Not faked: this machine's torch (no GPU here) answers through the subprocess."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    seen = gpus.torch_gpus()
    assert seen == {"uuids": [], "problem": seen["problem"]} and "hides every GPU" in seen["problem"]
    assert gpus.gpu_count(seen=seen) == 0  # (asking torch itself: the Snakefile's count, tests/test_cluster.py)


def test_the_counts_subprocess_imports_gpus_not_device():
    """device.py imports gpus.py; the code gpus.py runs in its torch subprocess finds cuda_problem in
    gpus.py itself, so no import loop passes through that code string."""
    tree = ast.parse(gpus.TORCH_GPUS_CODE)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"json", "torch", "fmareport.gpus"}
    assert device_mod.cuda_problem is gpus.cuda_problem  # pick_device's reasons are the count's


# --- 2. the lock is the computing process's, per machine ------------------------------------------------


def fake_cuda(monkeypatch, n: int, lock_dir: Path) -> list[int]:
    """torch with `n` fake GPUs (uuid-<i>) that pick_device gives; -> the indices set_device got."""
    current: list[int] = []
    monkeypatch.setattr(device_mod, "pick_device", lambda cfg: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=f"uuid-{i}"))
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(gpus, "GPU_LOCK_DIR", lock_dir)
    return current


def test_the_run_holds_its_gpus_lock_and_waits_while_all_are_held(monkeypatch, tmp_path):
    current = fake_cuda(monkeypatch, 2, tmp_path / "locks")
    cfg = load_profile("smoke")
    got = []
    with claimed_device(cfg) as first, claimed_device(cfg) as second:
        assert (first, second) == (torch.device("cuda", 0), torch.device("cuda", 1)) and current == [0, 1]
        third = threading.Thread(target=lambda: got.append(_claim_once(cfg)))
        third.start()
        time.sleep(0.5)
        assert not got, "a third run took a GPU that two runs hold"
    third.join(10)
    assert got == [torch.device("cuda", 0)]
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == ["uuid-0.lock", "uuid-1.lock"]


def _claim_once(cfg):
    with claimed_device(cfg, poll=0.05) as d:
        return d


def test_another_process_holding_a_gpu_excludes_it(monkeypatch, tmp_path):
    """Another user's or another TMPDIR's run: a separate process holding uuid-0's lock in the folder."""
    locks = tmp_path / "locks"
    fake_cuda(monkeypatch, 2, locks)
    code = (
        "import sys, time; from fmareport.files import take_lock; "
        "take_lock(sys.argv[1], shared=True); print('held', flush=True); time.sleep(30)"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(locks / "uuid-0.lock")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert other.stdout.readline().strip() == "held"
        with claimed_device(load_profile("smoke")) as d:
            assert d == torch.device("cuda", 1)
    finally:
        other.kill()
        other.wait()


def test_gpu_locks_live_in_one_folder_per_machine_open_to_every_user(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert gpus.GPU_LOCK_DIR == Path("/tmp/fmareport-gpu-locks")  # not $TMPDIR, not per user
    fd = take_lock(tmp_path / "locks" / "uuid-0.lock", wait=False, shared=True)
    assert fd is not None and stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o1777
    assert take_lock(tmp_path / "locks" / "uuid-0.lock", wait=False, shared=True) is None  # held
    os.close(fd)


def test_run_cell_holds_the_gpu_for_the_whole_cell(tiny_config, tmp_path, monkeypatch):
    """The lock is taken in the cell's run (the process that computes), before the store."""
    held = []

    class Claimed:
        def __init__(self, cfg):
            held.append("taken")

        def __enter__(self):
            return torch.device("cpu")

        def __exit__(self, *exc):
            held.append("released")

    from fmareport import experiment

    monkeypatch.setattr(experiment, "claimed_device", Claimed)
    cfg = tiny_config.replace(
        cell="table1/raw_whole", input="raw", epochs=1, seeds=[0], build_dir=str(tmp_path / "b"),
        results_dir=str(tmp_path / "r"),
    )  # fmt: skip
    monkeypatch.setattr(experiment, "write_results", lambda path, results: held.append("written"))
    run_cell(cfg, progress=False)
    assert held == ["taken", "written", "released"]


# --- 3. a GPU profile without a GPU stops before the download -----------------------------------------------


def test_without_a_gpu_the_device_error_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(device_mod, "cuda_problem", lambda: "torch 2.11.0+cpu is a CPU-only build")
    with pytest.raises(DeviceError, match=r"device: cpu.*TORCH_INDEX=https://download.pytorch.org/whl/cu126"):
        pick_device(load_profile("paper"))
    with pytest.raises(DeviceError, match=r"Use device: cpu, or .*TORCH_INDEX="):
        pick_device(load_profile("smoke", overrides={"device": "cuda"}))


def test_hidden_gpus_blame_the_variable_not_the_driver(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert "CUDA_VISIBLE_DEVICES='-1' hides every GPU" in gpus.cuda_problem()


# --- 4. the store's place decided once per cell; 5. each seed records how it ran ---------------------------


def fake_gpu_props(monkeypatch, free: float) -> None:
    props = SimpleNamespace(name="NVIDIA A40", major=8, minor=6, total_memory=48e9, uuid="uuid-0")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (int(free), int(48e9)))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 6))


def test_a_store_already_resident_counts_as_free_memory(monkeypatch):
    """Seed 2 on a 48 GB card: 16 GB of store cached by seed 1 leaves 20 GB free; without counting the
    copy it fell back to the memmap (16 > 10) while the copy stayed allocated."""
    fake_gpu_props(monkeypatch, free=20e9)
    cfg = load_profile("smoke", overrides={"device": "cuda", "amp": True})
    cuda = torch.device("cuda", 0)
    assert not device_policy(cfg, int(16e9), cuda).resident_store  # a first decision, 16 GB > half of 20
    again = device_policy(cfg, int(16e9), cuda, resident_nbytes=int(16e9))
    assert again.resident_store and "half of 36.0 GB free, its copy already there counted" in again.notes[1]
    record = again.record()
    assert record["device_name"] == "NVIDIA A40" and record["device_index"] == 0 and record["device_uuid"] == "uuid-0"
    assert record["store"] == "resident" and record["amp_dtype"] == "bfloat16"


def test_the_policy_is_decided_once_per_cell_and_recorded_per_seed(tiny_config, tmp_path, monkeypatch):
    from fmareport import experiment

    calls = []
    for module in (experiment, train):
        real = module.device_policy
        monkeypatch.setattr(module, "device_policy", lambda *a, real=real, **k: calls.append(1) or real(*a, **k))
    cfg = tiny_config.replace(
        cell="table1/raw_whole", input="raw", epochs=1, seeds=[0, 1], build_dir=str(tmp_path / "b"),
        results_dir=str(tmp_path / "r"),
    )  # fmt: skip
    results = run_cell(cfg, progress=False)
    assert len(calls) == 1  # was once per seed
    (cell,) = load_results(tmp_path / "r", "tiny").values()
    for seed in (results.seeds[0], results.seeds[1]):
        p = seed.policy
        assert (p.device_type, p.device_name, p.device_index, p.store, p.amp_dtype) == (
            "cpu",
            "cpu",
            None,
            "memmap",
            None,
        )
        assert p.store_reason == "clip store: memmap (store_on_device: auto on the CPU)" and p.amp_reason
    assert cell.seeds[1].policy.store == "memmap"  # as written to the file, read back


def test_results_written_before_the_policy_still_load():
    """A results file of the same schema version written before seeds had a policy reads as it is."""
    old = json.loads(cell_result(accs=[0.5, 0.6]).model_dump_json())
    for s in old["seeds"]:
        del s["policy"]  # as a file written before the record was
    assert [s.policy for s in validate(old).seeds] == [None, None]


def test_the_reproducibility_page_shows_each_seeds_policy(tiny_config):
    from fmareport.report.page import Page
    from fmareport.report.pages import reproducibility

    record = DevicePolicyRecord(**device_policy(tiny_config).record())
    with_policy = cell_result(accs=[0.5])
    with_policy = with_policy.model_copy(update={"seeds": [with_policy.seeds[0].model_copy(update={"policy": record})]})
    results = {"table1/a": with_policy, "table1/b": cell_result(accs=[0.5], seeds=[3])}
    html = reproducibility.device_policies(Page("tiny", results, {}, tiny_config, [])).data
    assert 'id="device-policy"' in html and "memmap" in html and "off (fp32)" in html
    assert "Not recorded (results written before the policy was): table1/b seed 3." in html


# --- 6. the smaller ones ------------------------------------------------------------------------------------


def test_a_resume_with_fewer_visible_gpus_restores_the_runs_device(monkeypatch):
    """A checkpoint of two visible GPUs resumed where one is visible: set_rng_state_all of both
    raised 'invalid device ordinal'; only the run's device's state is restored (and saved)."""
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def all_states(states):
        if len(states) != 1:
            raise RuntimeError("CUDA error: invalid device ordinal")

    monkeypatch.setattr(torch.cuda, "set_rng_state_all", all_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, d=None: restored.append((s[:2].tolist(), d)))
    state = train._rng_state()
    state["cuda"] = [[1, 1, 1], [2, 2, 2]]  # saved with two GPUs visible
    train._set_rng_state(state, torch.device("cuda", 0))
    assert restored == [([1, 1], torch.device("cuda", 0))]
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda d=None: torch.tensor([7, 7], dtype=torch.uint8))
    assert train._rng_state(torch.device("cuda", 0))["cuda"] == [[7, 7]]  # the run's device only
    assert train._rng_state(torch.device("cpu"))["cuda"] == []


def test_bf16_autocast_only_on_cpus_with_bf16_instructions(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    ok, why = bf16_autocast(torch.device("cpu"))
    assert not ok and "no bf16 instructions" in why  # was True on every CPU: emulated, slower
    cfg = load_profile("smoke", overrides={"amp": True, "device": "cpu"})
    assert device_policy(cfg).amp_dtype is None
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert bf16_autocast(torch.device("cpu"))[0]
    # The profiles the references were made with run fp32 on the CPU: no number moves.
    assert not load_profile("smoke").compute.amp and not load_profile("demo").compute.amp


def test_one_input_branch_is_not_copied_by_a_cat(monkeypatch):
    """The GPU path (no matmul form) of a one-branch first layer: torch.cat of one part copied the
    whole (B, C, T) activation every step."""
    cfg = load_profile("smoke", overrides={"input": "raw"})
    net = model.Net(cfg.model)
    monkeypatch.setattr(model, "matmul_form", lambda x: False)
    cats = []
    real = torch.cat
    monkeypatch.setattr(torch, "cat", lambda parts, *a, **k: cats.append(len(parts)) or real(parts, *a, **k))
    net.eval()
    with torch.no_grad():
        net.conv1(torch.from_numpy(np.zeros((2, cfg.store.clip_samples), dtype=np.float32)))
    assert 1 not in cats
