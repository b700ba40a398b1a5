"""What each page of the book shows, one function per table or paragraph (book/pages/*.md).

A page only lays out: it opens its results (book.open_page) and calls these, which return the
notebook output (HTML or Markdown) or, where a cell shows several, display them in order.
Checks that can fail (the clip store the runs used, its track counts) raise BookError here,
with a message naming what differs, so a page never fails on its own code.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
from IPython.display import HTML, Markdown, display

from ..config import Config
from ..data.fma import FMA_SMALL_SPLITS, GENRES, PUBLISHED_TASK
from ..data.store import ClipStore, open_store
from ..inputs import INPUTS
from ..provenance import package_version
from ..results import BaselineResults, CellResults, load_baselines
from . import tables
from .book import BookError, Page, html_table, store_path

SPLITS = ["training", "validation", "test"]


def as_html(frame: pd.DataFrame, table_id: str, caption: str) -> HTML:
    """A table as the page's output: book.html_table, with its id and caption."""
    return HTML(html_table(frame, table_id, caption))


# --- data -------------------------------------------------------------------------------------------


def clip_store(page: Page, results_dir: str | Path) -> ClipStore:
    """The one clip store every shown cell ran on, opened; BookError when the cells ran on
    different stores or the store on disk is not the one they ran on (another fingerprint)."""
    stores = {store_path(r, results_dir): r.data.store_fingerprint for r in page.results.values()}
    if len(stores) != 1:
        raise BookError(f"the cells of profile {page.profile!r} ran on different clip stores: {stores}")
    ((path, fingerprint),) = stores.items()
    store = open_store(path, page.profile)
    if store.fingerprint != fingerprint:
        raise BookError(f"clip store {path} has fingerprint {store.fingerprint}, but the results ran on {fingerprint}")
    return store


def data_facts(page: Page, store: ClipStore) -> HTML:
    """The data set behind every number: source, folder, store, rate, clip length and rules (id data-facts)."""
    cfg = page.cfg
    source = {"synth": "synthetic, in FMA's format (fmareport synth)", "fma": "FMA (fmareport fetch)"}
    facts = pd.Series(
        {
            "data source": source[cfg.data.source],
            "data folder": cfg.run.data_dir,
            "subset": cfg.data.subset,
            "clip store": f"{store.path.name} (fingerprint {store.fingerprint})",
            "sample rate": f"{store.sample_rate:,} Hz",
            "clip length": f"{store.clip_samples:,} samples = {store.clip_samples / store.sample_rate:.2f} s",
            "which part of a longer track": {"start": "its start", "center": "its middle"}[cfg.store.clip_rule],
            "shorter tracks": f"zero-padded if at least {cfg.store.min_clip_fraction:.0%} of a clip, else skipped",
            "tracks stored": f"{len(store.index):,}",
        }
    )
    return as_html(facts.to_frame("value"), "data-facts", "The data set behind every number of this report.")


def split_totals(store: ClipStore, results: dict[str, CellResults]) -> dict[str, int]:
    """Tracks per split in the store, {split: n}; BookError when a cell reports other counts
    (it ran on another version of the store)."""
    counts = store.index["split"].value_counts()
    totals = {s: int(counts.get(s, 0)) for s in SPLITS}
    for r in results.values():
        if (tracks := r.data.tracks.model_dump()) != totals:
            raise BookError(f"cell {r.cell} reports tracks {tracks}, the store holds {totals}")
    return totals


def genre_split_counts(page: Page, store: ClipStore) -> HTML:
    """Tracks per genre (rows, with a total) and split (columns, with a total), after `split_totals`
    checks them against every cell's (id genre-split-counts)."""
    split_totals(store, page.results)
    index = store.index
    counts = pd.crosstab(index["genre"], index["split"]).reindex(index=list(GENRES), columns=SPLITS, fill_value=0)
    counts.loc["all genres"] = counts.sum()
    counts["all splits"] = counts.sum(axis=1)
    counts.index.name = "genre"
    counts.columns.name = None
    caption = "Tracks in the clip store per genre and split (what every cell trained and was tested on)."
    return as_html(counts, "genre-split-counts", caption)


def split_note(page: Page, store: ClipStore) -> Markdown:
    """The split in %, and whether it is FMA-small's (a synthetic set may take more test tracks)."""
    totals = split_totals(store, page.results)
    n_all = sum(totals.values())
    ours = [round(100 * totals[s] / n_all) for s in SPLITS]
    fma = [round(100 * FMA_SMALL_SPLITS[s] / sum(FMA_SMALL_SPLITS.values())) for s in SPLITS]
    return Markdown(
        f"This set is split {'/'.join(map(str, ours))} % (training/validation/test), "
        + (
            "as FMA-small is."
            if ours == fma
            else f"not FMA-small's {'/'.join(map(str, fma))} %: a synthetic set of ours may take more test tracks "
            f"(`synth_test_fraction: {page.cfg.synth.test_fraction:g}`), which cost little to run and narrow every "
            "interval of the Results page; training keeps "
            f"{totals['training']:,} tracks."
        )
    )


