"""The config layer: params files resolve as documented, and bad ones are refused clearly."""

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from fmareport.cli import main
from fmareport.config import (
    FLAT_KEYS,
    MAX_PARAMS_BYTES,
    MAX_SHOWN,
    NUMBER_FREE_KEYS,
    ONLY_WITH,
    PARAMS_DIR,
    RESUME_FREE_KEYS,
    SECTIONS,
    Config,
    ConfigError,
    ModelSettings,
    RunSettings,
    SynthSettings,
    from_dict,
    load_cell,
    load_config,
    load_profile,
    parse_yaml,
    profile_path,
    synth_settings,
)
from fmareport.inputs import INPUTS

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
    assert cfg.model.segmented == ("segmented" in cell.stem)
    assert cfg.model.dropout == (0.2 if cell.parent.name == "table2" else 0.0)


def test_paper_profile_has_the_papers_shapes():
    cfg = load_profile("paper")
    assert (cfg.store.sample_rate, cfg.store.clip_samples, cfg.model.n_fft, cfg.model.hop) == (44100, 10**6, 2048, 1024)
    assert cfg.model.n_bins == 1025  # the paper's (1025, 977) spectrogram
    assert cfg.store.clip_samples // cfg.model.hop + 1 == 977
    assert cfg.model.steps(cfg.store.clip_samples) == 974  # the paper's "[1, 974/s]"
    assert cfg.model.steps(cfg.model.segment_samples) == 126
    assert (cfg.model.segment_hop, cfg.n_segments) == (2**16, 14)
    assert (cfg.train.batch_size, cfg.schedule.epochs, cfg.train.lr, cfg.model.channels, cfg.model.dense) == (
        50,
        15,
        5e-4,
        256,
        [300, 150],
    )


