"""The pinned environment (requirements.lock, requirements-torch.lock; `make lock`) and what
`make install` runs with it, the CUDA 12 path (TORCH_INDEX) included. No network: make -n only."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fmareport import provenance

REPO = Path(__file__).resolve().parents[1]
CU126 = "https://download.pytorch.org/whl/cu126"
TORCH_SIDE = re.compile(r"^(torch|torchaudio|triton|nvidia-.+|cuda-.+)$")


def entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, [sha256 hashes])} of a pip requirements file made by `uv pip compile`."""
    out, name = {}, None
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            name = canonicalize_name(m[1])
            assert name not in out, f"{path.name}: {name} twice"
            out[name] = (m[2], [])
        elif m := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line):
            out[name][1].append(m[1])
        else:
            assert not line.strip() or line.lstrip().startswith("#"), f"{path.name}: unexpected line {line!r}"
    return out


def make_n(*args: str) -> str:
    """What `make -n ARGS` would run, for a venv that does not exist yet (so install is out of date)."""
    done = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def locks():
    return {name: entries(REPO / name) for name in provenance.LOCK_FILES}


def test_the_lock_pins_every_requirement_of_the_install_with_hashes(locks):
    rest, torch_side = locks["requirements.lock"], locks["requirements-torch.lock"]
    assert not rest.keys() & torch_side.keys()
    pinned = rest | torch_side
    assert all(hashes for _, hashes in pinned.values()), [n for n, (_, h) in pinned.items() if not h]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"], "pip"]
    wanted += [r for extra in ("test", "bench", "cluster") for r in extras[extra]]  # what make install installs
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{text}: not in the lock (make lock)"
        assert req.specifier.contains(pinned[name][0], prereleases=True), f"{text}: the lock has {pinned[name][0]}"
    # The split: the torch side is torch, torchaudio and the CUDA 13 packages of PyPI's torch, nothing else.
    assert {"torch", "torchaudio"} <= torch_side.keys()
    assert all(TORCH_SIDE.match(n) for n in torch_side), sorted(torch_side)
    assert not any(TORCH_SIDE.match(n) for n in rest), sorted(n for n in rest if TORCH_SIDE.match(n))


def test_make_install_installs_from_the_lock_with_hashes(tmp_path):
    out = make_n("install", f"VENV={tmp_path}/venv")
    assert "--require-hashes -r requirements.lock -r requirements-torch.lock" in out, out
    assert "--no-deps --no-build-isolation -e ." in out and "--index-url" not in out, out


def test_torch_index_takes_torch_at_the_locks_version_from_that_index_and_the_rest_from_the_lock(tmp_path, locks):
    torch_pins = " ".join(f"{n}=={locks['requirements-torch.lock'][n][0]}" for n in ("torch", "torchaudio"))
    out = make_n("install", f"VENV={tmp_path}/venv", f"TORCH_INDEX={CU126}")
    lines = [line for line in out.splitlines() if "pip install" in line]
    assert any(line.endswith("--require-hashes -r requirements.lock") for line in lines), out
    assert any(line.endswith(f"--index-url {CU126} {torch_pins}") for line in lines), out
    assert "requirements-torch.lock" not in " ".join(lines), "no CUDA 13 package on the CUDA 12 path"
    assert f"{tmp_path}/venv/.installed-stamp-cu126" in out  # its own stamp: switching reinstalls torch


def test_make_report_with_torch_index_shows_the_cuda_12_wheels(tmp_path):
    out = make_n(
        "report", "PROFILE=paper", f"TORCH_INDEX={CU126}", f"VENV={tmp_path}/venv", f"REPORT_LOCK={tmp_path}/r.lock"
    )
    assert f"--index-url {CU126} torch==" in out, out


def test_lock_hashes_names_each_lock_files_sha256(locks):
    hashes = provenance.lock_hashes()
    assert list(hashes) == list(provenance.LOCK_FILES)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values()), hashes
    assert provenance.lock_hashes(REPO / "nowhere") == dict.fromkeys(provenance.LOCK_FILES)


def test_environment_yml_installs_the_same_locks(locks):
    text = (REPO / "environment.yml").read_text()
    assert "--require-hashes" in text and all(f"-r {name}" in text for name in provenance.LOCK_FILES), text
    assert f"torch=={locks['requirements-torch.lock']['torch'][0]}" in text
