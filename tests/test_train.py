"""Training: segment aggregation, one step per input, learning, resume, divergence, GPU."""

import math
import os
import random
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fmareport import device as device_mod
from fmareport import train
from fmareport.config import load_profile
from fmareport.data.fma import GENRES
from fmareport.device import DeviceError, device_policy, pick_device
from fmareport.experiment import run_cell
from fmareport.model import Net
from fmareport.results import Predictions, SeedResult, TestTracks
from fmareport.train import DivergedError, batches, load_clips, seed_everything, track_log_probs, train_seed, windows

INPUTS = ["raw", "spectrogram", "both"]
RECORD_KEYS = {"seed", "history", "test_acc_at_best", "seconds", "segments_per_second", "test_probs", "policy"}
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}

# A small learnable problem: 8 classes of pure tones, half an octave apart (250 Hz ... 2.8 kHz),
# each track with a random pitch offset (+-3 %), phase and loudness, in white noise; 1 s at 8 kHz.
TONE_RATE = 8000
TONE_SAMPLES = 8192
TONE_HZ = 250 * 2 ** (np.arange(len(GENRES)) / 2)


def accuracy_of(record: SeedResult, store) -> float:
    """A seed record's test accuracy, as a results file derives it from its predictions."""
    return Predictions(TestTracks.of(store), [record.test_probs]).accuracies[0]


@dataclass
class ArrayStore:
    """The part of a ClipStore that train_seed uses, over in-memory arrays."""

    audio: np.ndarray  # (n, N) int16
    labels: np.ndarray  # (n,) int64
    split: np.ndarray  # (n,) "training" | "validation" | "test"

    def split_indices(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name).astype(np.int64)


def tone_store(per_class=(12, 3, 3), seed=0) -> ArrayStore:
    rng = np.random.default_rng(seed)
    t = np.arange(TONE_SAMPLES) / TONE_RATE
    audio, labels, split = [], [], []
    for name, k in zip(("training", "validation", "test"), per_class):
        for c, hz in enumerate(TONE_HZ):
            for _ in range(k):
                f = hz * rng.uniform(0.97, 1.03)
                x = rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
                x = x + 0.05 * rng.standard_normal(TONE_SAMPLES)
                audio.append(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16))
                labels.append(c)
                split.append(name)
    # Shuffle the rows, so that no code can lean on the store's order.
    order = rng.permutation(len(labels))
    return ArrayStore(np.stack(audio)[order], np.array(labels, np.int64)[order], np.array(split)[order])


@pytest.fixture(scope="module")
def tones() -> ArrayStore:
    return tone_store()


def tone_config(**overrides):
    """smoke profile (32 maps, n_fft 256, hop 128) on 1 s clips and 0.26 s segments (T = 14)."""
    return load_profile(
        "smoke",
        overrides={
            "sample_rate": TONE_RATE,
            "clip_samples": TONE_SAMPLES,
            "segment_samples": 2048,
            "batch_size": 16,
            "device": "cpu",
            **overrides,
        },
    )


def without_seconds(history):
    return [h.model_dump(exclude={"seconds"}) for h in history]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# --- the pieces --------------------------------------------------------------------------


def test_track_probabilities_are_the_normalised_sum_of_segment_softmaxes():
    # track 0: segments vote class 0 (0.7) and class 1 (0.5); the sum [0.8, 0.7, 0.5] picks 0
    # track 1: [0.2, 0.2, 0.6] + [0.3, 0.3, 0.4] = [0.5, 0.5, 1.0] -> normalised [0.25, 0.25, 0.5]
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]], dtype=torch.float64)
    logits = p.log() + 3.0  # softmax is shift invariant: softmax(logits) == p
    logp = track_log_probs(logits, n_segments=2)  # (2 tracks, 3 classes)
    torch.testing.assert_close(
        logp.exp().double(), torch.tensor([[0.4, 0.35, 0.25], [0.25, 0.25, 0.5]], dtype=torch.float64)
    )
    assert logp.argmax(-1).tolist() == [0, 2]
    # validation loss for labels [1, 2]: mean of -log 0.35 and -log 0.5
    loss = F.nll_loss(logp, torch.tensor([1, 2]))
    assert loss.item() == pytest.approx((-math.log(0.35) - math.log(0.5)) / 2, rel=1e-6)


def test_one_segment_is_plain_cross_entropy():
    logits = torch.randn(5, 8)
    y = torch.randint(0, 8, (5,))
    torch.testing.assert_close(F.nll_loss(track_log_probs(logits, 1), y), F.cross_entropy(logits, y))


