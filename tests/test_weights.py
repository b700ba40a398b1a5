"""The weights and embeddings a cell keeps for the figures of what its network learned
(fmareport.weights)."""

import hashlib
import io
import json

import numpy as np
import pytest
import torch

from fmareport.experiment import run_cell
from fmareport.model import Net
from fmareport.results import ResultsError, read_results, validate
from fmareport.train import seed_everything
from fmareport.weights import (
    FIRST_LAYER_KEYS,
    embeddings_blob,
    embeddings_path,
    load_embeddings,
    load_weights,
    weights_path,
)

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
    assert results.weights_sha1 == hashlib.sha1(weights_path(path).read_bytes()).hexdigest()
    assert read_results(path).weights_sha1 == results.weights_sha1  # the file on disk names it too
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
    older = results.model_copy(update={"weights_sha1": None})
    with pytest.raises(ResultsError, match="names no weights file"):
        load_weights(own, older)


def test_the_kept_files_sha1s_are_optional_and_checked(both_cell):
    _, path, _ = both_cell
    obj = json.loads(path.read_text())
    older = validate({k: v for k, v in obj.items() if k not in ("weights_sha1", "embeddings_sha1")})  # older files
    assert (older.weights_sha1, older.embeddings_sha1) == (None, None)
    for key in ("weights_sha1", "embeddings_sha1"):
        with pytest.raises(ResultsError, match=f"{key}: String should match pattern"):
            validate({**obj, key: "a" * 39})


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
    assert (
        " of 4 ("
        in filters.peak_facts(learned, initial, cfg.store.sample_rate)["filters with a clear peak, learned / initial"]
    )


def test_a_cell_keeps_every_seeds_test_embeddings_from_its_test_pass(both_cell, tiny_store):
    cfg, path, results = both_cell
    assert embeddings_path(path) == path.with_name("both_whole.embeddings.npz") and embeddings_path(path).is_file()
    assert results.embeddings_sha1 == hashlib.sha1(embeddings_path(path).read_bytes()).hexdigest()
    assert read_results(path).embeddings_sha1 == results.embeddings_sha1
    kept = load_embeddings(path, read_results(path))
    assert kept.seeds == [3, 4] and kept.track_ids.tolist() == results.test.track_ids
    assert kept.values.shape == (2, 4, 150) and kept.values.dtype == np.float16  # seeds, test tracks, dense[-1]
    # Seed 3's are its final network's penultimate activations of the test clips (float16 of them).
    net = Net(cfg.model)
    net.load_state_dict(load_weights(path, results)["final"])
    net.eval()
    rows = np.sort(tiny_store.split_indices("test"))
    with torch.no_grad():
        z = net.embed(torch.from_numpy(tiny_store.audio[rows]).float() / 32768).numpy()  # (4, 150)
    np.testing.assert_allclose(kept.of_seed(3), z, rtol=2e-3, atol=1e-3)  # float16: 11 bits
    assert not np.allclose(kept.of_seed(4), kept.of_seed(3))  # another seed, another network


def test_embeddings_the_results_do_not_name_or_do_not_fit_are_refused(both_cell, tmp_path):
    _, path, results = both_cell
    own = tmp_path / "both_whole.json"
    own.write_bytes(path.read_bytes())
    with pytest.raises(ResultsError, match="cannot read the embeddings the results name"):
        load_embeddings(own, results)
    blob = bytearray(embeddings_path(path).read_bytes())
    blob[-1] ^= 1
    embeddings_path(own).write_bytes(bytes(blob))
    with pytest.raises(ResultsError, match="not the embeddings .* names \\(SHA1 differs\\)"):
        load_embeddings(own, results)
    with pytest.raises(ResultsError, match="names no embeddings file .*fmareport run --profile tiny"):
        load_embeddings(own, results.model_copy(update={"embeddings_sha1": None}))
    # A file the results name (its SHA1 given) that holds other seeds, another width, or no arrays but a pickle.
    ids = results.test.track_ids
    for blob, message in (
        (embeddings_blob({3: np.zeros((4, 150))}, ids), "holds other seeds or test tracks"),
        (embeddings_blob({3: np.zeros((4, 300)), 4: np.zeros((4, 300))}, ids), r"float16 \(2, 4, 300\), expected "),
        (_pickled_npz(), "not an embeddings file"),
    ):
        embeddings_path(own).write_bytes(blob)
        sha1 = hashlib.sha1(blob).hexdigest()
        with pytest.raises(ResultsError, match=message):
            load_embeddings(own, results.model_copy(update={"embeddings_sha1": sha1}))


def _pickled_npz() -> bytes:
    """An npz whose array needs pickle to load (an object array): np.load(allow_pickle=False) refuses it."""
    buf = io.BytesIO()
    np.savez(buf, seeds=np.array([3, 4]), track_ids=np.array([{"code": 1}], dtype=object), embeddings=np.zeros(1))
    return buf.getvalue()


def test_embeddings_beyond_float16_are_clipped_to_its_range():
    blob = embeddings_blob({0: np.array([[1e6, -1e6, 0.5]])}, [7])
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        assert npz["embeddings"].tolist() == [[[65504.0, -65504.0, 0.5]]] and npz["track_ids"].tolist() == [7]
