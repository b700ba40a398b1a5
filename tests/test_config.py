"""The config layer: params files resolve as documented, and bad ones are refused clearly."""

import subprocess
import sys
from pathlib import Path

import pytest

from fmareport.config import PARAMS_DIR, Config, ConfigError, from_dict, load_config, load_profile, profile_path

PROFILES = ["smoke", "demo", "paper"]
CELLS = sorted(PARAMS_DIR.glob("table*/*.yaml"))


def write(tmp_path: Path, text: str, name: str = "cell.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_eight_cells_cover_tables_1_and_2():
    cells = {p.relative_to(PARAMS_DIR).with_suffix("").as_posix() for p in CELLS}
    assert cells == {f"table1/{i}_{s}" for i in ("raw", "spectrogram", "both") for s in ("whole", "segmented")} | {
        "table2/spectrogram_segmented_dropout",
        "table2/both_segmented_dropout",
    }


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("cell", CELLS, ids=lambda p: p.stem)
def test_every_cell_resolves_on_every_profile(profile, cell):
    cfg = load_config(profile_path(profile), cell)
    assert cfg.profile == profile
    assert cfg.cell == cell.relative_to(PARAMS_DIR).with_suffix("").as_posix()  # a cell names itself
    assert cfg.segmented == ("segmented" in cell.stem)
    assert cfg.dropout == (0.2 if cell.parent.name == "table2" else 0.0)


def test_paper_profile_has_the_papers_shapes():
    cfg = load_profile("paper")
    assert (cfg.sample_rate, cfg.clip_samples, cfg.n_fft, cfg.hop) == (44100, 10**6, 2048, 1024)
    assert cfg.n_bins == 1025  # the paper's (1025, 977) spectrogram
    assert cfg.clip_samples // cfg.hop + 1 == 977
    assert cfg.steps(cfg.clip_samples) == 974  # the paper's "[1, 974/s]"
    assert cfg.steps(cfg.segment_samples) == 126
    assert (cfg.segment_hop, cfg.n_segments) == (2**16, 14)
    assert (cfg.batch_size, cfg.epochs, cfg.lr, cfg.channels, cfg.dense) == (50, 15, 5e-4, 256, [300, 150])


def test_later_files_win(tmp_path):
    a = write(tmp_path, "epochs: 3\ndropout: 0.2\n", "a.yaml")
    b = write(tmp_path, "epochs: 7\n", "b.yaml")
    cfg = load_config(profile_path("smoke"), a, b, overrides={"seeds": [4, 5]})
    assert (cfg.epochs, cfg.dropout, cfg.seeds) == (7, 0.2, [4, 5])


def test_defaults_are_the_smoke_profile_data():
    """A run with no params shares data/synth-smoke with the smoke profile: same data settings."""
    data_keys = [
        "data_source",
        "data_dir",
        "subset",
        "synth_tracks_per_genre",
        "synth_seconds",
        "synth_sample_rate",
        "synth_seed",
        "synth_bad_cases",
        "synth_validation_fraction",
        "synth_test_fraction",
        "sample_rate",
        "clip_samples",
        "clip_rule",
        "min_clip_fraction",
    ]
    default, smoke = Config().to_dict(), load_profile("smoke").to_dict()
    assert {k: default[k] for k in data_keys} == {k: smoke[k] for k in data_keys}


def test_unknown_key_names_file_and_nearest_key(tmp_path):
    path = write(tmp_path, "inptu: raw\n")
    with pytest.raises(ConfigError, match=r"cell\.yaml: unknown key 'inptu'\. Did you mean 'input'\?"):
        load_config(profile_path("smoke"), path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("input: rwa\n", r"key 'input': got 'rwa' \(str\), expected one of 'raw', 'spectrogram', 'both'"),
        ("epochs: 2.5\n", r"key 'epochs': got 2\.5 \(float\), expected an integer"),
        ("segmented: 'yes'\n", r"key 'segmented': got 'yes' \(str\), expected true or false"),
        ("seeds: 3\n", r"key 'seeds': got 3 \(int\), expected a list of int"),
        ("seeds: [0, x]\n", r"key 'seeds\[1\]': got 'x'"),
        ("dropout: 1.5\n", r"key 'dropout': must be in \[0, 1\), got 1\.5"),
        ("epochs: 0\n", r"key 'epochs': must be > 0, got 0"),
        ("channels: 33\n", r"key 'channels': must be even"),
        ("segment_overlap: 0.99999\n", r"key 'segment_overlap': 0.99999 leaves a segment hop of 0 samples"),
        ("segment_samples: 256\n", r"key 'segment_samples': 256 samples give 0 steps"),
        (
            "synth_test_fraction: 0.95\n",
            r"'synth_validation_fraction' \+ 'synth_test_fraction': 0\.1 \+ 0\.95 leave no",
        ),
        ("synth_test_fraction: 0\n", r"key 'synth_test_fraction': must be in \(0, 1\), got 0"),
        ("- a\n- b\n", r"expected a mapping of keys to values, got list"),
        ("epochs: [\n", r"not valid YAML"),
    ],
)
def test_bad_values_are_refused_with_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(profile_path("smoke"), path)
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such params file"):
        load_config(tmp_path / "nope.yaml")


def test_ints_are_accepted_for_floats_but_not_bools_for_ints():
    assert from_dict({"lr": 1}).lr == 1.0
    with pytest.raises(ConfigError, match="key 'epochs'"):
        from_dict({"epochs": True})


def test_cli_prints_config_and_fails_with_exit_2(tmp_path):
    cli = [sys.executable, "-m", "fmareport.cli", "config"]
    ok = subprocess.run(cli + ["paper", str(CELLS[0])], capture_output=True, text=True)
    assert ok.returncode == 0 and "n_fft: 2048" in ok.stdout
    bad = subprocess.run(cli + ["demo", str(write(tmp_path, "epoch: 3\n"))], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "unknown key 'epoch'. Did you mean 'epochs'?" in bad.stderr


ABLATIONS = sorted(PARAMS_DIR.glob("ablations/*.yaml"))


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_each_ablation_names_its_table_cell_and_changes_one_thing(path):
    from fmareport.config import cell_path, read_yaml

    raw = read_yaml(path)
    assert raw["cell"] == path.relative_to(PARAMS_DIR).with_suffix("").as_posix()
    assert raw["base"].startswith("table") and set(raw) - {"cell", "base"} and len(set(raw) - {"cell", "base"}) == 1
    ablation = load_config(profile_path("demo"), path)
    base = load_config(profile_path("demo"), cell_path(raw["base"]))
    changed = {k for k, v in ablation.to_dict().items() if base.to_dict()[k] != v} - {"cell", "base"}
    assert changed == set(raw) - {"cell", "base"}


def test_the_ablations_cover_the_issue(tmp_path):
    changes = {p.stem: {k: v for k, v in load_config(profile_path("smoke"), p).to_dict().items()} for p in ABLATIONS}
    assert {c["base"] for c in changes.values()} == {"table1/spectrogram_segmented", "table1/both_segmented"}
    assert sorted(c["train_fraction"] for c in changes.values() if c["train_fraction"] < 1) == [0.25, 0.5]
    assert sum(c["spectrogram_scale"] == "log" for c in changes.values()) == 2
    assert sum(c["batch_unit"] == "segments" for c in changes.values()) == 1
    nested = tmp_path / "nested.yaml"
    nested.write_text("cell: ablations/nested\nbase: ablations/train_fraction_25\n")
    with pytest.raises(ConfigError, match="is itself an ablation"):
        load_config(profile_path("smoke"), nested)