def test_windows_are_each_clips_segments_in_order():
    cfg = load_profile("paper", overrides={"segmented": True})
    x = torch.arange(2 * cfg.store.clip_samples, dtype=torch.float32).view(2, -1)  # (B, N)
    w = windows(x, cfg)  # (B * S, W)
    assert cfg.n_segments == 14 and w.shape == (2 * 14, 131072)
    for i in range(2):
        for j in range(14):
            start = j * cfg.model.segment_hop
            assert torch.equal(w[i * 14 + j], x[i, start : start + cfg.model.segment_samples])
    whole = load_profile("paper")
    assert windows(x, whole) is x


def test_load_clips_scales_int16_to_unit_range():
    audio = np.array([[-32768, 0, 16384, 32767], [1, 2, 3, 4]], dtype=np.int16)
    x = load_clips(audio, np.array([0]), device_policy(tone_config()))
    assert x.dtype == torch.float32
    assert x.tolist() == [[-1.0, 0.0, 0.5, 32767 / 32768]]


def test_batches_cover_every_row_once_in_near_equal_sorted_batches():
    rows = np.random.default_rng(0).permutation(103)
    parts = batches(rows, 50)
    assert [len(b) for b in parts] == [35, 34, 34]
    assert all((np.diff(b) > 0).all() for b in parts)
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert [len(b) for b in batches(np.arange(6400), 50)] == [50] * 128  # the paper: 128 steps