def track_table(entries: list[dict], table_id: str, caption: str, empty: str) -> HTML | Markdown:
    """Tracks with their reason, by FMA's 6-digit id; `empty` (Markdown) when there are none.
    caption: with {n}, the number of tracks."""
    frame = pd.DataFrame(entries)
    if frame.empty:
        return Markdown(empty)
    frame["track_id"] = frame["track_id"].map("{:06d}".format)  # FMA's own spelling of ids
    return as_html(frame.set_index("track_id"), table_id, caption.format(n=len(frame)))


def track_tables(store: ClipStore) -> None:
    """Display the dropped and skipped tracks and the decoder's notes, from the store's manifest."""
    m = store.manifest
    display(
        track_table(
            m.get("dropped", []),
            "dropped-tracks",
            "{n} tracks of tracks.csv left out of the subset, and why.",
            "No track was dropped.",
        ),
        track_table(
            m.get("skipped", []),
            "skipped-tracks",
            "{n} tracks of the subset are not in the store, and why.",
            "No track was skipped.",
        ),
        track_table(
            m.get("decoder_notes", []),
            "decoder-notes",
            "{n} tracks whose file the decoder reported on while decoding it.",
            "The decoder reported nothing.",
        ),
    )


def bad_tracks_note(page: Page) -> Markdown:
    """Which failure cases the data set holds: the synthetic set's on purpose, FMA-small's six known ones."""
    if page.synthetic:
        return Markdown(
            "The synthetic set contains, on purpose, the failure cases FMA-small really has (an empty mp3, "
            "a file that is not audio, a track much shorter than a clip, a track listed without its file), "
            "so that the skipping rules are exercised on every run."
        )
    return Markdown(
        "FMA-small has six known bad tracks: 098565, 098567 and 098569 are much shorter than 30 s; "
        "099134, 108925 and 133297 hold no audio that decoders can read."
    )


def genre_examples(store: ClipStore) -> dict[str, tuple]:
    """The first training clip of each genre the store holds: {genre: (track_id, int16 clip)}."""
    index = store.index.reset_index(drop=True)  # row i describes store.audio[i]
    examples = {}
    for genre in GENRES:
        rows = index.index[(index["split"] == "training") & (index["genre"] == genre)]
        if len(rows):
            examples[genre] = (int(index.loc[rows[0], "track_id"]), store.audio[rows[0]])
    return examples


# --- methods ----------------------------------------------------------------------------------------


def layer_shapes(page: Page, paper: Config) -> HTML:
    """First-layer output (maps, steps) and parameters per input, for a whole clip and a segment,
    at the paper's scale and in the page's profile, from the model's layer table (id layer-shapes)."""
    from ..model import layer_table

    rows = []
    for kind in INPUTS:
        for label in ("whole clip", "segment"):
            for name, c in {"paper": paper, page.profile: page.cfg}.items():
                n = c.store.clip_samples if label == "whole clip" else c.model.segment_samples
                table = layer_table(c.replace(input=kind).model, n, c.store.sample_rate)
                rows.append(
                    {
                        "input": INPUTS[kind].label,
                        "window": label,
                        "profile": name,
                        "samples": f"{n:,}",
                        "first layer output": str(table[0].out_shape),
                        "parameters": f"{sum(r.params for r in table if r.depth == 0):,}",
                    }
                )
    shapes = pd.DataFrame(rows).set_index(["input", "window", "profile"])
    caption = (
        f"First-layer output (maps, steps) and parameters at the paper's scale and in the "
        f"'{page.profile}' profile that made this report's numbers, from the model's layer table."
    )
    return as_html(shapes, "layer-shapes", caption)


def protocol(cfg: Config) -> Markdown:
    """The training protocol of a profile, in words with its numbers."""
    return Markdown(f"""
Every cell trains the network from scratch once per seed ({", ".join(map(str, cfg.schedule.seeds))}) with Adam
(learning rate {cfg.train.lr:g}) on the cross-entropy loss, in mini-batches of {cfg.train.batch_size} clips for
{cfg.schedule.epochs} epoch{"s" * (cfg.schedule.epochs != 1)}, on the training split; the validation split is scored after
every epoch and the test split after the last one (the tables show that last-epoch test accuracy; the
accuracy at the epoch with the best validation accuracy is recorded too, on the Results page).

* **Segmented cells** cut each clip into {cfg.n_segments} segments of {cfg.model.segment_samples:,} samples with
  {cfg.model.segment_overlap:.0%} overlap (the paper: 2¹⁷ samples, about 3 s, 14 per clip). Training
  batches hold the segments of {cfg.train.batch_size} clips, and the loss is taken per segment, as the paper says.
* **Every accuracy is per track**: a track's prediction is the sum of its segments' softmax probabilities
  (one segment for whole clips), and the validation loss is computed on that per-track prediction.
* **Dropout** cells use p = 0.2 after every layer but the last dense one.
""")


