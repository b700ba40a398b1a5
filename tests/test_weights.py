"""The weights a cell keeps for the figures of what its network learned (fmareport.weights, issue 19)."""

import json

import pytest
import torch

from fmareport.experiment import run_cell
from fmareport.model import Net
from fmareport.results import ResultsError, read_results, validate
from fmareport.train import seed_everything
from fmareport.weights import FIRST_LAYER_KEYS, load_weights, weights_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def both_cell(tiny_config, tiny_store, tmp_path_factory):
    """A tiny 1D+2D cell, two seeds of one epoch, run end to end: (config, results file path, results)."""
    tmp = tmp_path_factory.mktemp("weights")
    cfg = tiny_config.replace(
        cell="table1/both_whole",
        input="both",
        channels=8,
        epochs=1,
        seeds=[3, 4],
        deterministic=True,
        results_dir=str(tmp / "results"),
        build_dir=str(tmp / "build"),
    )
    results = run_cell(cfg, progress=False)
    return cfg, tmp / "results" / "tiny" / "table1" / "both_whole.json", results


def test_a_cell_keeps_its_first_seeds_final_weights_and_initial_first_layer(both_cell):
    cfg, path, results = both_cell
    assert weights_path(path) == path.with_name("both_whole.weights.pt") and weights_path(path).is_file()
    assert results.weights.file == "both_whole.weights.pt" and results.weights.seed == 3
    assert read_results(path).weights == results.weights  # the file on disk names it too
    kept = load_weights(path, read_results(path))
    assert kept["seed"] == 3
    net = Net(cfg.model)
    assert kept["final"].keys() == net.state_dict().keys()
    net.load_state_dict(kept["final"])  # a whole model again
    # The initial first layer is the seed's initialisation: the same seed, the same weights.
    seed_everything(3, True)
    fresh = Net(cfg.model).state_dict()
    assert sorted(kept["initial"]) == sorted(FIRST_LAYER_KEYS)
    for key in FIRST_LAYER_KEYS:
        assert kept["initial"][key].shape == fresh[key].shape
        assert torch.equal(kept["initial"][key], fresh[key])
        assert not torch.equal(kept["final"][key], fresh[key])  # training moved it
    assert kept["initial"]["conv1.raw.weight"].shape == (4, 1, 3 * cfg.model.hop)
    assert kept["initial"]["conv1.spec.weight"].shape == (4, 1, cfg.model.n_fft // 2 + 1, 4)


def test_weights_the_results_do_not_name_are_refused(both_cell, tmp_path):
    _, path, results = both_cell
    own = tmp_path / "both_whole.json"
    own.write_bytes(path.read_bytes())
    with pytest.raises(ResultsError, match="cannot read the weights"):
        load_weights(own, results)
    # Another run's weights, or a run killed between its weights and its results: the SHA1 differs.
    blob = bytearray(weights_path(path).read_bytes())
    blob[-1] ^= 1
    weights_path(own).write_bytes(bytes(blob))
    with pytest.raises(ResultsError, match="SHA1 differs"):
        load_weights(own, results)
    older = results.model_copy(update={"weights": None})
    with pytest.raises(ResultsError, match="names no weights file"):
        load_weights(own, older)


def test_the_weights_record_is_optional_and_checked(both_cell):
    _, path, _ = both_cell
    obj = json.loads(path.read_text())
    assert validate({k: v for k, v in obj.items() if k != "weights"}).weights is None  # older files
    with pytest.raises(ResultsError, match="first seed"):
        validate({**obj, "weights": {**obj["weights"], "seed": 4}})
    with pytest.raises(ResultsError, match="weights/file"):
        validate({**obj, "weights": {**obj["weights"], "file": "raw_whole.weights.pt"}})


def test_the_kept_weights_make_the_filter_figure_and_paragraph(both_cell):
    import matplotlib.pyplot as plt

    from fmareport.report import filters

    cfg, path, results = both_cell
    kept = load_weights(path, results)
    fig = filters.learned_filters(kept, cfg)
    assert len(fig.axes) == 6  # 1D and 2D rows: initial, learned, colour bar
    plt.close(fig)
    learned = filters.branch_responses(kept["final"], cfg)["conv1.raw.weight"]
    initial = filters.branch_responses(kept["initial"], cfg)["conv1.raw.weight"]
    assert learned.values.shape[0] == 4
    assert "of 4 (" in filters.filters_paragraph(learned, initial, cfg.store.sample_rate)
