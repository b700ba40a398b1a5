"""The network on a track the reader brings (fmareport.predict, `fmareport predict`): the smoke grid's kept
weights on a genuine FMA mp3, on generated audio, and on the test tracks whose predictions the results hold."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from fmareport import predict
from fmareport.data.fma import GENRES, audio_path
from fmareport.errors import ConfigError
from fmareport.report import runs
from fmareport.results import ResultsError, load_results
from fmareport.weights import weights_path

CELL = "table1/spectrogram_segmented"


@pytest.fixture
def grid(smoke_grid, monkeypatch):
    """The session's smoke grid as the working directory (its params/ and results/)."""
    monkeypatch.chdir(smoke_grid)
    return smoke_grid


def test_a_real_fma_mp3_gets_eight_probabilities_summing_to_one(grid, fma_real):
    network = runs.current_network("smoke", CELL, grid / "results")
    (out,) = predict.predict_files(network, [fma_real / "fma_small/000/000002.mp3"])
    probs = out["probabilities"]
    assert list(probs) == list(GENRES) and all(0 <= p <= 1 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1, abs=1e-6)


def test_a_test_track_gets_the_probabilities_its_results_hold(grid):
    """The store's decode rule and the cell's windows: a test track's file gives what the cell's first
    seed predicted for it after its last epoch (the results' test_probs), to float32 rounding."""
    result = load_results(grid / "results", "smoke")[CELL]
    network = runs.current_network("smoke", CELL, grid / "results")
    data = grid / result.config.run.data_dir
    for n, track in enumerate(result.test.track_ids[:3]):
        got = network.predict(audio_path(data, track, result.config.data.subset))
        np.testing.assert_allclose(got, result.seeds[0].test_probs[n], atol=2e-5)


def test_generated_audio_of_any_rate_and_channels_is_predicted(grid, tmp_path):
    rate = 22050
    t = np.arange(3 * rate) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3  # (N, 2)
    sf.write(tmp_path / "tone.wav", stereo, rate)
    sf.write(tmp_path / "tone.flac", stereo[:, 0], rate)
    outs = predict.predict_files(
        runs.current_network("smoke", CELL, grid / "results"), [tmp_path / "tone.wav", tmp_path / "tone.flac"]
    )
    assert [o["file"] for o in outs] == [str(tmp_path / "tone.wav"), str(tmp_path / "tone.flac")]
    assert all(sum(o["probabilities"].values()) == pytest.approx(1, abs=1e-6) for o in outs)


def test_the_default_cell_is_the_best_current_table_cell_with_weights(grid):
    results = load_results(grid / "results", "smoke")
    tables = {c: r.summary.test_acc_last_mean for c, r in results.items() if r.config.base is None}
    best = max(tables.values())
    assert tables[runs.best_cell("smoke", grid / "results")] == best


@pytest.mark.parametrize(
    "content, message",
    [(b"", "undecodable: the file is empty"), (b"not audio at all " * 40, "undecodable: 680 bytes, not in a format")],
)
def test_a_file_that_makes_no_clip_is_named_with_why(grid, tmp_path, content, message):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=f"^{bad}: {message}"):
        predict.predict_files(runs.current_network("smoke", CELL, grid / "results"), [bad])
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'none.mp3'}: missing: no file"):
        predict.predict_files(runs.current_network("smoke", CELL, grid / "results"), [tmp_path / "none.mp3"])


def test_a_cell_without_weights_or_results_or_of_other_settings_is_refused(smoke_grid, tmp_path, monkeypatch):
    copy = shutil.copytree(smoke_grid / "params", tmp_path / "params")
    results = shutil.copytree(smoke_grid / "results", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    weights_path(results / "smoke" / f"{CELL}.json").unlink()
    with pytest.raises(ResultsError, match="cannot read the weights the results name"):
        runs.current_network("smoke", CELL, results)
    (results / "smoke" / "table1" / "raw_whole.json").unlink()
    with pytest.raises(ResultsError, match="no results of cell table1/raw_whole of profile 'smoke': run it first"):
        runs.current_network("smoke", "table1/raw_whole", results)
    (copy / "table1" / "both_whole.yaml").write_text((copy / "table1" / "both_whole.yaml").read_text() + "lr: 0.01\n")
    with pytest.raises(
        ConfigError,
        match=r"not the profile's cell as its params give it today \(other settings: lr 0\.0005 \(params: 0\.01\)\)",
    ):
        runs.current_network("smoke", "table1/both_whole", results)
    with pytest.raises(ResultsError, match="no current run of profile 'demo' with kept weights"):
        runs.best_cell("demo", results)
    assert json.loads((results / "smoke" / "table1" / "both_segmented.json").read_text())["weights_sha1"]


def test_the_command_prints_eight_probabilities_or_json_and_refuses_in_one_line(grid, fma_real, capsys):
    from fmareport.cli import main

    mp3 = fma_real / "fma_small/000/000002.mp3"
    assert main(["predict", str(mp3), "--profile", "smoke", "--cell", CELL]) == 0
    head, *genres = capsys.readouterr().out.splitlines()
    assert head.startswith(f"{mp3}: profile smoke, cell {CELL} (run ") and len(genres) == 8
    probs = {line.split()[0]: float(line.split()[1]) for line in genres}
    assert set(probs) == set(GENRES) and sum(probs.values()) == pytest.approx(1, abs=0.005)  # 3 decimals each
    assert list(probs.values()) == sorted(probs.values(), reverse=True)
    assert main(["predict", str(mp3), "--profile", "smoke", "--json"]) == 0  # the best cell
    (out,) = json.loads(capsys.readouterr().out)
    assert out["cell"] == runs.best_cell("smoke", grid / "results") and out["file"] == str(mp3)
    assert sum(out["probabilities"].values()) == pytest.approx(1, abs=1e-6)
    assert main(["predict", str(grid / "no.mp3"), "--profile", "smoke", "--cell", CELL]) == 2
    assert (
        capsys.readouterr().err.strip() == f"fmareport predict: {grid / 'no.mp3'}: missing: no file {grid / 'no.mp3'}"
    )
    assert main(["predict", str(mp3), "--profile", "smoke", "--cell", "table1/nothing"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fmareport predict: ") and "no results of cell table1/nothing" in err and "\n" not in err