def deviations(paper: Config, cfg: Config) -> Markdown:
    """Every deviation from the paper's text and every reading of ours, numbered, with the numbers
    of the paper's scale (`paper`) and of the page's profile (`cfg`)."""
    return Markdown(_deviations_model(paper) + _deviations_training(paper, cfg))


def _deviations_model(paper: Config) -> str:
    """Items 1 to 5: the STFT, the first layers, the residual block, Table 3."""
    from ..model import layer_table
    from .figures import conv_label

    raw = next(
        r for r in layer_table(paper.replace(input="raw").model, paper.store.clip_samples) if r.name == "conv1.raw"
    )
    spec = next(
        r
        for r in layer_table(paper.replace(input="spectrogram").model, paper.store.clip_samples)
        if r.name == "conv1.spec"
    )
    return f"""
1. **STFT window 4048 → {paper.model.n_fft}.** The paper's window of 4048 samples cannot give its 1025
   frequency bins; {paper.model.n_fft} does ({paper.model.n_fft} // 2 + 1 = {paper.model.n_bins}), and with a hop of
   {paper.model.hop} (50 % overlap, centred frames) it gives the paper's (1025, 977) for 10⁶ samples.
   We read 4048 as a typo for 2048.
2. **The 1D first layer is ours**: `Conv1d` {conv_label(raw)}, a kernel of three hops with a
   stride of one hop, chosen so that raw audio lands on the same {paper.model.steps(paper.store.clip_samples)} steps
   as the spectrogram. The paper's Fig. 2, which gave it, is lost.
3. **The 2D first layer** `Conv2d` {conv_label(spec)} is inferred from the paper's shapes
   (977 frames → 974 steps).
4. **Inside the residual block** conv2 and conv3 keep the length with zero padding (1, 2) (kernel 4 is
   even), and the shortcut is added after conv3's batch norm, before its ELU. The spectrogram is the
   linear STFT magnitude, with no log and no normalisation ("STFT magnitude spectrum", §IV).
5. **Table 3 is read as a replicate** of the segmented cells of Tables 1 and 2: the paper gives
   different numbers for what reads as the same settings (0.469 against 0.429 for 2D without dropout)
   and a 0.00 for 1D+2D that it never explains. We do not train it again: Table 3 shows the same runs as
   Tables 1 and 2, as mean ± std over seeds, and uses the spread over seeds to say whether the dropout
   effect is larger than run-to-run noise.
"""


def _deviations_training(paper: Config, cfg: Config) -> str:
    """Items 6 to 20: epochs, clips, batches, frameworks, GPUs, dropout, segments, the ablations."""
    mel = paper.replace(spectrogram_scale="mel").model  # the paper's scale's log-mel cells
    covered = (
        paper.model.segment_samples + (paper.n_segments - 1) * paper.model.segment_hop
    )  # samples a segmented cell sees
    tail = paper.store.clip_samples - covered
    return f"""6. **Epochs**: the paper trains "around 15" epochs; we train exactly {paper.schedule.epochs} at the paper's scale.
7. **Clips**: tracks are cut to a fixed length from their {cfg.store.clip_rule}; shorter tracks are zero-padded
   when at least {cfg.store.min_clip_fraction:.0%} of a clip long and skipped otherwise; tracks that cannot be
   decoded are skipped with the reason recorded (see the Data page).
8. **A segmented mini-batch** holds the segments of {paper.train.batch_size} clips ({paper.train.batch_size * paper.n_segments}
   segments at the paper's scale), not {paper.train.batch_size} segments: the paper's "mini-batches of 50" does not say
   which, and this way a segmented and a whole-clip run take the same number of steps per epoch on the same audio.
9. **Which test accuracy**: the paper reports one test accuracy per setting without saying at which epoch; the
   tables show the accuracy after the last epoch, and the Results page also gives the one at the epoch with
   the best validation accuracy.
10. **Dense widths 300 and 150, and the residual kernel 4**, are not in the paper: they are
   Zhang et al.'s (2016) for the network the paper says it rebuilt, and we take them from there.
11. **"[1, 974/s]"**: the paper says the first layer compresses each input to "[1, 974/s]", s the
   number of segments, i.e. a segment's time axis would be a 1/s share of the clip's 974 steps
   ({paper.model.steps(paper.store.clip_samples) / paper.n_segments:.0f} for s = {paper.n_segments}). With the
   segments' 50 % overlap a 2¹⁷-sample segment spans 2/(s + 1) of the clip, and our first layer gives
   it T = {paper.model.steps(paper.model.segment_samples)} steps; the formula ignores the overlap.
12. **Framework defaults**: PyTorch's batch norm updates its running statistics with momentum 0.1
   and eps 1e-5, Keras' with 0.01 (its momentum 0.99) and eps 1e-3; PyTorch initialises
   convolutions and dense layers with Kaiming-uniform (a = √5), Keras with Glorot-uniform. The paper
   names no framework; we keep PyTorch's defaults.
13. **bf16 on GPUs**: at the paper's scale on a GPU the network runs under bf16 autocast (`amp: true`),
   on GPUs with native bf16; the STFT and the output layer stay in float32.
14. **GPU runs are not bit-reproducible**: cuDNN picks its fastest kernels per run (autotuning) and
   some CUDA kernels (the global max pooling's backward) add in a varying order. `deterministic: true`
   turns autotuning off, asks PyTorch for deterministic kernels and sets `CUBLAS_WORKSPACE_CONFIG`
   (slower; the max pooling's backward stays nondeterministic, with a warning). On CPU, runs with the
   same seed repeat exactly.
15. **No bias** in the convolutions and the hidden dense layers: the batch norm after each has its
   own shift, which a bias before it would only duplicate. The paper does not say; only the output
   layer has a bias.
16. **Dropout before the shortcut**: in dropout cells conv1's output is dropped once, and that dropped
   output feeds both conv2 and the shortcut to conv3. The paper places dropout after every layer and
   says nothing of the shortcut; dropping the shortcut's copy separately would be another reading.
17. **The tail of a segmented clip**: {paper.n_segments} segments of {paper.model.segment_samples:,} samples at
   {paper.model.segment_overlap:.0%} overlap cover {covered:,}
   of a clip's {paper.store.clip_samples:,} samples, so segmented cells never see the last {tail:,} samples
   ({tail / paper.store.sample_rate:.2f} s)
   of each clip; whole-clip cells see all of it.
18. **Mono and the sample rate**: every track is mixed down to mono and resampled to the profile's rate
   ({paper.store.sample_rate:,} Hz at the paper's scale) before it is cut (the Data page); the paper says
   neither.
19. **The batch-of-segments ablation changes three things at once** (Beyond the paper): segments per
   batch ({paper.train.batch_size} instead of {paper.train.batch_size * paper.n_segments} at the paper's scale),
   {paper.n_segments}× the optimizer steps per epoch, and which segments share a batch (drawn across
   clips instead of a clip's own). It runs on all three segmented cells (1D, 2D, 1D+2D), so a verdict the
   three share is about segmented training, not about one input.
20. **The log-mel ablation changes two things at once** (Beyond the paper): the scale (a log over a fixed
   floor) and the rows (mel bands: {mel.n_mels} instead of {paper.model.n_bins} bins at the paper's scale, so
   the 2D first layer has {mel.n_mels / paper.model.n_bins:.0%} of its weights and other initial weights). Its
   log1p neighbour changes the scale alone.
"""


