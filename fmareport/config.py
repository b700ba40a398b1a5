"""One typed config for every setting of a run, built from YAML files.

A run's config is a profile (`params/profiles/<name>.yaml`: data scale, model
scale, protocol) overlaid by one experiment cell (`params/table*/<cell>.yaml`:
only what that cell of the paper's tables changes). Later files win.

Every key is checked: an unknown key, a wrong type or a bad value raises
`ConfigError` naming the file, the key, what is allowed, and for a typo the
nearest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = REPO_ROOT / "params"
PROFILES_DIR = PARAMS_DIR / "profiles"

InputKind = Literal["raw", "spectrogram", "both"]


class ConfigError(ValueError):
    """A params file (or papermill parameter) holds a key or value we refuse."""


@dataclass
class Config:
    """Every setting of one experiment run. Units are in the field comments."""

    # --- identity ---
    profile: str = "smoke"            # profile name: smoke | demo | paper (or your own)
    cell: str = "adhoc"               # experiment cell, e.g. "table1/spectrogram_segmented"

    # --- data: where the FMA-format data set is and how it is made ---
    # The defaults are the smoke profile's (params/profiles/smoke.yaml), so a run with no
    # params at all is a small synthetic one and shares the smoke profile's data folder.
    data_source: Literal["synth", "fma"] = "synth"  # synth: `fmareport synth`; fma: real FMA (fetch)
    data_dir: str = "data/synth-smoke"  # FMA-format root (holds fma_metadata/ and fma_small/)
    store_root: str = "data/stores"   # clip stores live here, one folder per settings fingerprint
    subset: Literal["small", "medium", "large"] = "small"
    synth_tracks_per_genre: int = 5   # synth only: tracks per genre in the small subset
    synth_seconds: float = 2.5        # synth only: length of each synthetic track (s)
    synth_sample_rate: int = 22050    # synth only: rate of the synthetic mp3s (Hz)
    synth_seed: int = 0               # synth only: same seed -> same bytes
    synth_bad_cases: bool = True      # synth only: add FMA's real failure cases

    # --- clips: decoded once into the store ---
    sample_rate: int = 8000           # Hz after resampling (paper: 44100)
    clip_samples: int = 16384         # samples per clip (paper: 10**6, 22.7 s at 44.1 kHz)
    clip_rule: Literal["start", "center"] = "start"  # which part of a longer track is kept
    min_clip_fraction: float = 0.5    # shorter tracks: zero-pad if >= this fraction of a clip, else skip
    prepare_workers: int = 0          # decode processes (0: one per CPU core)

    # --- model (DESIGN §4) ---
    input: InputKind = "spectrogram"  # raw (1D) | spectrogram (2D) | both (1D+2D)
    n_fft: int = 256                  # STFT window (samples); paper: 2048 ("4048" is a typo)
    hop: int = 128                    # STFT hop (samples); paper: 1024 = n_fft/2 (50 % overlap)
    channels: int = 32                # feature maps of the residual block (paper: 256)
    dense: list[int] = field(default_factory=lambda: [300, 150])  # hidden dense widths (Zhang et al.)
    dropout: float = 0.0              # after every layer but the last dense (paper: 0 or 0.2)

    # --- segments (the paper's "~3 s with 50 % overlap") ---
    segmented: bool = False
    segment_samples: int = 4096       # samples per segment (paper: 2**17, ~3 s at 44.1 kHz)
    segment_overlap: float = 0.5      # fraction of a segment shared with the next

    # --- protocol ---
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 1
    batch_size: int = 16              # clips per step (paper: 50); segmented: all segments of these clips
    lr: float = 5e-4                  # Adam learning rate
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True                  # bf16 autocast on CUDA (ignored on CPU)
    deterministic: bool = False       # torch deterministic algorithms (slower)
    results_dir: str = "results"      # results/<profile>/<cell>.json

    def __post_init__(self) -> None:
        errors = _value_errors(self)
        if errors:
            raise ConfigError("; ".join(errors))

    # --- derived quantities ---
    @property
    def segment_hop(self) -> int:
        """Samples between segment starts (2**16 in the paper profile)."""
        return int(round(self.segment_samples * (1.0 - self.segment_overlap)))

    @property
    def n_segments(self) -> int:
        """Segments per clip: 14 for a 10**6-sample clip and 2**17-sample segments at 50 %."""
        return (self.clip_samples - self.segment_samples) // self.segment_hop + 1

    @property
    def window_samples(self) -> int:
        """Samples the network sees at once: a whole clip or one segment."""
        return self.segment_samples if self.segmented else self.clip_samples

    @property
    def n_bins(self) -> int:
        """Frequency bins of the one-sided STFT: 1025 for n_fft = 2048."""
        return self.n_fft // 2 + 1

    def steps(self, n_samples: int) -> int:
        """Time steps after the first layer, T = N // hop - 2 (974 for 10**6, 126 for 2**17)."""
        return n_samples // self.hop - 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_HINTS = typing.get_type_hints(Config)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"a list of {typing.get_args(tp)[0].__name__}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise ConfigError saying what was expected."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"key {key!r}: got {value!r} ({type(value).__name__}), expected {_describe(tp)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        (item_tp,) = typing.get_args(tp)
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key!r}")  # a bug in Config, not in a file


