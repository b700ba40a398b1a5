"""One typed config for every setting of a run, built from YAML files.

A run's config is a profile (`params/profiles/<name>.yaml`) overlaid by one experiment cell
(`params/<table>/<cell>.yaml`: what that cell of the paper's tables changes), then by overrides;
later layers win, and every layer is checked (strict types, bounds, cross-field rules).
Entry points: `load_cell`, `load_config`, `from_dict`, `cfg.replace`; `parse_yaml` reads all
params text. Contract: docs/contracts.md, "Config"; the hostile inputs refused: docs/faults.md,
cases 1, 5 and 13.
"""

from __future__ import annotations

import difflib
import re
import reprlib
import typing
from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    model_serializer,
    model_validator,
)

from .errors import ConfigError  # defined with the project's other errors; imported from here too
from .inputs import InputName

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = REPO_ROOT / "params"


# A name is lower-case letters, digits, '_' and '-', starting with a letter or digit; a cell
# has at most one '/' (its table folder under params/). No '..', no absolute path, no '~'.
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
CELL_PATTERN = rf"{NAME_PATTERN}(/{NAME_PATTERN})?"
# The folders of params/ that hold a table of the paper's cells (table1, table2); an ablation's `base`
# is one of their cells. The workflow's cell folders are these and ablations/ (fmareport.workflow).
TABLE_FOLDER = r"table[0-9]+"
ProfileName = Annotated[str, StringConstraints(pattern=rf"^{NAME_PATTERN}$")]
CellName = Annotated[str, StringConstraints(pattern=rf"^{CELL_PATTERN}$")]
Positive = Annotated[int, Field(gt=0)]
# A shell-style pattern over cell names (fnmatch: * ? [...]), e.g. "table1/*" or "ablations/log_*".
CellPattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_*?\[\]!-]+(/[A-Za-z0-9_*?\[\]!-]+)?$")]

# A seed is what numpy's legacy seeding takes (np.random.seed, in train.seed_everything): 0 <= seed < 2**32.
MAX_SEED = 2**32
Seed = Annotated[int, Field(ge=0, lt=MAX_SEED)]

# The largest params text we read (a file, `-p overrides`, a `--set` value): 35 times the largest real
# file (params/profiles/demo.yaml, 1.8 KiB), and a bound on the parser's work on hostile input
# (docs/faults.md, case 13; its cost: docs/measurements.md).
MAX_PARAMS_BYTES = 64 * 1024
# How deep YAML collections may nest: a config is a mapping of scalars and flat lists (depth 2);
# a deeper one is refused before PyYAML's recursive composer runs out of stack.
MAX_YAML_DEPTH = 8
# How long a value may be when a message shows it: enough to recognise it, never a 3 MB echo.
MAX_SHOWN = 80
# How many distinct problems one ConfigError lists (a list of 10,000 bad items is one problem).
MAX_MESSAGES = 5

# The most epochs a cell may train. The paper trains 15 (params/profiles/paper.yaml); 100,000 are about a
# day per seed at the smoke profile's size (under a second an epoch) and weeks at the demo's (6 to 24 s,
# docs/measurements.md), and their history is 25 MB of each seed's results file (256 bytes an epoch). More
# (2**70) is a typo: refused naming the key, not left to the disk check it fails (docs/faults.md).
MAX_EPOCHS = 100_000

# The largest clip we accept: 2**24 samples (6.3 min at 44.1 kHz, 32 MiB of int16 per track);
# FMA's clips are 30 s. A larger value is a typo that would make prepare allocate terabytes.
MAX_CLIP_SAMPLES = 2**24