def settings(c: Config) -> dict[str, str]:
    """A profile's data, scale and training settings, as the profile table shows them."""
    if c.data.source == "fma":
        data, split = "FMA-small", "80 / 10 / 10 % (FMA's)"
    else:
        data = f"synthetic ({c.synth.tracks_per_genre} tracks per genre)"
        fractions = (
            1 - c.synth.validation_fraction - c.synth.test_fraction,
            c.synth.validation_fraction,
            c.synth.test_fraction,
        )
        split = " / ".join(f"{round(100 * f)}" for f in fractions) + " %"
    return {
        "data": data,
        "split (training / validation / test)": split,
        "sample rate (Hz)": f"{c.store.sample_rate:,}",
        "clip (samples)": f"{c.store.clip_samples:,} ({c.store.clip_samples / c.store.sample_rate:.2f} s)",
        "n_fft / hop": f"{c.model.n_fft} / {c.model.hop}",
        "segment (samples)": f"{c.model.segment_samples:,} ({c.model.segment_samples / c.store.sample_rate:.2f} s), "
        f"{c.n_segments} per clip",
        "steps T (clip / segment)": f"{c.model.steps(c.store.clip_samples)} / {c.model.steps(c.model.segment_samples)}",
        "feature maps": str(c.model.channels),
        "dense widths": " → ".join(map(str, [2 * c.model.channels, *c.model.dense, len(GENRES)])),
        "epochs": str(c.schedule.epochs),
        "batch (clips)": str(c.train.batch_size),
        "learning rate": f"{c.train.lr:g}",
        "seeds": ", ".join(map(str, c.schedule.seeds)),
    }


def profile_scaling(page: Page, paper: Config) -> None:
    """Display how the page's profile scales the paper's run down: a sentence, and the settings
    side by side with whether each is the paper's (id profile-scaling)."""
    profile = page.profile
    scaling = pd.DataFrame({"paper": settings(paper), profile: settings(page.cfg)})
    scaling["same as the paper"] = (scaling["paper"] == scaling[profile]).map({True: "yes", False: "no"})
    if profile == "paper":
        scaling = scaling[["paper"]]
        note = "This report's numbers come from the paper profile itself."
    else:
        note = (
            f"This report's numbers come from the '{profile}' profile, which scales the paper's run down "
            "so that it finishes on a small CPU; the network keeps the paper's structure and kernels in "
            "steps, and every table and figure states the profile."
        )
    display(Markdown(f"**Profile scaling.** {note}"))
    display(as_html(scaling, "profile-scaling", f"The paper's scale against the '{profile}' profile."))


# --- results ----------------------------------------------------------------------------------------