def _value_errors(c: Config) -> list[str]:
    """Checks on values that types alone cannot express."""
    e = []
    positive = ["synth_tracks_per_genre", "synth_sample_rate", "sample_rate", "clip_samples",
                "n_fft", "hop", "channels", "segment_samples", "epochs", "batch_size"]
    e += [f"key {k!r}: must be > 0, got {getattr(c, k)}" for k in positive if getattr(c, k) <= 0]
    if c.synth_seconds <= 0:
        e.append(f"key 'synth_seconds': must be > 0, got {c.synth_seconds}")
    if not 0.0 <= c.dropout < 1.0:
        e.append(f"key 'dropout': must be in [0, 1), got {c.dropout}")
    if not 0.0 <= c.segment_overlap < 1.0:
        e.append(f"key 'segment_overlap': must be in [0, 1), got {c.segment_overlap}")
    if not 0.0 < c.min_clip_fraction <= 1.0:
        e.append(f"key 'min_clip_fraction': must be in (0, 1], got {c.min_clip_fraction}")
    if not c.lr > 0:
        e.append(f"key 'lr': must be > 0, got {c.lr}")
    if not c.seeds:
        e.append("key 'seeds': needs at least one seed")
    if c.prepare_workers < 0:
        e.append(f"key 'prepare_workers': must be >= 0, got {c.prepare_workers}")
    if any(w <= 0 for w in c.dense):
        e.append(f"key 'dense': widths must be > 0, got {c.dense}")
    if c.channels % 2:
        e.append(f"key 'channels': must be even (the 'both' input gives each half), got {c.channels}")
    if c.segment_samples > 0 and 0.0 <= c.segment_overlap < 1.0 and c.segment_hop < 1:
        e.append(f"key 'segment_overlap': {c.segment_overlap} leaves a segment hop of "
                 f"{c.segment_hop} samples for {c.segment_samples}-sample segments; lower it")
    if c.hop > 0 and c.segment_samples > 0 and c.clip_samples > 0:
        if c.segment_samples > c.clip_samples:
            e.append(f"key 'segment_samples': {c.segment_samples} is longer than clip_samples {c.clip_samples}")
        if c.segment_samples // c.hop - 2 < 4:
            e.append(f"key 'segment_samples': {c.segment_samples} samples give "
                     f"{c.segment_samples // c.hop - 2} steps after the first layer with hop {c.hop}; "
                     "the residual block needs at least 4 (its kernel)")
    return e


def from_dict(raw: dict[str, Any], source: str = "<dict>", base: dict[str, Any] | None = None) -> Config:
    """Build a Config from `base` (already checked values) updated by `raw` (from `source`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    values = dict(base or {})
    for key, value in raw.items():
        if key not in FIELDS:
            near = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.6)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{source}: unknown key {key!r}.{hint} Known keys: {', '.join(FIELDS)}")
        try:
            values[key] = _coerce(key, value, _HINTS[key])
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    try:
        return Config(**values)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw


def profile_path(name_or_path: str | Path) -> Path:
    """`demo` -> params/profiles/demo.yaml; a path is returned as is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return PROFILES_DIR / f"{name_or_path}.yaml"


def load_config(*paths: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load YAML files in order (later wins), then `overrides`; every layer is checked.

    >>> load_config("params/profiles/demo.yaml", "params/table1/raw_whole.yaml")  # doctest: +SKIP
    """
    values: dict[str, Any] = {}
    for path in paths:
        values = from_dict(read_yaml(path), source=str(path), base=values).to_dict()
    if overrides:
        values = from_dict(overrides, source="overrides", base=values).to_dict()
    return Config(**values)


def load_profile(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(profile_path(name_or_path), overrides=overrides)