class Section(BaseModel):
    """A group of settings one part of the code takes whole (`Net(cfg.model)`).

    In a params file the keys stay flat: a section's key is its `PREFIX` and the field's name
    (`synth_seconds` is `cfg.synth.seconds`, `n_fft` is `cfg.model.n_fft`); see `FLAT_KEYS`.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    PREFIX: ClassVar[str] = ""


# The sample rates an mp3 can have (MPEG-1, 2 and 2.5 layer III): synth writes mp3s.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


class SynthSettings(Section):
    """How `fmareport synth` makes a synthetic FMA-format set (synth only; docs/running.md).

    The defaults are the smoke profile's, so a run with no params at all is a small synthetic one;
    `fmareport synth` takes the same settings as options (`--tracks-per-genre`, ...).
    """

    PREFIX: ClassVar[str] = "synth_"
    tracks_per_genre: Positive = Field(5, description="small-subset tracks per genre")
    seconds: Annotated[float, Field(gt=0, le=600)] = Field(2.5, description="length of each track (s)")
    sample_rate: Literal[MP3_RATES] = Field(22050, description="sample rate of the mp3s (Hz)")
    seed: Annotated[int, Field(ge=0)] = Field(0, description="same seed -> the same bytes")
    # FMA's split is 80/10/10 per genre; a set of our own may take other shares (the demo's test
    # split is half: its intervals narrow with it). The rest is training.
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(0.1, description="each genre's validation share")
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(0.1, description="each genre's test share")
    bad_cases: bool = Field(
        True,
        description="add FMA's failure cases: a short track, a silent one, an empty mp3, an mp3 of random "
        "bytes, and a track whose file is missing",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SynthSettings:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"the validation and test fractions {self.validation_fraction:g} + {self.test_fraction:g} (keys "
                "'synth_validation_fraction' and 'synth_test_fraction', options --validation-fraction and "
                "--test-fraction) leave no training tracks; their sum must be below 1"
            )
        return self


class DataSettings(Section):
    """Which data set: synthetic or real FMA, and which subset of it."""

    source: Literal["synth", "fma"] = "synth"  # key data_source. synth: `fmareport synth`; fma: real FMA
    subset: Literal["small", "medium", "large"] = "small"  # key subset (no prefix: see FLAT_NAMES)


class StoreSettings(Section):
    """How clips are decoded once into the store: with the data set, the store's identity."""

    sample_rate: Annotated[int, Field(gt=0, le=192_000)] = 8000  # Hz after resampling (paper: 44100)
    clip_samples: Annotated[int, Field(gt=0, le=MAX_CLIP_SAMPLES)] = 16384  # paper: 10**6 (22.7 s)
    clip_rule: Literal["start", "center"] = "start"  # which part of a longer track is kept
    min_clip_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5  # shorter: zero-pad if >= this, else skip


class ModelSettings(Section):
    """The network (the paper's Sec. 3; the book's Methods page) and the window it sees."""

    input: InputName = "spectrogram"  # raw (1D) | spectrogram (2D) | both (1D+2D): fmareport/inputs.py
    n_fft: Positive = 256  # STFT window (samples), even; paper: 2048 ("4048" is a typo)
    hop: Positive = 128  # STFT hop (samples); paper: 1024 = n_fft/2 (50 % overlap)
    channels: Positive = 32  # feature maps of the residual block (paper: 256), even
    dense: Annotated[list[Positive], Field(min_length=1)] = [300, 150]  # hidden dense widths (Zhang et al.)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # after every layer but the last dense (0 or 0.2)
    # 2D input: |STFT| (the paper's), log1p(|STFT|), or log-mel: log(mel energies + a floor), model.Spectrogram
    spectrogram_scale: Literal["linear", "log", "mel"] = "linear"
    # Mel bands of the log-mel input (only with spectrogram_scale: mel; the smoke profile's 64, as the other
    # defaults are its: 8 kHz and n_fft 256 fill at most 86 bands, Config's check). Paper and demo: 128.
    n_mels: Positive = 64
    # segments (the paper's "~3 s with 50 % overlap")
    segmented: bool = False
    segment_samples: Positive = 4096  # samples per segment (paper: 2**17, ~3 s at 44.1 kHz)
    segment_overlap: Annotated[float, Field(ge=0, lt=1)] = 0.5  # fraction shared with the next segment

    @model_validator(mode="after")
    def _consistent(self) -> ModelSettings:
        e = []
        if self.n_fft % 2:
            e.append(f"key 'n_fft': must be even (n_fft // 2 + 1 frequency bins), got {self.n_fft}")
        if self.channels % 2:
            e.append(f"key 'channels': must be even (an input of two branches gives each half), got {self.channels}")
        if self.segment_hop < 1:
            e.append(
                f"key 'segment_overlap': {self.segment_overlap} leaves a segment hop of "
                f"{self.segment_hop} samples for {self.segment_samples}-sample segments; lower it"
            )
        if self.steps(self.segment_samples) < 4:
            e.append(
                f"key 'segment_samples': {self.segment_samples} samples give "
                f"{self.steps(self.segment_samples)} steps after the first layer with hop {self.hop}; "
                "the residual block needs at least 4 (its kernel)"
            )
        if e:
            raise ValueError("; ".join(e))
        return self

    @property
    def segment_hop(self) -> int:
        """Samples between segment starts (2**16 in the paper profile)."""
        return int(round(self.segment_samples * (1.0 - self.segment_overlap)))

    @property
    def n_bins(self) -> int:
        """Frequency rows of the 2D input, which the 2D first layer spans: the one-sided STFT's
        n_fft // 2 + 1 bins (1025 for n_fft = 2048), or n_mels bands for the log-mel input."""
        return self.n_mels if self.spectrogram_scale == "mel" else self.n_fft // 2 + 1

    def steps(self, n_samples: int) -> int:
        """Time steps after the first layer, T = N // hop - 2 (974 for 10**6, 126 for 2**17)."""
        return n_samples // self.hop - 2