def runs_behind(page: Page) -> None:
    """Display the rule that flags a diverged run, then every expected cell and its run (id runs)."""
    from .runs import CHANCE_LOSS, DIVERGED_FACTOR

    display(
        Markdown(
            f"A run is flagged as diverged when its last training loss is over {DIVERGED_FACTOR:g} times the "
            f"smaller of its first epoch's and ln 8 = {CHANCE_LOSS:.2f} (the loss of a uniform guess over the "
            "8 genres): a network that learned nothing stays near ln 8, and a loss ten times where it "
            "started has blown up."
        )
    )
    display(page.status_table())


def paper_table(page: Page, name: str, table_id: str) -> HTML:
    """One of the paper's Tables 1 to 3 with ours beside it (tables.paper_table); on a synthetic
    profile without the difference to the paper's."""
    table = tables.show_table(tables.paper_table(name, page.runs), against_paper=not page.synthetic)
    return as_html(table, table_id, f"{name} (profile {page.profile}): {tables.CAPTIONS[name]}")


def baseline_notes(page: Page, baselines: dict[str, BaselineResults]) -> Markdown:
    """What task the computed baselines ran on, their C grid, and what is missing or meaningless."""
    from ..baseline import C_GRID

    profile = page.profile
    task = (
        f"**These baselines ran on the synthetic task** (profile `{profile}`: generated sounds named after "
        "FMA-small's genres), like the CNN cells beside them: their accuracies say how hard the synthetic "
        "task is, nothing about FMA."
        if page.synthetic
        else f"These baselines ran on FMA-small's 8 genres (profile `{profile}`), on the CNN cells' test tracks."
    )
    notes = [
        task,
        f"C grid: {', '.join(f'{c:g}' for c in C_GRID)} (one per decade; scikit-learn's default C = 1 inside).",
    ]
    if page.synthetic and any(b.features_file for b in baselines.values()):
        notes.append(
            "A synthetic set's `features.csv` has FMA's columns but holds noise around each genre's centre, "
            "not features of its audio: a `features.csv` baseline run on it by hand (`--only`) measures "
            "nothing but the code path."
        )
    if not baselines:
        notes.append("No baseline was run for this profile (`fmareport baseline --profile P`).")
    return Markdown("\n\n".join(notes))


def baselines(page: Page, results_dir: str | Path) -> None:
    """Display the baselines of the profile: the notes, then (when any ran) their summary, their
    tuning over C and each cell against each baseline (ids baselines, baseline-tuning, baseline)."""
    profile = page.profile
    found = load_baselines(results_dir, profile)
    display(baseline_notes(page, found))
    if not found:
        return
    n_cells = len(page.runs)
    display(
        as_html(
            tables.baselines_summary(found),
            "baselines",
            f"The baselines of profile {profile}: the number of features, the C chosen on the "
            "validation split and the validation accuracy there, and the test accuracy with its "
            f"{tables.CONFIDENCE:.0%} interval over the test tracks (a baseline has no seeds).",
        )
    )
    display(
        as_html(
            tables.baseline_tuning_table(found),
            "baseline-tuning",
            "Validation accuracy at each C (one fit on the training split per C); "
            f"{tables.CHOSEN_MARK} marks the C each baseline kept.",
        )
    )
    display(
        as_html(
            tables.baseline_table(page.results, found),
            "baseline",
            f"Each table cell's test accuracy, and the cell minus each baseline, paired on the same "
            f"test tracks, with its {tables.CONFIDENCE:.0%} interval (profile {profile}).",
        )
    )
    display(
        Markdown(
            f"These are {n_cells * len(found)} comparisons ({n_cells} cells × {len(found)} "
            f"baseline{'s' if len(found) > 1 else ''}), each interval at {tables.CONFIDENCE:.0%} on "
            "its own, with no adjustment for their number: they describe, they do not test."
        )
    )


def published_baselines(page: Page) -> None:
    """Display the FMA authors' published baselines (id fma-published) and why they are another task."""
    t = PUBLISHED_TASK
    display(
        as_html(
            tables.published_baselines_table(),
            "fma-published",
            f"The FMA authors' test accuracy on fma_{t['subset']} ({t['genres']} genres; "
            f"{t['training']:,} / {t['validation']:,} / {t['test']:,} tracks), not on this report's "
            "task.",
        )
    )
    display(
        Markdown(
            f"**This is not the same task.** They classify fma_{t['subset']}'s {t['genres']} top genres, training on "
            f"{t['training']:,} tracks, where FMA-small has 8 genres and {FMA_SMALL_SPLITS['training']:,} training tracks; "
            "their C is fixed at 1, ours chosen on validation. Their numbers give the scale such features reach on FMA, "
            "not a target for the rows above"
            + (
                "; and nothing on this page can be set against them: it is the synthetic task."
                if page.synthetic
                else "."
            )
        )
    )