def test_later_files_win(tmp_path):
    a = write(tmp_path, "epochs: 3\ndropout: 0.2\n", "a.yaml")
    b = write(tmp_path, "epochs: 7\n", "b.yaml")
    cfg = load_config(profile_path("smoke"), a, b, overrides={"seeds": [4, 5]})
    assert (cfg.schedule.epochs, cfg.model.dropout, cfg.schedule.seeds) == (7, 0.2, [4, 5])


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
            r"fractions 0\.1 \+ 0\.95 \(keys 'synth_validation_fraction' and 'synth_test_fraction', .*\) leave no",
        ),
        ("synth_test_fraction: 0\n", r"key 'synth_test_fraction': must be in \(0, 1\), got 0"),
        ("- a\n- b\n", r"expected a mapping of keys to values, got list"),
        ("epochs: [\n", r"line 2: not valid YAML: expected the node content"),
        # numpy takes seeds in [0, 2**32): a negative one used to fail in numpy after prepare
        ("seeds: [-1]\n", r"key 'seeds\[0\]': must be in \[0, 4294967296\), got -1"),
        ("seeds: [0, 4294967296]\n", r"key 'seeds\[1\]': must be in \[0, 4294967296\), got 4294967296"),
        ("synth_seed: -1\n", r"key 'synth_seed': must be >= 0, got -1"),
        ("lr: .inf\n", r"key 'lr': must be a finite number, got inf"),  # trained to a NaN loss and a failed cell before
        # hostile YAML (docs/faults.md, case 13)
        ("epochs: 2\ndropout: 0.0\nepochs: 3\n", r"line 3: key 'epochs' given twice \(first on line 1\); keep one"),
        ("dense: {a: 1, a: 2}\n", r"line 1: key 'a' given twice"),
        ("<<: {epochs: 3}\n", r"line 1: merge key '<<' refused; write the keys out"),
        ("dense: *nothing\n", r"line 1: YAML alias \*nothing refused"),
        ("dense: " + "[" * 9 + "1" + "]" * 9 + "\n", r"line 1: nested more than 8 deep"),
        ("epochs: " + "1" * 5000 + "\n", r"not a value a config holds: Exceeds the limit \(4300 digits\)"),
    ],
)
def test_bad_values_are_refused_with_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(profile_path("smoke"), path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert len(str(err.value)) < 400  # the 5000-digit value is not echoed


def billion_laughs(levels: int = 9) -> str:
    """`dense` as nine nested aliases of nine: 9**9 (387 million) ones when expanded."""
    lines = ["dense:", "  - &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_its_first_anchor(tmp_path, capsys):
    """It used to hang `fmareport config` (the message expanded the value); now the loader
    stops at the first anchor and the command exits 2 naming the file and line."""
    path = write(tmp_path, billion_laughs())
    assert main(["config", "smoke", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"fmareport config: {path}: line 2: YAML anchor &l0 refused (params files take no anchors or aliases: "
        "they can expand without bound); write the value out\n"
    )


def test_300000_seeds_with_one_repeat_are_checked_at_once():
    """The repeat check is linear (it was list.count in a loop: minutes) and its message is short."""
    with pytest.raises(ConfigError, match=r"key 'seeds': each seed once .*, got \[0, 1, 2, .*\.\.\.\]; \[5\] repeated"):
        from_dict({"seeds": [*range(300_000), 5]})
    assert from_dict({"seeds": list(range(300_000))}).schedule.seeds[-1] == 299_999


def test_params_text_over_the_size_cap_is_refused_unread(tmp_path):
    big = write(tmp_path, "cell: '" + "x" * 3_000_000 + "'\n")
    with pytest.raises(ConfigError, match=r"more than 64 KiB of YAML") as err:
        load_config(profile_path("smoke"), big)
    assert str(err.value).startswith(f"{big}: ") and len(str(err.value)) < 400
    with pytest.raises(ConfigError, match=r"^overrides: more than 64 KiB"):
        load_cell("smoke", None, "epochs: 2\n" + "#" * MAX_PARAMS_BYTES)
    assert parse_yaml("epochs: 2\n#" + "." * (MAX_PARAMS_BYTES - 20), "overrides") == {"epochs": 2}


def test_set_values_go_through_the_same_reader(capsys):
    """`fmareport run --set` is refused (exit 2) by the params reader before anything runs."""
    assert main(["run", "--profile", "smoke", "--cell", "table1/raw_whole", "--set", "dense=[*a]"]) == 2
    assert capsys.readouterr().err.startswith("fmareport run: --set dense: line 1: YAML alias *a refused")


def test_long_values_are_shortened_in_messages(tmp_path):
    """A 40 KB value (under the size cap) is named in at most MAX_SHOWN characters."""
    path = write(tmp_path, f"cell: '{'x' * 40_000}'\nseeds: [{', '.join(['a'] * 2000)}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(profile_path("smoke"), path)
    message = str(err.value)
    assert f"key 'cell': '{'x' * 20}" in message and "x" * (MAX_SHOWN + 1) not in message
    assert message.count("key 'seeds[") == 4 and message.endswith("(and 1996 more errors)")
    assert len(message) < 1000


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such params file"):
        load_config(tmp_path / "nope.yaml")


def test_ints_are_accepted_for_floats_but_not_bools_for_ints():
    assert from_dict({"lr": 1}).train.lr == 1.0
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
    ablation = load_config(profile_path("demo"), path).to_dict()
    base = load_config(profile_path("demo"), cell_path(raw["base"])).to_dict()
    changed = {k for k, v in ablation.items() if base.get(k) != v} - {"cell", "base"}
    new_to_the_run = set(ablation) - set(base)  # a key of ONLY_WITH the change brings in: n_mels with mel
    assert new_to_the_run <= set(ONLY_WITH) and changed == set(raw) - {"cell", "base"} | new_to_the_run


def test_the_ablations_cover_the_issue(tmp_path):
    """Issue 19's: log1p and log-mel on the 2D and 1D+2D segmented cells, batches of segments on
    all three segmented cells, and the fractions of the training split."""
    changes = {p.stem: {k: v for k, v in load_config(profile_path("smoke"), p).to_dict().items()} for p in ABLATIONS}
    segmented = {f"table1/{k}_segmented" for k in INPUTS}
    assert {c["base"] for c in changes.values()} == segmented
    assert sorted(c["train_fraction"] for c in changes.values() if c["train_fraction"] < 1) == [0.25, 0.5]
    for scale in ("log", "mel"):
        bases = {c["base"] for c in changes.values() if c["spectrogram_scale"] == scale}
        assert bases == {"table1/spectrogram_segmented", "table1/both_segmented"}, scale
    assert {c["base"] for c in changes.values() if c["batch_unit"] == "segments"} == segmented
    nested = tmp_path / "nested.yaml"
    nested.write_text("cell: ablations/nested\nbase: ablations/train_fraction_25\n")
    with pytest.raises(ConfigError, match="is itself an ablation"):
        load_config(profile_path("smoke"), nested)


# --- sections ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_a_config_is_sections_and_its_params_form_is_flat(profile):
    """Every cell of every profile: written flat (one key per setting, as a params file), read back the same."""
    for path in CELLS + ABLATIONS:
        cfg = load_cell(profile, path.relative_to(PARAMS_DIR).with_suffix("").as_posix())
        flat, every = cfg.to_dict(), cfg.to_dict(every_key=True)
        assert list(every) == list(FLAT_KEYS) and Config.model_validate(every) == cfg
        # The run's settings: every key but those of ONLY_WITH whose other key has another value.
        assert list(flat) == [k for k in FLAT_KEYS if k not in ONLY_WITH or every[ONLY_WITH[k][0]] == ONLY_WITH[k][1]]
        assert Config.model_validate(flat).to_dict() == flat
        assert ("n_mels" in flat) == (cfg.model.spectrogram_scale == "mel")
        assert all(not isinstance(v, dict) for v in flat.values())
        assert flat["synth_seconds"] == cfg.synth.seconds and flat["n_fft"] == cfg.model.n_fft
        assert flat["data_source"] == cfg.data.source and flat["epochs"] == cfg.schedule.epochs


def test_the_lists_of_keys_are_sections():
    """What changes no number is the run section; what a resume may change adds the schedule."""
    assert NUMBER_FREE_KEYS == set(RunSettings.model_fields)
    assert RESUME_FREE_KEYS == set(RunSettings.model_fields) | {"seeds", "epochs"}
    assert set(SECTIONS) == {"data", "synth", "store", "model", "train", "schedule", "compute", "run"}


def test_a_section_written_as_a_mapping_is_refused(tmp_path):
    path = write(tmp_path, "model:\n  n_fft: 512\n")
    with pytest.raises(ConfigError, match=r"cell\.yaml: key 'model' is a section of the config; params files are flat"):
        load_config(path)


def test_a_cross_section_check_names_its_key():
    with pytest.raises(ConfigError, match=r"key 'segment_samples': 32768 is longer than clip_samples 16384"):
        from_dict({"segment_samples": 32768})
    with pytest.raises(ConfigError, match=r"key 'synth_test_fraction': must be in \(0, 1\), got 1.5"):
        from_dict({"synth_test_fraction": 1.5})


def test_synth_options_are_the_synth_section(capsys):
    """`fmareport synth` has one option per SynthSettings field, with the config's defaults."""
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    for name, field in SynthSettings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in text and f"(default: {field.default})" in " ".join(text.split())
    with pytest.raises(ConfigError, match=r"^option --seconds: must be in \(0, 600\], got 0.0$"):
        synth_settings({"seconds": 0.0})
    assert synth_settings({"seconds": 3.0}) == SynthSettings(seconds=3.0)
    assert main(["synth", "/nonexistent/x", "--seconds", "0"]) == 2
    assert capsys.readouterr().err.strip() == "fmareport synth: option --seconds: must be in (0, 600], got 0.0"


def test_n_mels_is_a_setting_of_the_mel_input_only():
    """A profile names n_mels for its mel cells; elsewhere it changes no number, so it is not in the run's
    settings (to_dict: results files, the reference) nor its settings hash: those cells are as before it."""
    from fmareport.experiment import settings_hash

    linear = load_profile("smoke")
    assert "n_mels" not in linear.to_dict() and linear.to_dict(every_key=True)["n_mels"] == 64
    assert settings_hash(linear.replace(n_mels=32)) == settings_hash(linear)
    assert linear.replace(n_mels=1000).model.n_bins == 129  # not checked against the bins: not used
    mel = linear.replace(spectrogram_scale="mel")
    assert mel.to_dict()["n_mels"] == 64 and mel.model.n_bins == 64
    assert settings_hash(mel.replace(n_mels=32)) != settings_hash(mel) != settings_hash(linear)
    assert load_cell("demo", "ablations/mel_both_segmented").model.n_bins == 128  # the demo profile's


@pytest.mark.parametrize(
    "n_mels, message",
    [
        (87, r"key 'n_mels': 87 mel bands at 8000 Hz from n_fft 256 \(129 bins, 31\.25 Hz apart\): band\(s\) \[0\] "
         r"get no bin, and an empty band is a constant input row; lower n_mels to 86 or fewer, or raise n_fft"),
        (10**9, r"key 'n_mels': 1000000000 mel bands .*: more than 258 bands never all get a bin, .* to 86 or fewer"),
        (0, r"key 'n_mels': must be > 0, got 0"),
        (64.0, r"key 'n_mels': got 64\.0 \(float\), expected an integer"),
    ],
)  # fmt: skip
def test_mel_bands_without_a_bin_are_refused_naming_n_mels(tmp_path, n_mels, message):
    cell = write(tmp_path, f"spectrogram_scale: mel\nn_mels: {n_mels}\n")
    with pytest.raises(ConfigError, match=rf"cell\.yaml: {message}"):
        load_config(profile_path("smoke"), cell)
    assert load_cell("smoke", None, {"spectrogram_scale": "mel", "n_mels": 86}).model.n_bins == 86  # the most


def test_every_input_kind_builds_its_first_layer():
    """The registry is what the config accepts and what the model builds: one conv per branch,
    the maps shared among them."""
    import torch

    from fmareport.model import Net

    assert set(typing.get_args(ModelSettings.model_fields["input"].annotation)) == set(INPUTS)
    for kind in INPUTS.values():
        model = ModelSettings(input=kind.name, channels=8, dense=[4], n_fft=16, hop=8)
        first = Net(model).conv1
        built = tuple(b for b, conv in (("raw", first.raw), ("spectrogram", first.spec)) if conv is not None)
        assert built == kind.branches
        assert Net(model).conv1(torch.zeros(2, 256)).shape == (2, 8, 256 // 8 - 2)  # (B, C, T)


@pytest.mark.parametrize("text", ["1: 2\n", "true: 2\n", "~: 2\n"])
def test_a_key_that_is_not_text_is_refused_by_name(tmp_path, text):
    with pytest.raises(ConfigError, match=r"cell\.yaml: key .* is not a name: a key is text, such as n_fft"):
        load_config(write(tmp_path, text))


def test_an_optional_key_of_the_wrong_kind_says_what_it_takes():
    with pytest.raises(ConfigError, match=r"key 'base': got 3 \(int\), expected a string"):
        from_dict({"base": 3})


def test_a_section_given_whole_beside_flat_keys_loses_neither():
    """Internal callers may pass a section (a dict or a model) with flat keys beside it."""
    given = {"model": {"n_fft": 512}, "hop": 64}
    for raw in (given, {"hop": 64, "model": ModelSettings(n_fft=512)}):
        cfg = Config.model_validate(raw)
        assert (cfg.model.n_fft, cfg.model.hop) == (512, 64)
    assert given == {"model": {"n_fft": 512}, "hop": 64}  # not changed


def test_a_clip_is_seen_as_its_segments_or_whole():
    demo = load_profile("demo")  # 65536-sample clips, 16384-sample segments at 50 %: 7 segments
    assert demo.replace(segmented=True).windows_per_clip == demo.n_segments == 7
    assert demo.replace(segmented=False).windows_per_clip == 1
