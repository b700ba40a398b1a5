"""The fault corpus, issue 32: the data set, the clip store and the files a cell writes, as a careless
or hostile user meets them (docs/faults.md; the cases' numbers are the corpus's: 11 the clip store,
12 results files, 14 errors at the boundary; case 15's changed data set is in tests/test_runs.py).

Each test names the input, the exit status or exception, the message (one line naming the file or
folder and the fix), and that nothing outside the run's own folders changed. A full or read-only
disk is a real tmpfs where this user may mount one (else skipped, saying so), beside a test of the
same path with the error injected, which runs everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmareport import experiment, files, train
from fmareport.cli import main
from fmareport.config import Config, load_cell
from fmareport.data import store, synth
from fmareport.data.fma import audio_path, load_tracks
from fmareport.data.store import SourceError, prepare, select_tracks, source_files, source_fingerprint
from fmareport.data.synth import MARKER, synthesize
from fmareport.errors import StorageError
from fmareport.results import ResultsError, load_baselines, load_results, read_results
from fmareport.weights import load_embeddings, load_weights


def state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: what 'nothing changed' compares."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def last_line(err: str) -> str:
    """What the boundary printed: the last line of stderr (progress bars come before it), no traceback."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Path:
    """A real tmpfs of `size` mounted on `folder` for the block (skipped where this user may not mount one)."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (a full or read-only disk needs one)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", folder], check=True)


def profile_yaml(cfg: Config, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


# --- 11. two same-size files swapped: the content is the fingerprint; checksums are checked -------------


@pytest.fixture
def two_of_a_kind(tiny_data, tmp_path) -> tuple[Path, Path, Path]:
    """A copy of the tiny set in which two music tracks of different genres have the same size (the
    longer cut to the shorter, both still listed by checksums with their SHA1): (set, a, b)."""
    data = shutil.copytree(tiny_data, tmp_path / "set")
    plan = select_tracks(load_tracks(data / "fma_metadata" / "tracks.csv"), "small")[0]
    music = plan[~plan.track_id.isin(list(synth.BAD_CASES))]
    first = music.iloc[0]
    other = music[music.genre != first.genre].iloc[0]
    a, b = audio_path(data, first.track_id), audio_path(data, other.track_id)
    size = min(a.stat().st_size, b.stat().st_size)
    listing = data / "fma_small" / "checksums"
    lines = listing.read_text()
    for path in (a, b):
        old = hashlib.sha1(path.read_bytes()).hexdigest()
        path.write_bytes(path.read_bytes()[:size])
        lines = lines.replace(old, hashlib.sha1(path.read_bytes()).hexdigest())
    listing.write_text(lines)
    return data, a, b


def swap(a: Path, b: Path) -> None:
    """a and b exchange their bytes (a rename each: as `mv` would)."""
    spare = a.with_name("spare")
    os.rename(a, spare)
    os.rename(b, a)
    os.rename(spare, b)


def test_11_two_same_size_files_swapped_give_another_store_fingerprint(two_of_a_kind):
    """The fingerprint took each file's (track_id, size): a swap of two same-size files of two genres
    kept it, and prepare stored the mislabelled audio as the clean set's store. Now each file's SHA1."""
    data, a, b = two_of_a_kind
    ids = select_tracks(load_tracks(data / "fma_metadata" / "tracks.csv"), "small")[0].track_id.tolist()
    assert a.stat().st_size == b.stat().st_size
    (data / "fma_small" / "checksums").unlink()  # no listing to catch it: the fingerprint alone
    clean = source_fingerprint(source_files(data, "small", ids, workers=1))
    swap(a, b)
    assert source_fingerprint(source_files(data, "small", ids, workers=1)) != clean
    swap(a, b)
    assert source_fingerprint(source_files(data, "small", ids, workers=1)) == clean


def test_11_a_file_that_is_not_the_one_checksums_lists_is_refused_naming_both_sha1s(
    two_of_a_kind, tiny_config, tmp_path, capsys
):
    """FMA's fma_small/checksums (synth writes one too) now checks every selected file before any
    decoding: a swapped file is refused, not skipped (a skip would hide the swap and make a smaller
    store that is not the set's); the fix restores the set."""
    data, a, b = two_of_a_kind
    want_a, want_b = (hashlib.sha1(p.read_bytes()).hexdigest() for p in (a, b))
    swap(a, b)
    before = state(data)
    cfg = tiny_config.replace(data_dir=str(data), store_root=str(tmp_path / "stores"))
    assert main(["prepare", "--profile", str(profile_yaml(cfg, tmp_path)), "--workers", "1"]) == 1
    redo = " ".join(["fmareport synth", str(data), *store.synth_arguments(cfg), "--force"])
    assert last_line(capsys.readouterr().err) == (
        f"fmareport prepare: {a} (track {int(a.stem)}): SHA1 {want_b}, but {data / 'fma_small' / 'checksums'} lists "
        f"{want_a}: not the file the data set lists (damaged, replaced, or swapped with another track's); 2 files "
        f"differ (also {b.parent.name}/{b.name}): re-make the set with `{redo}`; nothing was decoded"
    )
    assert not (tmp_path / "stores").exists() and state(data) == before


def test_11_an_fma_set_that_does_not_match_its_checksums_says_how_to_restore_it(two_of_a_kind, tiny_config):
    data, a, b = two_of_a_kind
    swap(a, b)
    files_now = source_files(data, "small", [int(a.stem), int(b.stem)], workers=1)
    with pytest.raises(SourceError) as err:
        store.check_checksums(data, "small", files_now, tiny_config.replace(data_source="fma"))
    assert str(err.value).endswith(
        f"restore fma_small from fma_small.zip: move {data / 'fma_small'} away and run `fmareport fetch {data} "
        "--only small` (it extracts the zip again and checks every file); nothing was decoded"
    )


# --- 11. a clip store on a read-only disk is read; prepare refuses to write there in one line ----------


def test_11_a_complete_store_on_a_read_only_disk_is_read(tiny_config, tiny_store, tmp_path, capsys):
    """A shared store: its folder (and the lock beside it) cannot be written. A complete store is
    never written again, so it is read without the lock; a store that is not there is refused."""
    with tmpfs(tmp_path / "disk", "2m") as disk:
        shared = shutil.copytree(tiny_store.path, disk / "stores" / tiny_store.path.name)
        read_only(disk)
        before = state(disk)
        cfg = tiny_config.replace(store_root=str(shared.parent))
        assert main(["prepare", "--profile", str(profile_yaml(cfg, tmp_path))]) == 0
        assert capsys.readouterr().out.splitlines()[0] == str(shared)
        assert prepare(cfg, progress=False).fingerprint == tiny_store.fingerprint
        other = cfg.replace(store_root=str(disk / "other"))
        assert main(["prepare", "--profile", str(profile_yaml(other, tmp_path))]) == 1
        assert last_line(capsys.readouterr().err) == (
            f"fmareport prepare: {disk / 'other'}: cannot write there (Read-only file system), and the clip store "
            f"{tiny_store.path.name} is not there yet: make the folder writable, or set store_root to a folder you "
            "can write to (a store made there elsewhere is read as it is)"
        )
        assert state(disk) == before


def test_11_a_store_whose_lock_cannot_be_made_is_read_without_it(tiny_config, tiny_store, tmp_path, monkeypatch):
    """The same where no tmpfs can be mounted: the lock's file refused as another user's shared store
    folder refuses it (EACCES); a store folder under a file (no one can write there, root neither)."""
    shared = shutil.copytree(tiny_store.path, tmp_path / "stores" / tiny_store.path.name)

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(store, "take_lock", refused)
    cfg = tiny_config.replace(store_root=str(shared.parent))
    assert prepare(cfg, progress=False).path == shared
    assert sorted(p.name for p in shared.parent.iterdir()) == [shared.name]  # no lock file made
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError) as err:
        prepare(cfg.replace(store_root=str(tmp_path / "file" / "stores")), progress=False)
    assert str(err.value).startswith(f"{tmp_path / 'file' / 'stores'}: cannot write there (Not a directory), and ")
    assert (tmp_path / "file").read_text() == "x"