def claims(page: Page, judged: pd.DataFrame) -> None:
    """Display the verdict on each of the paper's claims (id claims-summary), then every test of the
    family (id claims). judged: tables.claims(page.runs)."""
    profile, task = page.profile, page.task
    summary = tables.claim_summary(judged).set_index("claim")
    summary.index.name = "Claim"
    summary.columns = ["Where the paper says it", f"Verdict {task}"]
    display(
        as_html(
            summary,
            "claims-summary",
            f"The paper's claims tested {task} (profile {profile}), after Holm's adjustment "
            f"over the family of {tables.family_size(judged)} tests.",
        )
    )
    if page.synthetic:
        display(
            Markdown(
                "These verdicts are about the synthetic task: they show that the tests work and what "
                "they can decide at this size, not whether the paper is right about music."
            )
        )
    shown, same = tables.split_uniform(
        tables.show_claims(judged, against_paper=not page.synthetic), ["Seeds (a / b)", "Interval from"]
    )
    display(
        as_html(
            shown,
            "claims",
            f"Each test of the family ({tables.family_size(judged)} tests, Holm-adjusted at "
            f"{tables.FAMILY_ALPHA:.0%}): the paper's word, the test and its margin, our difference "
            f"with the interval the test reads, the smallest detectable difference or margin, the "
            f"adjusted p and the verdict {task} (profile {profile})."
            + "".join(f" {k}: {v}." for k, v in same.items())
            + f" {tables.PAIRED_NOTE}.",
        )
    )


def claim_widths(page: Page, judged: pd.DataFrame) -> Markdown:
    """How wide the claims' 95 % intervals are (Page.widths), each comparison once."""
    first = judged.drop_duplicates("comparison")  # each comparison's 95 % interval once
    return page.widths(
        [
            dict(name=r.comparison, diff=r.diff, low=r.low, high=r.high, seed_share=r.seed_share)
            for r in first.itertuples()
        ]
    )


def error_scale(page: Page) -> Markdown:
    """For scale: the binomial error of one accuracy and of a difference on our test tracks and on
    the paper's 800, beside the paper's 2D − 1D+2D differences (Tables 1 and 2)."""
    results = page.results
    n_test = next(iter(results.values())).data.tracks.test
    accs = [a for r in results.values() for a in tables.accuracies(r)]
    p = sum(accs) / len(accs)
    se = math.sqrt(p * (1 - p) / n_test)
    # The paper's 2D vs 1D+2D differences, and the same error on its 800-track test split.
    paper_gaps = [
        tables.PAPER[t][("spectrogram", seg, d)] - tables.PAPER[t][("both", seg, d)]
        for t, seg, d in (("Table 1", False, 0.0), ("Table 1", True, 0.0), ("Table 2", True, 0.2))
    ]
    p_paper = tables.PAPER["Table 1"][("spectrogram", True, 0.0)]
    se_paper_diff = math.sqrt(2 * p_paper * (1 - p_paper) / FMA_SMALL_SPLITS["test"])
    return Markdown(f"""
For scale: with {n_test:,} test tracks, one run's test accuracy near {p:.2f} carries a sampling error
of about ±{se:.3f} (binomial standard error) from the choice of test tracks alone, and a difference of
two such accuracies about ±{se * math.sqrt(2):.3f}, before any run-to-run noise. On the paper's own
{FMA_SMALL_SPLITS["test"]}-track test split a difference of two accuracies near {p_paper:.2f} has an error of
about ±{se_paper_diff:.3f}; the paper's differences between 2D and 1D+2D are
{", ".join(f"{g:+.3f}" for g in paper_gaps)} (Tables 1 and 2).
""")


def coverage(reps: int = 1000) -> None:
    """Display the simulated coverage of the intervals (coverage.coverage_table, id coverage) and
    its lowest values in words."""
    from .coverage import cached_table

    cov = cached_table(reps=reps)
    shown = pd.DataFrame(
        {
            "Design": cov["design"],
            "Test tracks (artists)": [f"{t} ({a})" for t, a in zip(cov["tracks"], cov["artists"])],
            "Seeds": cov["seeds"],
            "Seed SD": cov["seed_sd"],
            "Interval of": cov["kind"],
            "Coverage, over artists": cov["coverage"].map("{:.3f}".format),
            "Mean width": cov["mean_width"].map("{:.3f}".format),
            "At 90 %, over artists": cov["coverage_90"].map("{:.3f}".format),
            "Coverage, over tracks": cov["coverage_by_track"].map("{:.3f}".format),
        }
    )
    display(
        as_html(
            shown.set_index("Design"),
            "coverage",
            f"Coverage of the 95 % intervals in {reps} simulated runs per row "
            "(fmareport.report.coverage, cached under the digest of its code and inputs): resampling artists, with their mean width and their "
            "coverage at 90 % (the level TOST reads), and, on the same runs, resampling single "
            "tracks.",
        )
    )
    worst = cov.loc[cov["coverage"].idxmin()]
    worst_tracks = cov.loc[cov["coverage_by_track"].idxmin()]
    demo = cov[(cov["design"] == "demo") & (cov["kind"] == "cell")]
    display(
        Markdown(
            f"The lowest coverage over artists is {worst['coverage']:.3f} ({worst['kind']}, {worst['design']} design, "
            f"seed SD {worst['seed_sd']:g}); over single tracks it falls to {worst_tracks['coverage_by_track']:.3f} "
            f"({worst_tracks['kind']}, {worst_tracks['design']} design, seed SD {worst_tracks['seed_sd']:g}). "
            f"At 90 % the lowest over artists is {cov['coverage_90'].min():.3f}. The price is width: with "
            f"{demo['seeds'].iloc[0]} seeds (the demo's design) a cell's interval is {demo['mean_width'].min():.2f} to "
            f"{demo['mean_width'].max():.2f} wide, from seeds that agree to seeds that differ by {cov['seed_sd'].max():g}; "
            "more seeds narrow it."
        )
    )