@pytest.mark.parametrize("kind", INPUTS)
def test_one_training_step_moves_every_parameter(kind, tones):
    cfg = tone_config(input=kind, segmented=True)
    seed_everything(0)
    model = Net(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    before = [p.detach().clone() for p in model.parameters()]
    rows = np.arange(16)
    x = windows(load_clips(tones.audio, rows, device_policy(cfg)), cfg)  # (16 * S, W)
    y = torch.from_numpy(tones.labels[rows]).repeat_interleave(cfg.n_segments)
    loss = F.cross_entropy(model(x), y)
    assert math.isfinite(loss.item())
    loss.backward()
    opt.step()
    names = [n for n, _ in model.named_parameters()]
    unmoved = [n for n, p, b in zip(names, model.parameters(), before) if torch.equal(p, b)]
    assert not unmoved, f"no update for {unmoved}"


@pytest.mark.parametrize("kind", INPUTS)
def test_a_bf16_autocast_step_on_the_cpu_gives_float32_logits_and_every_gradient(kind, tones, monkeypatch):
    """What `amp: true` runs on a GPU, run by CPU autocast: the same code, no GPU needed (a CPU with
    bf16 instructions is faked: without them the policy runs fp32, test_gpu.py)."""
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    cfg = tone_config(input=kind, segmented=True, amp=True)
    policy = device_policy(cfg)
    assert policy.amp_dtype == torch.bfloat16 and policy.device.type == "cpu"
    seed_everything(0)
    model = Net(cfg.model)
    rows = np.arange(16)
    seen = {}
    model.conv2.conv.register_forward_hook(lambda m, a, out: seen.update(conv2=out.dtype))
    with policy.autocast():
        logits = model(windows(load_clips(tones.audio, rows, policy), cfg))  # (16 * S, 8)
    assert seen["conv2"] == torch.bfloat16, "autocast did not run the convolutions in bf16"
    assert logits.dtype == torch.float32, "the output layer must run in fp32 (no bf16 argmax ties)"
    loss = F.cross_entropy(logits, torch.from_numpy(tones.labels[rows]).repeat_interleave(cfg.n_segments))
    assert math.isfinite(loss.item())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("segmented", [False, True])
def test_the_test_pass_keeps_each_tracks_embedding_from_the_same_forward_pass(segmented, tones):
    """evaluate(embed=True): the predictions are those without it, and each track's embedding is the
    mean over its segments of Net.embed (the penultimate layer, dense[-1] wide), from the same pass."""
    cfg = tone_config(input="both", segmented=segmented)
    policy = device_policy(cfg)
    seed_everything(0)
    model = Net(cfg.model)
    labels = torch.from_numpy(tones.labels)
    rows = tones.split_indices("test")  # 24 tracks, in two batches of 12
    plain = train.evaluate(model, tones.audio, labels, rows, cfg, policy)
    kept = train.evaluate(model, tones.audio, labels, rows, cfg, policy, embed=True)
    assert plain.embeddings is None and kept.embeddings.shape == (24, 150) and kept.embeddings.dtype == np.float32
    assert np.array_equal(kept.probs, plain.probs) and kept.loss == plain.loss
    model.eval()
    with torch.no_grad():
        z = model.embed(windows(load_clips(tones.audio, np.sort(rows), policy), cfg))  # (24 * S, 150)
        probs = track_log_probs(model.head(z), cfg.windows_per_clip).exp()  # (24, 8)
    s = cfg.windows_per_clip
    assert s == (7 if segmented else 1) and z.shape == (24 * s, 150)
    np.testing.assert_allclose(kept.embeddings, z.view(24, s, 150).mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kept.probs, probs.numpy(), rtol=1e-5, atol=1e-7)  # embed + head is the forward


def test_the_embeddings_of_a_bf16_autocast_test_pass_are_float32(tones, monkeypatch):
    """Under autocast (a GPU's amp: true, run here by CPU autocast) Net.embed gives bf16: the kept
    embeddings are float32 means of them, and the predictions those without embed."""
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    cfg = tone_config(input="both", segmented=True, amp=True)
    policy = device_policy(cfg)
    assert policy.amp_dtype == torch.bfloat16
    seed_everything(0)
    model, labels, rows = Net(cfg.model), torch.from_numpy(tones.labels), tones.split_indices("test")
    kept = train.evaluate(model, tones.audio, labels, rows, cfg, policy, embed=True)
    assert kept.embeddings.dtype == np.float32 and kept.embeddings.shape == (24, 150)
    assert np.isfinite(kept.embeddings).all()
    assert np.array_equal(kept.probs, train.evaluate(model, tones.audio, labels, rows, cfg, policy).probs)


def test_the_resident_store_gives_the_numbers_of_the_memmap(tones, tmp_path):
    """store_on_device: always (an int16 tensor, indexed on the device: the GPU's code) against
    never (the memmap, indexed on the host): fp32, deterministic, the same numbers."""
    audio = np.lib.format.open_memmap(tmp_path / "audio.npy", mode="w+", dtype=np.int16, shape=tones.audio.shape)
    audio[:] = tones.audio
    audio.flush()
    store = ArrayStore(np.load(tmp_path / "audio.npy", mmap_mode="r"), tones.labels, tones.split)  # read-only
    cfg = tone_config(input="both", segmented=True, epochs=2, deterministic=True, dropout=0.2)
    memmap = train_seed(cfg.replace(store_on_device="never"), store, seed=3, progress=False)
    resident = train_seed(cfg.replace(store_on_device="always"), store, seed=3, progress=False)
    assert isinstance(train._RESIDENT["tensor"], torch.Tensor) and train._RESIDENT["audio"] is store.audio
    assert without_seconds(resident.history) == without_seconds(memmap.history)
    for key in ("test_probs", "test_acc_at_best", "best_epoch"):
        assert getattr(resident, key) == getattr(memmap, key)


def test_generators_restore_from_a_checkpoint_whose_tensors_were_put_off_the_cpu(tmp_path):
    """A checkpoint loaded with map_location=<a GPU> put the generator states there, and
    torch.set_rng_state refuses them. `meta` stands in for the GPU here (it keeps no data at all):
    the states are plain data, so they come back whatever the tensors' device."""
    seed_everything(7)
    train.save_checkpoint(tmp_path / "seed7.pt", {"rng": train._rng_state(), "weight": torch.ones(3)})

    def draws():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    expected = draws()
    seed_everything(123)  # other states
    ckpt = torch.load(tmp_path / "seed7.pt", map_location="meta", weights_only=True)
    assert ckpt["weight"].device.type == "meta"
    train._set_rng_state(ckpt["rng"])
    assert draws() == expected


def test_a_resident_store_run_cell_warns_nothing(tiny_config, tiny_store, tmp_path):
    """The GPU path's store copy (a read-only memmap into a tensor) once warned 'The given NumPy
    array is not writable' into every notebook; the same copy runs here on the CPU."""
    cfg = tiny_config.replace(
        cell="table1/raw_whole",
        input="raw",
        epochs=1,
        store_on_device="always",
        results_dir=str(tmp_path / "results"),
        build_dir=str(tmp_path / "build"),
    )
    assert not tiny_store.audio.flags.writeable
    train._RESIDENT.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_cell(cfg, progress=False)
    resident = train._RESIDENT["tensor"]  # the resident path ran: the store as a tensor
    assert resident.dtype == torch.int16 and np.array_equal(resident.numpy(), tiny_store.audio)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


# --- training runs -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", INPUTS)
def test_training_learns_tones_well_above_chance(kind, tones):
    """Chance is 1/8; a network that does not learn stays near it (this test then fails)."""
    rec = train_seed(tone_config(input=kind, segmented=True, epochs=6), tones, seed=0, progress=False)
    last = rec.history[-1]
    assert rec.history[0].train_loss > 1.5 * last.train_loss
    assert last.train_acc >= 0.8
    assert last.val_acc >= 0.6
    assert accuracy_of(rec, tones) >= 0.6


def test_killed_run_resumes_to_the_same_numbers(tones, tmp_path, monkeypatch):
    """Deterministic CPU: 3 epochs straight == killed in the middle of epoch 2, then resumed.
    Dropout is on, so the resumed run must also restore torch's RNG from the checkpoint."""
    cfg = tone_config(input="both", segmented=True, dropout=0.2, epochs=3, deterministic=True)
    straight = train_seed(cfg, tones, seed=1, checkpoint_dir=tmp_path / "a", progress=False)

    calls = {"n": 0}
    real = train.load_clips

    def dies_in_epoch_2(*args):  # epoch 1: 6 training + 2 validation batches
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train, "load_clips", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_seed(cfg, tones, seed=1, checkpoint_dir=tmp_path / "b", progress=False)
    monkeypatch.setattr(train, "load_clips", real)
    assert torch.load(tmp_path / "b" / "seed1.pt", weights_only=True)["epoch"] == 1
    resumed = train_seed(cfg, tones, seed=1, checkpoint_dir=tmp_path / "b", progress=False)

    assert without_seconds(resumed.history) == without_seconds(straight.history)
    for key in ("test_probs", "test_acc_at_best", "best_epoch"):
        assert getattr(resumed, key) == getattr(straight, key)
    a = torch.load(tmp_path / "a" / "seed1.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "seed1.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def test_resume_refuses_other_settings(tones, tmp_path):
    train_seed(tone_config(epochs=1), tones, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="lr"):
        train_seed(tone_config(epochs=2, lr=1e-3), tones, seed=0, checkpoint_dir=tmp_path, progress=False)


def test_nan_loss_stops_with_a_clear_message(tones):
    with pytest.raises(
        DivergedError, match=r"loss became (nan|inf) at epoch 1, between steps 1 and 6 of 6.*smaller lr"
    ):
        train_seed(tone_config(lr=1e30, epochs=2), tones, seed=0, progress=False)


def test_clip_length_must_match_the_config(tones):
    with pytest.raises(ValueError, match="clip_samples"):
        train_seed(tone_config(clip_samples=4096), tones, seed=0, progress=False)


def test_record_on_the_tiny_store_follows_the_contract(tiny_store, tiny_config):
    cfg = tiny_config.replace(channels=32, segmented=True, epochs=2, batch_size=16)
    rec = train_seed(cfg, tiny_store, seed=0, progress=False)
    assert isinstance(rec, SeedResult)  # validated by the results schema on creation
    assert set(type(rec).model_fields) == RECORD_KEYS
    assert len(rec.history) == cfg.schedule.epochs and [h.epoch for h in rec.history] == [1, 2]
    n_test = len(tiny_store.split_indices("test"))
    assert np.asarray(rec.test_probs).shape == (n_test, 8)
    assert 1 <= rec.best_epoch <= cfg.schedule.epochs
    assert (rec.test_acc_at_best is None) == (rec.best_epoch == cfg.schedule.epochs)
    assert rec.seconds > 0 and rec.segments_per_second > 0
    test = TestTracks.of(tiny_store)
    rows = np.sort(tiny_store.split_indices("test"))
    assert test.artist_ids == tiny_store.artists[rows].tolist()  # the store's artists, in track order
    assert test.track_ids == tiny_store.index["track_id"].to_numpy()[rows].tolist() == sorted(test.track_ids)


def test_a_corrupt_checkpoint_is_set_aside_and_the_seed_restarts(tones, tmp_path):
    cfg = tone_config(epochs=1)
    (tmp_path / "seed0.pt").write_bytes(b"not a checkpoint at all")
    with pytest.warns(UserWarning, match=r"seed0\.pt: not a readable checkpoint.*starts from scratch"):
        rec = train_seed(cfg, tones, seed=0, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "seed0.pt.corrupt").read_bytes() == b"not a checkpoint at all"
    assert len(rec.history) == 1 and (tmp_path / "seed0.pt").is_file()


def test_a_checkpoint_that_would_run_code_is_refused(tones, tmp_path):
    """torch.load(weights_only=True): a pickle that calls a function on load never runs it."""
    import pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"epoch": 1, "evil": Exploit()}, tmp_path / "seed0.pt", pickle_module=pickle)
    with pytest.warns(UserWarning, match="not a readable checkpoint"):
        train_seed(tone_config(epochs=1), tones, seed=0, checkpoint_dir=tmp_path, progress=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_without_a_usable_gpu_cuda_and_the_paper_profile_stop_naming_the_wheel():
    wheel = re.escape(f"torch {torch.__version__} is built for CUDA {torch.version.cuda}, which needs an NVIDIA driver")
    with pytest.raises(DeviceError, match=f"CUDA is not usable: {wheel}"):
        pick_device(tone_config(device="cuda"))
    paper = load_profile("paper")  # device auto, cpu_fallback false: days on a CPU
    with pytest.raises(DeviceError, match=f"no usable CUDA device \\({wheel}.*device: cpu"):
        pick_device(paper)
    assert pick_device(paper.replace(device="cpu")).type == "cpu"  # asked for: allowed
    assert pick_device(tone_config(device="auto")).type == "cpu"  # cpu_fallback (default true)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_bf16_run_learns_with_the_store_on_the_device(tones):
    rec = train_seed(
        tone_config(input="both", segmented=True, epochs=6, device="cuda", amp=True), tones, seed=0, progress=False
    )
    assert train._RESIDENT["tensor"].device.type == "cuda"
    assert accuracy_of(rec, tones) >= 0.6


# --- beyond the paper: training data share and segment batches -----------------------------------


def test_a_training_fraction_is_stratified_and_per_seed():
    labels = np.repeat(np.arange(8), 10)  # 80 tracks, 10 per genre
    rows = np.arange(80, dtype=np.int64)
    quarter = train.stratified_subset(rows, labels, 0.25, seed=0)
    assert len(quarter) == 8 * 2 or len(quarter) == 8 * 3  # round(2.5) per genre: banker's rounding gives 2
    assert np.bincount(labels[quarter], minlength=8).tolist() == [round(2.5)] * 8
    assert (np.diff(quarter) > 0).all() and set(quarter) <= set(rows)
    assert not np.array_equal(quarter, train.stratified_subset(rows, labels, 0.25, seed=1))
    assert np.array_equal(quarter, train.stratified_subset(rows, labels, 0.25, seed=0))
    assert train.stratified_subset(rows, labels, 1.0, seed=0) is rows
    assert np.bincount(labels[train.stratified_subset(rows, labels, 0.01, 0)]).tolist() == [1] * 8  # >= 1 each


def test_segment_batches_draw_batch_size_segments_across_all_clips():
    cfg = tone_config(segmented=True, batch_unit="segments", batch_size=16)  # 7 segments per clip
    rows = np.arange(10, 20, dtype=np.int64)
    steps = train.epoch_steps(rows, cfg, seed=0, epoch=1)
    s = cfg.n_segments
    assert [len(p) for _, p in steps] == [14, 14, 14, 14, 14]  # 70 windows in ceil(70 / 16) = 5 batches
    drawn = sorted((int(b[p // s]), int(p % s)) for b, ps in steps for p in ps)
    assert drawn == [(r, k) for r in range(10, 20) for k in range(s)]  # every segment of every clip once
    assert any(len(b) > 3 for b, _ in steps)  # a batch mixes segments of many clips
    clip_steps = train.epoch_steps(rows, cfg.replace(batch_unit="clips"), seed=0, epoch=1)
    assert all(p is None for _, p in clip_steps) and sum(len(b) for b, _ in clip_steps) == 10


@pytest.mark.parametrize(
    "change",
    [{"batch_unit": "segments"}, {"train_fraction": 0.5}, {"spectrogram_scale": "log"}, {"spectrogram_scale": "mel"}],
    ids=["segment-batches", "train-fraction", "log", "mel"],
)
def test_the_ablation_options_train_and_learn(tones, change):
    rec = train_seed(tone_config(segmented=True, epochs=4, **change), tones, seed=0, progress=False)
    assert rec.history[0].train_loss > rec.history[-1].train_loss
    assert accuracy_of(rec, tones) > 1 / 8 + 0.2  # well above chance on the tones


def test_a_seed_keeps_its_test_predictions(tones):
    rec = train_seed(tone_config(epochs=1), tones, seed=0, progress=False)
    test = np.sort(tones.split_indices("test"))
    tracks = TestTracks.of(tones)  # a store with no index: rows stand for track ids, no artists
    assert (tracks.track_ids, tracks.labels, tracks.artist_ids) == (test.tolist(), tones.labels[test].tolist(), None)
    probs = np.asarray(rec.test_probs)
    assert probs.shape == (len(test), 8) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert accuracy_of(rec, tones) == pytest.approx((probs.argmax(1) == tones.labels[test]).mean())