def test_11_a_synthetic_set_that_cannot_be_made_is_one_line_naming_data_dir(tiny_config, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cfg = tiny_config.replace(data_dir=str(tmp_path / "file" / "data" / "set"), store_root=str(tmp_path / "stores"))
    assert main(["prepare", "--profile", str(profile_yaml(cfg, tmp_path))]) == 1
    assert last_line(capsys.readouterr().err) == (
        f"fmareport prepare: {tmp_path / 'file' / 'data'}: cannot write there (Not a directory): make it writable, or set "
        "data_dir to a folder you can write to"
    )
    assert (tmp_path / "file").read_text() == "x" and not (tmp_path / "stores").exists()


# --- 14. synth on a full or read-only disk: one line, and its .partial folder removed ----------------------

SMALL_SET = ["--tracks-per-genre", "2", "--seconds", "1", "--sample-rate", "8000", "--no-bad-cases", "--workers", "1"]


def test_14_synth_on_a_full_disk_removes_its_partial_folder(tmp_path, monkeypatch, capsys):
    real = synth.write_track
    written = []

    def full_after_three(job):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(audio_path(job.root, job.track_id)))
        written.append(job.track_id)
        return real(job)

    monkeypatch.setattr(synth, "write_track", full_after_three)
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["synth", str(tmp_path / "set"), *SMALL_SET]) == 1
    line = last_line(capsys.readouterr().err)
    assert re.fullmatch(
        rf"fmareport synth: {tmp_path}: no room on its disk for the synthetic set \(No space left on device after "
        r"[\d.,]+ (KiB|bytes) of it; set\.partial was removed\): free space there, or choose another folder for the "
        r"set \(`fmareport synth DIR`; a profile's data_dir\), then run it again",
        line,
    ), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_14_synth_on_a_really_full_disk_frees_it_again(tmp_path, capsys):
    """Before, libsndfile's "System error." traceback (the encoder wrote the file) and the .partial
    folder left filling the disk. Now each mp3 is encoded in memory and written by Python: ENOSPC."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        (disk / "keep.txt").write_text("mine")
        before = state(disk)
        assert main(["synth", str(disk / "set"), *SMALL_SET[:1], "6", *SMALL_SET[2:]]) == 1
        line = last_line(capsys.readouterr().err)
        assert line.startswith(f"fmareport synth: {disk}: no room on its disk for the synthetic set (No space left")
        assert state(disk) == before
        assert shutil.disk_usage(disk).used <= 16 << 10  # freed: keep.txt and the folders' own pages


def test_14_synth_into_a_read_only_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["synth", str(tmp_path / "file" / "set"), *SMALL_SET]) == 1
    assert last_line(capsys.readouterr().err) == (
        f"fmareport synth: {tmp_path / 'file'}: cannot write there (Not a directory): make it writable, or choose "
        "another folder for the set (`fmareport synth DIR`; a profile's data_dir)"
    )
    with tmpfs(tmp_path / "disk", "1m") as disk:
        read_only(disk)
        assert main(["synth", str(disk / "set"), *SMALL_SET]) == 1
        assert last_line(capsys.readouterr().err).startswith(
            f"fmareport synth: {disk}: cannot write there (Read-only file system): make it writable, or choose"
        )
        assert list(disk.iterdir()) == []


def test_14_synth_still_writes_every_track_as_the_encoder_would_to_a_file(tmp_path):
    """Encoding to memory first changes no byte: a track written by sf.write to its path is the same."""
    import soundfile as sf

    job = synth.Job(1234, "Rock", "music", 0.5, 8000, 0, str(tmp_path / "set"), 1)
    tid, sha1, size = synth.write_track(job)
    rng = np.random.default_rng([0, 1234])
    audio = synth.render("Rock", 0.5, 8000, rng, synth.draw_artist("Rock", synth.artist_rng(0, 1)))
    sf.write(tmp_path / "direct.mp3", audio, 8000, format="MP3")
    assert (tmp_path / "direct.mp3").read_bytes() == audio_path(tmp_path / "set", 1234).read_bytes()
    assert (tid, sha1, size) == (1234, hashlib.sha1((tmp_path / "direct.mp3").read_bytes()).hexdigest(), size)


# --- 14. a results write that fails keeps the previous run whole ------------------------------------------


def test_14_files_replaced_together_or_not_at_all(tmp_path):
    paths = [tmp_path / name for name in ("x.weights.pt", "x.embeddings.npz", "x.json")]
    for path in paths:
        path.write_text(f"old {path.name}")
    with pytest.raises(OSError, match="No space left"):
        with files.replaced_together({paths[0]: b"new weights", paths[1]: b"new embeddings"}):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(paths[2]))  # the results file's write
    assert [p.read_text() for p in paths] == [f"old {p.name}" for p in paths]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporary file
    with files.replaced_together({paths[0]: b"new weights", paths[1]: "new embeddings"}):
        files.write_atomic(paths[2], "new results")
        assert paths[0].read_text() == "old x.weights.pt"  # renamed only after the block
    assert [p.read_text() for p in paths] == ["new weights", "new embeddings", "new results"]


def test_14_files_replaced_together_on_a_really_full_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "64k") as disk:
        old = {disk / "a": b"a" * 8192, disk / "b": b"b" * 8192}
        for path, data in old.items():
            path.write_bytes(data)
        with pytest.raises(OSError) as err:  # a's new bytes fit, b's do not
            with files.replaced_together({disk / "a": b"A" * 16384, disk / "b": b"B" * (64 << 10)}):
                pass
        assert err.value.errno == errno.ENOSPC
        assert {p: p.read_bytes() for p in disk.iterdir()} == old


@pytest.mark.usefixtures("one_torch_thread")
def test_14_a_results_write_that_fails_keeps_the_previous_run_whole(
    tiny_config, tiny_store, tmp_path, monkeypatch, capsys
):
    """Before: the kept weights and embeddings were renamed into place, then the results file's write
    failed (a full disk): the old results file named kept files that were no longer there."""
    cfg = tiny_config.replace(channels=8, dense=[16], results_dir=str(tmp_path / "results"),
                              build_dir=str(tmp_path / "build"))  # fmt: skip
    profile = profile_yaml(cfg, tmp_path)
    run = ["run", "--profile", str(profile), "--cell", "table1/raw_whole"]
    assert main(run) == 0
    paths = experiment.CellPaths.of(load_cell(str(profile), "table1/raw_whole"))
    folder = paths.results.parent
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(before) == ["raw_whole.embeddings.npz", "raw_whole.json", "raw_whole.weights.pt"]

    def disk_full(path, results):
        with files.atomic_file(path, "w") as f:  # as a full disk fails it: after some bytes
            f.write("{")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(experiment, "write_results", disk_full)
    assert main([*run, "--set", "lr=0.01"]) == 1  # other weights: other kept files
    line = last_line(capsys.readouterr().err)
    assert line.startswith(
        f"fmareport run: {folder}: writing the results, weights and embeddings of cell 'table1/raw_whole' ("
    )
    assert line.endswith(
        " failed (No space left on device); the previous run's files there are as they were: make room there (or "
        "set results_dir elsewhere) and rerun the same command (it resumes from its checkpoints)"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # whole, and no temporary file
    old = read_results(paths.results)
    assert load_weights(paths.results, old)["seed"] == 0 and load_embeddings(paths.results, old).seeds == [0]
    resumed = experiment.CellPaths.of(load_cell(str(profile), "table1/raw_whole", {"lr": 0.01})).checkpoints
    assert (resumed / "seed0.pt").is_file()  # kept: the rerun resumes after its last epoch

    monkeypatch.undo()
    monkeypatch.setattr(train, "epoch_steps", lambda *a, **k: pytest.fail("trained again instead of resuming"))
    leftover = folder / ".raw_whole.json.999999.1.tmp"  # what a kill during the renames leaves
    leftover.write_text("{")
    assert main([*run, "--set", "lr=0.01"]) == 0
    new = read_results(paths.results)
    assert new.config.train.lr == 0.01 and load_weights(paths.results, new)["seed"] == 0
    assert not leftover.exists() and not resumed.exists()


# --- 12. results files are read bounded: regular files only, a size cap, no digit-limit traceback --------


def in_time(call, seconds: float = 20):
    """call() in a thread: its result or exception, or a failure if it is still blocked after `seconds`."""
    out = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as err:  # noqa: BLE001 (handed to the test)
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return out


def results_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "smoke" / "table1"
    folder.mkdir(parents=True)
    return folder


def test_12_a_fifo_named_as_a_results_file_is_refused_not_waited_on(tmp_path, capsys):
    fifo = results_folder(tmp_path) / "x.json"
    os.mkfifo(fifo)
    before = state(tmp_path)
    out = in_time(lambda: load_results(tmp_path / "results", "smoke"))
    assert isinstance(out.get("error"), ResultsError)
    assert str(out["error"]) == f"{fifo}: not a regular file (a FIFO): move it away, or run again what wrote it"
    argv = ["book", "--profile", "smoke", "--results-dir", str(tmp_path / "results"), "--complete", "--no-build"]
    assert in_time(lambda: main(argv))["value"] == 1
    assert last_line(capsys.readouterr().err) == f"fmareport book: {out['error']}"
    assert state(tmp_path) == before


def test_12_a_link_to_dev_zero_is_refused_before_a_byte_is_read(tmp_path):
    link = results_folder(tmp_path) / "x.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(ResultsError) as err:
        read_results(link)
    assert (
        str(err.value) == f"{link}: not a regular file (a character device): move it away, or run again what wrote it"
    )
    baselines = tmp_path / "results" / "smoke" / "baselines"
    baselines.mkdir()
    (baselines / "mfcc.json").symlink_to("/dev/zero")
    with pytest.raises(ResultsError, match=r"mfcc\.json: not a regular file \(a character device\)"):
        load_baselines(tmp_path / "results", "smoke")


def test_12_a_results_file_over_the_cap_is_refused_unread(tmp_path):
    big = results_folder(tmp_path) / "x.json"
    with open(big, "wb") as f:
        f.truncate(files.MAX_JSON_BYTES + 1)  # sparse: nothing written
    with pytest.raises(ResultsError) as err:
        read_results(big)
    assert str(err.value) == (
        f"{big}: over {files.MAX_JSON_BYTES:,} bytes (files.MAX_JSON_BYTES), more than fmareport writes: move it "
        "away, or run again what wrote it"
    )


@pytest.mark.parametrize("where", ["table1/x.json", "baselines/mfcc.json"])
def test_12_an_integer_of_5_million_digits_names_its_file(tmp_path, where):
    """Python's own error ("Exceeds the limit (4300 digits) for integer string conversion ... use
    sys.set_int_max_str_digits()") named no file, and its fix is not ours to take."""
    path = tmp_path / "results" / "smoke" / where
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": ' + "9" * 5_000_000 + "}")
    read = load_baselines if where.startswith("baselines") else load_results
    with pytest.raises(ResultsError) as err:
        read(tmp_path / "results", "smoke")
    assert str(err.value) == (
        f"{path}: holds an integer of more than 4,300 digits (Python's limit), which no file fmareport writes "
        "holds: move it away, or run again what wrote it"
    )


def test_12_a_results_file_that_is_a_folder_or_not_utf8_names_its_file(tmp_path):
    folder = results_folder(tmp_path) / "x.json"
    folder.mkdir()
    with pytest.raises(ResultsError, match=rf"^{folder}: (not a regular file \(a folder\)|Is a directory)"):
        load_results(tmp_path / "results", "smoke")
    folder.rmdir()
    folder.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(ResultsError, match=rf"^{folder}: not UTF-8 text \(byte 7: 0xe9\): move it away"):
        load_results(tmp_path / "results", "smoke")


def test_14_a_synth_cut_short_leaves_no_partial_folder(tmp_path, monkeypatch):
    """The .partial folder is synth's only while it holds the marker: made and removed by the same call."""
    monkeypatch.setattr(synth, "_plan", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "set", synth.SynthSettings(tracks_per_genre=1), progress=False, workers=1)
    assert list(tmp_path.iterdir()) == [] and not (tmp_path / "set.partial" / MARKER).exists()