# --- beyond the paper -------------------------------------------------------------------------------


def ablations(page: Page) -> HTML | Markdown:
    """Each ablation beside its base cell (tables.ablation_table, id ablations); a sentence when none ran."""
    table = tables.ablation_table(page.results)
    if table.empty:
        return Markdown("No ablation was run for this profile (`params/ablations/`).")
    return as_html(table, "ablations", f"Each ablation beside its base cell: accuracies with their {tables.CONFIDENCE:.0%} "
                           f"intervals, the paired difference with its interval (profile {page.profile}).")  # fmt: skip


def ablation_readings(page: Page) -> Markdown:
    """One line of reading per ablation (tables.ablation_readings), as a Markdown list."""
    return Markdown("\n".join(f"* {line}" for line in tables.ablation_readings(page.results)))


def ablation_widths(page: Page) -> Markdown:
    """How wide the ablations' intervals are (Page.widths)."""
    return page.widths(
        [
            dict(
                name=f"{c['ablation']} − {c['base']}",
                diff=c["diff"],
                low=c["low"],
                high=c["high"],
                seed_share=c.get("seed_share", math.nan),
            )
            for c in tables.ablation_comparisons(page.results)
        ]
    )


# --- reproducibility --------------------------------------------------------------------------------


def commands(page: Page) -> Markdown:
    """The commands that make this profile's report: the pipeline, FMA's, one cell, the book."""
    profile, cell = page.profile, next(iter(page.results))
    return Markdown(f"""
The whole pipeline for this profile (data, clip store, one papermill run per cell, this book), from a
fresh clone; `make` creates `.venv` and installs the package the first time:

```bash
make report PROFILE={profile}
```

For FMA results, on a machine with a GPU: `fmareport fetch data/fma` (7.6 GB of zips, SHA1-checked),
then `make report PROFILE=paper`.

One cell by hand, the command the workflow runs for each cell (`book/experiment.ipynb` is committed,
paired with its text form `book/experiment.py`):

```bash
papermill book/experiment.ipynb results/{profile}/{cell}.ipynb -p profile {profile} -p cell {cell}
```

The book alone, from existing results (executes these pages with papermill into `book/generated/`,
then builds the HTML; any warning fails the build):

```bash
fmareport book --profile {profile}
# which ends with, in the repo root:
jupyter-book build book/
```
""")


def distinct(values) -> str:
    """Each distinct value once, in order, comma-separated (dicts and lists as JSON)."""
    return ", ".join(dict.fromkeys(json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in values))


def run_facts(page: Page) -> HTML:
    """Where the results came from: commit, dirty tree, Python, device, schema (id run-facts)."""
    prov = [r.provenance for r in page.results.values()]
    facts = pd.Series(
        {
            "git commit": distinct(p.git_commit for p in prov),
            "uncommitted changes": distinct(p.git_dirty for p in prov),
            "python": distinct(p.python for p in prov),
            "device": distinct(p.device for p in prov),
            "results schema": distinct(r.schema_version for r in page.results.values()),
        }
    )
    caption = "Where the results came from (a value that differs between cells is listed once per value)."
    return as_html(facts.to_frame("value"), "run-facts", caption)


def run_versions(page: Page) -> HTML:
    """The package versions the runs recorded, each distinct version once (id versions)."""
    versions = pd.DataFrame({cell: r.provenance.versions for cell, r in page.results.items()})
    versions = versions.apply(lambda row: distinct(row.fillna("not installed")), axis=1).to_frame("version")
    versions.index.name = "package"
    return as_html(versions, "versions", "Package versions of the runs.")


def run_hardware(page: Page) -> HTML:
    """The machine the runs recorded, each distinct value once (id hardware)."""
    hardware = pd.DataFrame(
        {
            cell: {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.provenance.hardware.items()}
            for cell, r in page.results.items()
        }
    )
    hardware = hardware.apply(distinct, axis=1).to_frame("value")
    hardware.index.name = "hardware"
    return as_html(hardware, "hardware", "The machine the runs used.")