class TrainSettings(Section):
    """How each seed is trained (the paper's Sec. 4: Adam, batches of 50 clips)."""

    batch_size: Positive = 16  # clips per step (paper: 50); segmented: all segments of these clips
    batch_unit: Literal["clips", "segments"] = "clips"  # a batch: the segments of batch_size clips, or
    #                                                     batch_size segments drawn across all clips
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0  # a stratified share of the training split
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5e-4  # Adam learning rate (finite)


class ScheduleSettings(Section):
    """How much of the protocol runs: which seeds, how many epochs. Epoch k of a seed is the same
    whatever the number of epochs, so a checkpoint resumes under more epochs or seeds."""

    seeds: Annotated[list[Seed], Field(min_length=1)] = [0]  # each in [0, 2**32): numpy's seed range
    epochs: Positive = 1  # at most MAX_EPOCHS (_consistent)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleSettings:
        twice = sorted(s for s, n in Counter(self.seeds).items() if n > 1)  # linear in the seeds (faults case 13)
        if twice:
            raise ValueError(
                f"key 'seeds': each seed once (a repeated seed would only repeat its run), "
                f"got {shown(self.seeds)}; {shown(twice)} repeated"
            )
        if self.epochs > MAX_EPOCHS:
            raise ValueError(
                f"key 'epochs': must be at most {MAX_EPOCHS:,} (weeks of training at the demo profile's size; the "
                f"paper trains 15), got {shown(self.epochs)}"
            )
        return self


