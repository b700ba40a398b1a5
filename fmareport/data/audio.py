"""Audio in the clip store: how one mp3 becomes one fixed-length int16 clip.

Decode rule (DECODE_VERSION 1), per track:
  1. soundfile (libsndfile, mpg123) decodes the mp3 to float32; gapless info (LAME tag)
     is honoured, so a file written by our synth decodes to exactly its samples;
  2. mono: the mean of the channels;
  3. soxr (HQ) resamples the whole track to the target rate;
  4. a clip of `clip_samples` is cut: clip_rule "start" keeps the first samples,
     "center" the middle ones (start (n - clip) // 2);
  5. a shorter track is zero-padded at its end if it has at least
     ceil(min_clip_fraction * clip_samples) samples, else skipped as "too short";
     a clip whose peak is below SILENCE_PEAK is skipped as "silent";
  6. int16 = clip(round(x * 32768), -32768, 32767); read back as x / 32768 (INT16_SCALE),
     libsndfile's own int16 <-> float convention; decoded mp3s overshoot 1.0 a little.
A missing file is skipped as "missing", a path that is a folder (or another non-file) as
"not a file", one that fails to decode as "undecodable".
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

DECODE_VERSION = 1  # bump when the decode rule above changes: old stores are not reused
INT16_SCALE = 32768  # float = int16 / 32768, in [-1, 1)
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: a clip of music always peaks above this


class Skip(Exception):
    """A track that cannot be stored; args: (reason, detail)."""


def to_int16(x: np.ndarray) -> np.ndarray:
    """float samples (full scale 1.0) -> int16, rounded and clipped to the int16 range."""
    return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16)


def to_float(x: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 in [-1, 1) (the inverse of `to_int16` up to rounding)."""
    return x.astype(np.float32) / INT16_SCALE


def decoder_versions() -> dict[str, str]:
    """Versions whose change may change decoded samples (soundfile's wheel bundles libsndfile, mpg123)."""
    return {"soundfile": sf.__version__, "libsndfile": sf.__libsndfile_version__, "soxr": soxr.__version__}


@contextlib.contextmanager
def decoder_notes() -> Iterator[list[str]]:
    """Capture what the C decoders print on file descriptor 2 during the block (mpg123's
    "Note: Trying to resync..." for a damaged mp3) into the yielded list, one string per
    block, so the caller can report it with the file's name instead of bare on stderr."""
    notes: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield notes
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace").strip()
            if text:
                notes.append(" ".join(text.split()))


def decode_clip(
    path: str | Path, sample_rate: int, clip_samples: int, clip_rule: str = "start", min_clip_fraction: float = 0.5
) -> np.ndarray:
    """Decode one mp3 into a clip by the rule in this module's docstring: (clip_samples,) int16.

    Raises Skip("missing" | "not a file" | "undecodable" | "too short" | "silent", detail).
    """
    path = Path(path)
    if path.is_dir():
        raise Skip("not a file", f"{path} is a folder, not a file")
    if path.exists() and not path.is_file():  # never opened: opening a FIFO waits for a writer
        raise Skip("not a file", f"{path} is not a regular file (a device, FIFO or socket)")
    if not path.is_file():
        raise Skip("missing", f"no file {path}")
    size = path.stat().st_size
    if size == 0:
        raise Skip("undecodable", "the file is empty (0 bytes)")
    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)  # (n, channels)
    except Exception as err:  # whatever a broken file makes the decoder raise
        why = str(err)
        if "does not exist or is not a regular file" in why:  # libsndfile's words for "unknown format"
            why = "not in a format libsndfile recognises as audio"
        raise Skip("undecodable", f"{size:,} bytes, {why} ({type(err).__name__})") from None
    x = x.mean(axis=1)  # (n,) mono
    if rate != sample_rate:
        x = soxr.resample(x, rate, sample_rate, quality="HQ")
    need = math.ceil(min_clip_fraction * clip_samples)
    if len(x) < need:
        raise Skip(
            "too short",
            f"{len(x) / sample_rate:.3f} s = {len(x)} samples at {sample_rate} Hz "
            f"< {min_clip_fraction} x clip = {need} samples",
        )
    start = (len(x) - clip_samples) // 2 if clip_rule == "center" and len(x) > clip_samples else 0
    clip = np.zeros(clip_samples, np.float32)
    piece = x[start : start + clip_samples]
    clip[: len(piece)] = piece
    peak = float(np.abs(clip).max())
    if peak < SILENCE_PEAK:
        raise Skip("silent", f"peak {peak:.2e} < {SILENCE_PEAK:.0e} (-60 dBFS)")
    return to_int16(clip)