def device_policies(page: Page) -> HTML | Markdown:
    """How each seed ran (id device-policy): device (type, name, index, UUID), autocast and where the
    clip store lived, with the policy's reasons (results' SeedResult.policy); seeds of files written
    before it was recorded are listed as such."""
    rows, unrecorded = [], []
    for cell, r in page.results.items():
        for s in r.seeds:
            p = s.policy
            if p is None:
                unrecorded.append(f"{cell} seed {s.seed}")
                continue
            where = "" if p.device_index is None else f" {p.device_index}"
            rows.append(
                {
                    "cell": cell,
                    "seed": s.seed,
                    "device": f"{p.device_type}{where}: {p.device_name}",
                    "GPU UUID": p.device_uuid or "",
                    "autocast": p.amp_dtype or "off (fp32)",
                    "clip store": p.store,
                    "why": "; ".join((p.device_reason, p.amp_reason, p.store_reason)),
                }
            )
    note = f"Not recorded (results written before the policy was): {', '.join(unrecorded)}." if unrecorded else ""
    if not rows:
        return Markdown(note)
    caption = "How each seed ran: the device, bf16 autocast and the clip store's place, and why. " + note
    return as_html(pd.DataFrame(rows).set_index(["cell", "seed"]), "device-policy", caption.strip())


def run_times(page: Page) -> None:
    """Display each cell's wall and training time and throughput (id run-times), and their total."""
    rows = []
    for cell, r in page.results.items():
        p = r.provenance
        started, finished = p.started, p.finished
        rows.append(
            {
                "cell": cell,
                "device": p.device,
                "started (UTC)": started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
                "wall time (min)": f"{(finished - started).total_seconds() / 60:.1f}",
                "training, all seeds (min)": f"{sum(s.seconds for s in r.seeds) / 60:.1f}",
                "seeds": len(r.seeds),
                "windows per second": f"{sum(s.segments_per_second for s in r.seeds) / len(r.seeds):,.0f}",
            }
        )
    times = pd.DataFrame(rows).set_index("cell")
    total = sum(float(t) for t in times["wall time (min)"])
    display(as_html(times, "run-times", f"Run time of each cell (profile {page.profile})."))
    display(
        Markdown(f"All cells together: {total:.1f} minutes of notebook wall time (cells may have run in parallel).")
    )


def epoch_cost(page: Page) -> HTML:
    """Per cell, the measured seconds of one training epoch and its FLOPs (summary.training_flops),
    and the rate they give (id epoch-cost)."""
    from ..summary import training_flops

    rows = []
    for cell, r in page.results.items():
        c = r.config
        epochs = [h.seconds for s in r.seeds for h in s.history]
        seconds = sum(epochs) / len(epochs)
        n_train = round(r.data.tracks.training * c.train.train_fraction)
        flops = training_flops(c, n_train)
        rows.append(
            {
                "cell": cell,
                "training tracks": f"{n_train:,}",
                "seconds per epoch": f"{seconds:.1f}",
                "GFLOP per epoch": f"{flops / 1e9:,.1f}",
                "achieved GFLOP/s": f"{flops / 1e9 / seconds:,.1f}",
            }
        )
    caption = f"Time and work of one training epoch per cell (profile {page.profile})."
    return as_html(pd.DataFrame(rows).set_index("cell"), "epoch-cost", caption)


BOOK_PACKAGES = (
    "jupyter-book",
    "sphinx",
    "myst-nb",
    "papermill",
    "jupytext",
    "matplotlib",
    "seaborn",
    "pandas",
    "scipy",
)


def book_versions() -> HTML:
    """The versions of the packages that render the book, in this environment (id book-versions)."""
    book_env = pd.Series({name: package_version(name) or "not installed" for name in BOOK_PACKAGES})
    book_env.index.name = "package"
    caption = "Packages that rendered this book (tables, figures, HTML)."
    return as_html(book_env.to_frame("version"), "book-versions", caption)


# --- intro ------------------------------------------------------------------------------------------


def claims_verdicts(page: Page) -> HTML:
    """The verdict on each of the paper's claims, without the tests (id claims-summary)."""
    summary = tables.claim_summary(tables.claims(page.runs)).set_index("claim")[["verdict"]]
    summary.index.name = "The paper's claim"
    summary.columns = [f"Verdict {page.task}"]
    caption = (
        f"The paper's claims tested {page.task} (profile {page.profile}); the tests, their margins and the "
        "multiplicity control are on the Results page."
    )
    return as_html(summary, "claims-summary", caption)


# --- every cell -------------------------------------------------------------------------------------


def cell_summary(page: Page) -> HTML:
    """Every run of the profile: accuracies, size and time (tables.cell_summary, id cell-summary)."""
    caption = (
        f"Every run of profile {page.profile}: test accuracy after the last epoch and at the epoch "
        "with the best validation accuracy (mean ± std over seeds), size and training time."
    )
    return as_html(tables.cell_summary(list(page.results.values())), "cell-summary", caption)


def executed_cells(page: Page) -> HTML:
    """The same, for the Experiments page (id experiments)."""
    table = tables.cell_summary(list(page.results.values()))
    return as_html(table, "experiments", f"The executed cells of profile {page.profile}.")