class ComputeSettings(Section):
    """What computes (fmareport/device.py: the device policy); each may change the numbers."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when usable, else see cpu_fallback
    amp: bool = False  # bf16 autocast where the device really has bf16: CPU, CUDA compute capability >= 8.0
    deterministic: bool = False  # torch deterministic algorithms (slower)


class RunSettings(Section):
    """Where files go and how the work is spread: nothing here changes a run's numbers, so a result or
    checkpoint that differs from a config only here is still its run (fmareport.report.runs)."""

    data_dir: str = "data/synth-smoke"  # FMA-format root (holds fma_metadata/ and fma_small/)
    store_root: str = "data/stores"  # clip stores live here, one folder per settings fingerprint
    results_dir: str = "results"  # results/<profile>/<cell>.json and .ipynb
    build_dir: str = "build"  # scratch: checkpoints and locks, build/<profile>/<cell>/
    prepare_workers: Annotated[int, Field(ge=0)] = 0  # decode processes (0: one per usable CPU)
    store_on_device: Literal["auto", "always", "never"] = "auto"  # clip store as a tensor on the device
    cpu_fallback: bool = True  # device auto without a usable GPU: run on the CPU (false: stop at once)
    # The cells the profile runs (PROFILE_KEY: a profile's key, refused in a cell's file): shell-style
    # patterns over cell names, each matching at least one (fmareport.workflow.expected_cells).
    cells: Annotated[list[CellPattern], Field(min_length=1)] = ["*"]


# Flat keys that are not the section's prefix and field name: `data_source` reads better than
# `source` in a params file. Everything else is derived (FLAT_KEYS).
FLAT_NAMES = {("data", "source"): "data_source"}

# Keys that mean something only when another key has a value: {key: (other key, value)}; `to_dict`
# leaves them out otherwise (docs/contracts.md, "Config").
ONLY_WITH = {"n_mels": ("spectrogram_scale", "mel")}


class Config(BaseModel):
    """Every setting of one experiment run, in sections a module takes whole.

    Built from, and written as, the flat mapping of a params file (`to_dict`); `FLAT_KEYS` says
    which section holds each key. Units are in the sections' field comments.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    profile: ProfileName = "smoke"  # profile name: smoke | demo | paper (or your own)
    cell: CellName = "adhoc"  # experiment cell, e.g. "table1/spectrogram_segmented"
    base: CellName | None = None  # an ablation's table cell: its settings come first, then the ablation's
    data: DataSettings = DataSettings()
    synth: SynthSettings = SynthSettings()
    store: StoreSettings = StoreSettings()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    compute: ComputeSettings = ComputeSettings()
    run: RunSettings = RunSettings()

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, raw: Any) -> Any:
        """A flat mapping (a params file's) into sections; unknown keys stay on top to be refused."""
        return nest(raw) if isinstance(raw, dict) else raw

    @model_serializer(mode="wrap")
    def _to_flat(self, handler, info) -> dict[str, Any]:
        """Written flat, as a params file: results files and references keep one key per setting; a key
        of ONLY_WITH without its other key's value is left out unless the context asks for every key."""
        flat = flatten(handler(self))
        if (info.context or {}).get("every_key"):
            return flat
        return {k: v for k, v in flat.items() if k not in ONLY_WITH or flat[ONLY_WITH[k][0]] == ONLY_WITH[k][1]}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """Checks across sections; every message names its key."""
        m, clip = self.model, self.store.clip_samples
        e = []
        if m.segment_samples > clip:
            e.append(f"key 'segment_samples': {m.segment_samples} is longer than clip_samples {clip}")
        if m.n_fft > min(m.segment_samples, clip):
            e.append(
                f"key 'n_fft': the window of {m.n_fft} samples is longer than a "
                f"{min(m.segment_samples, clip)}-sample {'segment' if m.segment_samples <= clip else 'clip'}; lower it"
            )
        if m.spectrogram_scale == "mel" and (problem := mel_problem(m, self.store.sample_rate)):
            e.append(problem)
        if e:
            raise ValueError("; ".join(e))
        return self

    # --- derived across sections ---
    @property
    def n_segments(self) -> int:
        """Segments per clip: 14 for a 10**6-sample clip and 2**17-sample segments at 50 %."""
        return (self.store.clip_samples - self.model.segment_samples) // self.model.segment_hop + 1

    @property
    def window_samples(self) -> int:
        """Samples the network sees at once: a whole clip or one segment."""
        return self.model.segment_samples if self.model.segmented else self.store.clip_samples

    @property
    def windows_per_clip(self) -> int:
        """Windows the network sees of each clip: its n_segments segments, or the whole clip (1)."""
        return self.n_segments if self.model.segmented else 1

    def to_dict(self, every_key: bool = False) -> dict[str, Any]:
        """The flat mapping of a params file: {"profile": ..., "data_source": ..., "n_fft": ..., ...}: the
        run's settings, without the keys of ONLY_WITH that change nothing here (n_mels without mel).
        every_key: those too (FLAT_KEYS' order), for a layer under another: a profile's n_mels must
        reach the mel cell that uses it; `Config.model_validate(cfg.to_dict(True)) == cfg`."""
        return self.model_dump(context={"every_key": every_key})

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` (flat keys), checked like any other layer (ConfigError on a bad value)."""
        return from_dict(changes, source="replace", base=self.to_dict(every_key=True))


def mel_problem(m: ModelSettings, sample_rate: int) -> str | None:
    """Why the STFT's bins cannot fill m.n_mels mel bands at `sample_rate` (the log-mel input's
    filters, fmareport.mel), or None when every band gets a bin."""
    from . import mel  # numpy only: the filters themselves (torchaudio) are not built here

    bins = m.n_fft // 2 + 1
    if m.n_mels > mel.max_bands(m.n_fft):  # refused unbuilt: n_mels may be huge
        which = f"more than {mel.max_bands(m.n_fft)} bands never all get a bin"
    elif empty := mel.empty_bands(m.n_fft, m.n_mels, sample_rate):
        which = f"band(s) {shown(list(empty))} get no bin"
    else:
        return None
    return (
        f"key 'n_mels': {m.n_mels} mel bands at {sample_rate} Hz from n_fft {m.n_fft} ({bins} bins, "
        f"{sample_rate / m.n_fft:g} Hz apart): {which}, and an empty band is a constant input row; "
        f"lower n_mels to {mel.most_bands(m.n_fft, sample_rate)} or fewer, or raise n_fft"
    )


# Config's fields: its sections, and the keys that name the run (profile, cell, base).
SECTIONS: dict[str, type[Section]] = {
    name: f.annotation
    for name, f in Config.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, Section)
}
IDENTITY = tuple(name for name in Config.model_fields if name not in SECTIONS)
# Every flat key of a params file -> (section, field); identity keys -> (None, key).
FLAT_KEYS: dict[str, tuple[str | None, str]] = {k: (None, k) for k in IDENTITY} | {
    FLAT_NAMES.get((s, f), cls.PREFIX + f): (s, f) for s, cls in SECTIONS.items() for f in cls.model_fields
}
assert len(FLAT_KEYS) == len(IDENTITY) + sum(len(c.model_fields) for c in SECTIONS.values()), "a flat key twice"
_FLAT_OF = {where: key for key, where in FLAT_KEYS.items()}


def section_keys(*sections: str) -> frozenset[str]:
    """The flat keys of `sections`: section_keys("run") = the keys that change no number."""
    return frozenset(k for k, (s, _) in FLAT_KEYS.items() if s in sections)


def flat_key(section: str | None, field: str) -> str:
    """("model", "n_fft") -> "n_fft"; ("synth", "seconds") -> "synth_seconds"."""
    return _FLAT_OF[(section, field)]


def nest(raw: dict[str, Any]) -> dict[str, Any]:
    """A flat mapping into sections ({"n_fft": 8} -> {"model": {"n_fft": 8}}); an unknown key stays on
    top for the model to refuse. A section given whole (a model's own dump) is taken as a copy, its
    flat keys beside it winning; `raw` is never changed."""
    out: dict[str, Any] = {}
    flat: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        section, field = FLAT_KEYS.get(key, (None, key)) if isinstance(key, str) else (None, key)
        if section is None:
            out[key] = value
        else:
            flat.setdefault(section, {})[field] = value
    for section, fields in flat.items():
        given = out.get(section)
        given = given.model_dump() if isinstance(given, Section) else given
        out[section] = {**given, **fields} if isinstance(given, dict) else fields if given is None else given
    return out


def flatten(nested: dict[str, Any]) -> dict[str, Any]:
    """Sections into the flat mapping of a params file, in the order of Config's sections."""
    out = {k: nested[k] for k in IDENTITY if k in nested}
    for section in SECTIONS:
        for field, value in nested.get(section, {}).items():
            out[flat_key(section, field)] = value
    return out


# Keys that never change a run's numbers (a result that differs from a config only in these is still
# its run, fmareport.report.runs), and those a checkpoint may also differ in (fmareport.train).
NUMBER_FREE_KEYS = section_keys("run")
PROFILE_KEY = flat_key("run", "cells")  # the one key only a profile may set: which cells it runs
RESUME_FREE_KEYS = section_keys("run", "schedule")

# A flat model of the params file: its JSON Schema describes a key (`_describe`) and a results
# file's config (`fmareport schema`); it holds no list of keys of its own.
FlatConfig = create_model(
    "FlatConfig",
    __config__=ConfigDict(extra="forbid", strict=True),
    **{
        k: (Config.model_fields[f].annotation, Config.model_fields[f])
        if s is None
        else (SECTIONS[s].model_fields[f].annotation, SECTIONS[s].model_fields[f])
        for k, (s, f) in FLAT_KEYS.items()
    },
)
FIELDS = FlatConfig.model_fields


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def shown(value: Any, text: bool = False) -> str:
    """`repr(value)` (with text=True: a message's text, on one line) in at most MAX_SHOWN
    characters. Every message the config layer builds shows values through it: a hostile value
    (3 MB of text, a list of 300,000 seeds) is named, never echoed whole (docs/faults.md, case 13)."""
    if text:
        out = " ".join(str(value).split())
    else:
        try:
            out = _REPR.repr(value)
        except ValueError:  # an int past Python's 4300-digit str limit
            out = f"<{type(value).__name__} too long to show>"
    return out if len(out) <= MAX_SHOWN else out[: MAX_SHOWN - 3] + "..."


def _describe(key: str) -> str:
    """What a key accepts, in words: 'one of 'raw', 'spectrogram', 'both'', 'an integer', ..."""
    schema = FlatConfig.model_json_schema()["properties"].get(key, {})
    if "anyOf" in schema:  # an optional key (base): what it takes when it is given
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
    if "enum" in schema:
        return "one of " + ", ".join(repr(a) for a in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"a list of {schema['items'].get('type', 'value')}s".replace("integers", "int")
    return {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string"}.get(
        kind, "a value of another kind"
    )


def flat_loc(loc: tuple) -> tuple:
    """A pydantic error's place as a params file names it: ('model', 'n_fft') -> ('n_fft',); a whole
    section's check (('model',)) -> () (its message names its keys)."""
    if len(loc) >= 2 and loc[0] in SECTIONS and (loc[0], loc[1]) in _FLAT_OF:
        return (flat_key(loc[0], loc[1]), *loc[2:])
    return () if len(loc) == 1 and loc[0] in SECTIONS else loc


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _metadata(loc: tuple) -> list:
    """The constraints on the value at `loc`: the field's, or for a list item (`seeds[1]`) its item type's."""
    if loc[0] not in FIELDS:
        return []
    field = FIELDS[loc[0]]
    if len(loc) == 1:
        return list(field.metadata)
    (item,) = typing.get_args(field.annotation)[:1] or (None,)  # list[Annotated[int, Field(...)]]
    constraints = []
    for m in getattr(item, "__metadata__", ()):
        constraints.extend(getattr(m, "metadata", [m]))  # a Field(...) holds its bounds in .metadata
    return constraints


def _allowed_range(loc: tuple, kind: str, ctx: dict) -> str:
    """The bounds of the value at `loc` in words: 'in [0, 1)', '> 0', ... (the failed bound alone
    when the other is not known)."""
    bounds = {}
    for m in _metadata(loc):
        for name in ("gt", "ge", "lt", "le"):
            if getattr(m, name, None) is not None:
                bounds[name] = getattr(m, name)
    low = ("(", bounds["gt"]) if "gt" in bounds else ("[", bounds["ge"]) if "ge" in bounds else None
    high = (")", bounds["lt"]) if "lt" in bounds else ("]", bounds["le"]) if "le" in bounds else None
    if low and high:
        return f"in {low[0]}{_num(low[1])}, {_num(high[1])}{high[0]}"
    (limit,) = ctx.values()
    return f"{_BOUNDS[kind]} {_num(limit)}"


def _num(v: float) -> str:
    """2**24 as 16777216, 0.5 as 0.5: a bound as the user would write it."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _key_name(loc: tuple) -> str:
    """How a params file names the value at `loc`: ('seeds', 1) -> "key 'seeds[1]'"."""
    key = str(loc[0]) + "".join(f"[{p}]" for p in loc[1:])
    return f"key {shown(key)}"


def _message(e: dict, name: Callable[[tuple], str] = _key_name) -> str:
    """One pydantic error as our message: the key, what was given (shortened), what is allowed."""
    kind, loc, value = e["type"], flat_loc(e["loc"]), shown(e.get("input"))
    if kind == "value_error" and not loc:  # our cross-field checks name their keys
        return str(e["ctx"]["error"])
    key = name(loc)
    if kind == "invalid_key" or not isinstance(loc[0], str):
        return f"key {shown(loc[0])} is not a name: a key is text, such as n_fft"
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[0])[:MAX_SHOWN], FIELDS, n=1, cutoff=0.6)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return f"unknown key {shown(loc[0])}.{hint} Known keys: {', '.join(FIELDS)}"
    if kind in _BOUNDS:
        return f"{key}: must be {_allowed_range(loc, kind, e['ctx'])}, got {value}"
    if kind == "string_pattern_mismatch":
        what = "a cell: a name, or table/name" if loc[0] == "cell" else "a name"
        return (
            f"{key}: {value} is not {what} (lower-case letters, digits, '_' and '-', "
            f"starting with a letter or digit; it becomes part of a path)"
        )
    if kind == "finite_number":
        return f"{key}: must be a finite number, got {value}"
    if kind == "too_short":
        return f"{key}: needs at least {e['ctx']['min_length']} value(s), got {value}"
    expected = _describe(loc[0]) if len(loc) == 1 else {"int_type": "an integer"}.get(kind, e["msg"])
    return f"{key}: got {value} ({type(e.get('input')).__name__}), expected {expected}"


def _messages(errors: list[dict], name: Callable[[tuple], str] = _key_name) -> str:
    """The first MAX_MESSAGES distinct problems, '; '-joined, and how many errors are left out."""
    messages: list[str] = []
    seen = 0  # errors looked at: each message is built only for these
    for e in errors:
        seen += 1
        if (m := _message(e, name)) not in messages:
            messages.append(m)
        if len(messages) == MAX_MESSAGES:
            break
    left = len(errors) - seen
    return "; ".join(messages) + (f" (and {left} more error{'s' * (left > 1)})" if left else "")


def from_dict(raw: dict[str, Any], source: str = "<dict>", base: dict[str, Any] | None = None) -> Config:
    """Build a Config from `base` (already checked values) updated by `raw` (from `source`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    if nested := [k for k in raw if k in SECTIONS]:
        raise ConfigError(
            f"{source}: key {nested[0]!r} is a section of the config; params files are flat: write its keys "
            f"at the top level ({', '.join(sorted(section_keys(nested[0]))[:3])}, ...), not under {nested[0]!r}"
        )
    try:
        return Config.model_validate({**(base or {}), **raw})
    except ValidationError as err:
        raise ConfigError(f"{source}: {_messages(err.errors(include_url=False))}") from None


def synth_settings(values: dict[str, Any]) -> SynthSettings:
    """SynthSettings from `fmareport synth`'s options ({"seconds": 5.0, ...}: only those given; the
    rest are the defaults), checked by the section's own rules; ConfigError names each option."""
    try:
        return SynthSettings.model_validate(values)
    except ValidationError as err:
        errors = [{**e, "loc": flat_loc(("synth", *e["loc"]))} for e in err.errors(include_url=False)]

        def option(loc: tuple) -> str:  # ('synth_seconds',) -> 'option --seconds'
            return f"option --{FLAT_KEYS[loc[0]][1].replace('_', '-')}"

        raise ConfigError(_messages(errors, option)) from None  # the CLI puts its command first


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader, hardened for params text (docs/faults.md, case 13): YAML 1.2 numbers
    (`1e-3` is a float, not YAML 1.1's string); no anchors or aliases (nine nested ones expand to 9**9
    values: the "billion laughs"), no key twice (PyYAML keeps the last silently), no merge key (`<<`),
    nesting at most MAX_YAML_DEPTH deep. Each refusal is a ConfigError naming the source and the line.
    """

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self.source = source
        self.depth = 0

    def refuse(self, mark: yaml.Mark, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: line {mark.line + 1}: {what}")

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            what = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise self.refuse(
                event.start_mark,
                f"YAML {what}{shown(event.anchor, text=True)} refused (params files take no anchors or "
                "aliases: they can expand without bound); write the value out",
            )
        if self.depth >= MAX_YAML_DEPTH:
            raise self.refuse(event.start_mark, f"nested more than {MAX_YAML_DEPTH} deep; a config is flat")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.refuse(key_node.start_mark, "merge key '<<' refused; write the keys out")
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below ("found unhashable key")
            if key in lines:
                raise self.refuse(
                    key_node.start_mark, f"key {shown(key)} given twice (first on line {lines[key]}); keep one"
                )
            lines[key] = line
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def _check_size(n_bytes: int, source: str) -> None:
    """ConfigError for params text over MAX_PARAMS_BYTES (a file, `-p overrides`, a `--set` value)."""
    if n_bytes > MAX_PARAMS_BYTES:
        raise ConfigError(
            f"{source}: more than {MAX_PARAMS_BYTES // 1024} KiB of YAML (the limit for params text); "
            "a config is a few lines: check that this is the file you meant"
        )


def parse_yaml(text: str, source: str) -> Any:
    """The one reader of params YAML (files, overrides, `--set` values): text -> Python values, through
    `_Loader` and under MAX_PARAMS_BYTES; ConfigError naming `source` (and the line) for anything else."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), source)
    loader = _Loader(text, source)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}not valid YAML: {shown(err.problem or err.context, text=True)}") from None
    except yaml.YAMLError as err:  # no position: a control character, ...
        raise ConfigError(f"{source}: not valid YAML: {shown(str(err), text=True)}") from None
    except ValueError as err:  # a constructor's: an int of more than 4300 digits, a bad date
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: not a value a config holds: {shown(str(err), text=True)}") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A params file as a mapping; ConfigError naming the file for a missing, unreadable or bad one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {_not_a_file(path)}")
    with open(path, "rb") as f:
        data = f.read(MAX_PARAMS_BYTES + 1)  # never more: the file may be huge, or growing
    _check_size(len(data), str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}: {err.object[err.start]:#04x}); save the file as UTF-8"
        ) from None
    raw = parse_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw


def _not_a_file(path: Path) -> str:
    """Why `path` is no params file, and what to give instead."""
    if path.is_dir():
        example = next(iter(sorted(path.glob("*.yaml"))), None)
        such = f", such as {example}" if example is not None else ""
        return f"a folder, not a params file: give one of the .yaml files in it{such}"
    if path.exists():
        return "not a regular file (a FIFO, a device, ...): give a .yaml file"
    return "no such params file"


def profile_path(name_or_path: str | Path) -> Path:
    """`demo` -> params/profiles/demo.yaml (a name must match the name pattern); a .yaml path as is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    if not re.fullmatch(NAME_PATTERN, str(name_or_path)):
        raise ConfigError(
            f"profile {shown(str(name_or_path))}: not a profile name (lower-case letters, digits, '_' "
            f"and '-') nor a .yaml file; profiles: {', '.join(profiles())}"
        )
    return params_dir() / "profiles" / f"{name_or_path}.yaml"


def cell_path(cell: str) -> Path:
    """`table1/raw_whole` -> params/table1/raw_whole.yaml; the name must match the cell pattern."""
    if not isinstance(cell, str) or not re.fullmatch(CELL_PATTERN, cell):
        raise ConfigError(
            f"cell {shown(cell)}: not a cell name (e.g. table1/raw_whole: lower-case letters, digits, "
            "'_' and '-', one '/' at most)"
        )
    return params_dir() / f"{cell}.yaml"


def profiles() -> list[str]:
    """The profiles under params/profiles/."""
    return sorted(p.stem for p in (params_dir() / "profiles").glob("*.yaml"))


def params_dir() -> Path:
    """Where profile and cell names are looked up: `params/` in the working directory when it
    has one (the repo root, or a workflow's own copy), else the repository's `params/`."""
    here = Path("params")
    return here if (here / "profiles").is_dir() else PARAMS_DIR


def load_config(*paths: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load YAML files in order (later wins), then `overrides`; every layer is checked.

    >>> load_config("params/profiles/demo.yaml", "params/table1/raw_whole.yaml")  # doctest: +SKIP
    """
    values: dict[str, Any] = {}
    for i, path in enumerate(paths):
        raw = read_yaml(path)
        if i:
            _refuse_profile_key(raw, path)
        if raw.get("base") is not None:  # an ablation: its table cell first, then what it changes
            base = base_path(raw["base"], path)
            base_raw = read_yaml(base)
            _refuse_profile_key(base_raw, base)
            if base_raw.get("base") is not None:
                raise ConfigError(f"{path}: key 'base': {shown(raw['base'])} is itself an ablation; name a table cell")
            values = from_dict(base_raw, source=str(base), base=values).to_dict(every_key=True)
        values = from_dict(raw, source=str(path), base=values).to_dict(every_key=True)
    if overrides:
        _refuse_profile_key(overrides, "overrides")
        values = from_dict(overrides, source="overrides", base=values).to_dict(every_key=True)
    return Config.model_validate(values)


def base_path(base: Any, source: str | Path) -> Path:
    """The params file of an ablation's key `base` (in `source`): a cell of the paper's tables
    (TABLE_FOLDER), whose file exists; ConfigError naming `source`, the key and what to write otherwise."""
    example = "such as 'table1/both_segmented' (params/table1/both_segmented.yaml)"
    if isinstance(base, str) and re.fullmatch(rf"ablations/{NAME_PATTERN}", base):
        raise ConfigError(f"{source}: key 'base': {base!r} is itself an ablation; name a table cell, {example}")
    if not isinstance(base, str) or not re.fullmatch(rf"(?:{TABLE_FOLDER})/{NAME_PATTERN}", base):
        raise ConfigError(
            f"{source}: key 'base': {shown(base)} is not a cell of the paper's tables; an ablation's base is "
            f"one, named by its table folder and file name without .yaml, {example}"
        )
    path = params_dir() / f"{base}.yaml"
    if not path.is_file():
        raise ConfigError(f"{source}: key 'base': no cell {base!r} ({path}: {_not_a_file(path)}); name one {example}")
    return path


def name_mismatch(path: str | Path, key: str, asked: str, got: Any) -> ConfigError:
    """The error for the file `path`, loaded as the profile or cell (`key`) `asked`, whose resolved `key`
    is `got`: a file that does not set the key (an empty one, say) is told to write it, not blamed for the
    default or the base cell it inherits."""
    try:
        raw = read_yaml(path)
    except ConfigError as err:
        return err
    if key not in raw:
        why = "is empty" if not raw else f"has no key {key!r}"
        return ConfigError(
            f"{path}: {why}: a {key}'s file names its {key}: write '{key}: {asked}' in it"
            + (", then the keys the cell changes" if key == "cell" else "")
        )
    return ConfigError(f"{path} says '{key}: {shown(got, text=True)}': it must be '{asked}' (its file name)")


def _refuse_profile_key(raw: dict[str, Any], source: str | Path) -> None:
    """ConfigError when a layer other than the profile sets PROFILE_KEY."""
    if PROFILE_KEY in raw:
        raise ConfigError(f"{source}: key {PROFILE_KEY!r} says which cells a profile runs: set it in the profile")


def load_profile(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(profile_path(name_or_path), overrides=overrides)


def load_cell(profile: str, cell: str | None, overrides: dict[str, Any] | str | None = None) -> Config:
    """The config of one cell of one profile, by name: params/profiles/<profile>.yaml, then
    params/<cell>.yaml, then `overrides` (a mapping, or YAML text such as 'epochs: 2').

    The resolved config must name the profile and cell it was asked for (a file cannot
    claim another's name).
    """
    if isinstance(overrides, str):
        overrides = parse_yaml(overrides, "overrides") or {}
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"overrides: expected a mapping of keys to values, got {type(overrides).__name__}")
    paths = [profile_path(profile)] + ([cell_path(cell)] if cell is not None else [])
    cfg = load_config(*paths, overrides=overrides)
    for key, asked in (("profile", profile), ("cell", cell)):
        if asked and Path(str(asked)).suffix not in (".yaml", ".yml") and getattr(cfg, key) != asked:
            raise name_mismatch(paths[-1 if key == "cell" else 0], key, asked, getattr(cfg, key))
    return cfg
