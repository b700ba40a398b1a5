"""`fmareport synth DIR`: a synthetic data set in FMA's exact on-disk format.

    DIR/fma_metadata/tracks.csv    the 52 two-level columns, written by pandas as FMA's is
    DIR/fma_metadata/genres.csv    the official columns, rows of the 8 top-level genres
    DIR/fma_small/NNN/NNNNNN.mp3   stereo mp3 (libsndfile's LAME, VBR), one per small track
    DIR/fma_small/checksums        `<sha1>  000/000002.mp3` lines, as in fma_small.zip

Each genre is a musical style: its own tempo range, metre, scales, drum patterns and
instruments (four-on-the-floor kicks and arpeggiated saws for Electronic, boom-bap
drums and a sub bass for Hip-Hop, distorted power chords for Rock, strummed and
finger-picked strings for Folk, hand drums, drones and modal lines for International,
piano and bowed strings without drums for Instrumental, a sung lead over a backbeat
for Pop, glissandi, noise and inharmonic bells without a pulse for Experimental).
Neighbouring styles share instruments and tempi, and every track draws its own tempo,
key, gains, pans and optional parts, borrows one part of another genre's style with
probability BORROW_P, and goes through a random recording chain (low-pass, spectral
tilt, noise floor, level). So the task is learnable, but not trivially.

Tracks of the medium and large subsets are listed in tracks.csv only: as in FMA, their
audio is not in fma_small, and `prepare` must leave them out. With `bad_cases`, five
tracks under the ids of FMA's own broken tracks are added to the small subset:
a track much shorter than a clip, a silent one, an empty (0-byte) mp3, an mp3 of
random bytes, and a track listed in tracks.csv whose file is missing.

A track's audio depends only on (seed, track_id): the same seed gives the same bytes,
whatever the number of worker processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from .progress import tqdm

from .fma import COLUMNS, GENRE_IDS, GENRES, NO_AUDIO_TRACKS, SHORT_TRACKS, audio_path
from .store import process_pool

VALIDATION_FRACTION = 0.1     # FMA's split is 80/10/10 per genre; the rest is training
TEST_FRACTION = 0.1
EXTRA_FRACTION = 0.1          # per genre, medium and large tracks each: 10 % of the small ones (>= 1)
SHORT_SECONDS = 0.25          # the short bad case: under half a clip of every profile (smoke: 2.05 s)
BORROW_P = 0.35               # chance that a track plays one part of another genre's style
MAX_TRACK_ID = 155_999        # FMA's audio folders are 000-155
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1/2/2.5 layer III
BAD_CASES = {                 # FMA's broken ids (fma.SHORT_TRACKS, fma.NO_AUDIO_TRACKS) -> what we write
    SHORT_TRACKS[0]: "short",
    SHORT_TRACKS[1]: "silent",
    NO_AUDIO_TRACKS[0]: "empty",
    NO_AUDIO_TRACKS[1]: "garbage",
    NO_AUDIO_TRACKS[2]: "missing",
}
LICENSE = "Attribution-NonCommercial-ShareAlike 3.0 International"


# ----------------------------------------------------------------------------
# Sound: every signal is float64, mono (n,) unless said, in [-1, 1]-ish units.

def hz(midi: float | np.ndarray) -> float | np.ndarray:
    """Frequency (Hz) of a MIDI note number (69 = A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69) / 12)


def bandpass(x: np.ndarray, sr: int, lo: float = 0.0, hi: float = 0.0, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth-shaped high-pass (lo Hz) and/or low-pass (hi Hz), applied by FFT."""
    f = np.fft.rfftfreq(x.shape[-1], 1 / sr)
    gain = np.ones_like(f)
    if hi:
        gain /= np.sqrt(1 + (f / hi) ** (2 * order))
    if lo:
        gain /= np.sqrt(1 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x) * gain, x.shape[-1])


@dataclass
class Voice:
    """An additive instrument: partial k (1-based) at k*f, amplitude amps[k-1], phase 0."""

    amps: tuple[float, ...]           # relative amplitude of each partial
    attack: float = 0.005             # s, linear rise
    decay: float = 0.0                # s, exponential decay time of the body (0: sustained)
    darken: float = 0.0               # 1/s, extra decay rate per partial above the first (plucks)
    release: float = 0.05             # s, exponential fade after the note's end
    vibrato: tuple[float, float] = (0.0, 0.0)   # (rate Hz, depth as a fraction of f)
    tremolo: tuple[float, float] = (0.0, 0.0)   # (rate Hz, depth as a fraction of the amplitude)
    slide: tuple[float, float] = (0.0, 0.0)     # start at f*(1+a), reach f with time constant tau s


def note(v: Voice, f: float, dur: float, sr: int) -> np.ndarray:
    """One note of voice v: f Hz held for dur s, then released; (samples,) float64."""
    t = np.arange(int((dur + 4 * v.release) * sr)) / sr
    (vr, vd), (sa, st) = v.vibrato, v.slide
    cycles = f * t                                                    # phase in cycles of f
    if vd:
        cycles += f * vd * (1 - np.cos(2 * np.pi * vr * t)) / (2 * np.pi * vr)
    if sa:
        cycles += f * sa * st * (1 - np.exp(-t / st))
    theta = 2 * np.pi * cycles
    sin_prev, sin_k, two_cos = np.zeros_like(t), np.sin(theta), 2 * np.cos(theta)
    dark = np.exp(-v.darken * t) if v.darken else None
    damp, out = 1.0, np.zeros_like(t)
    for k, a in enumerate(v.amps, start=1):                          # sin(k theta) by Chebyshev's recurrence
        if k * f * (1 + abs(sa)) >= sr / 2:                           # no partial above Nyquist
            break
        if a:
            out += a * damp * sin_k
        sin_prev, sin_k = sin_k, two_cos * sin_k - sin_prev
        if dark is not None:
            damp = damp * dark                                        # partial k decays darken*(k-1) faster
    env = np.minimum(t / v.attack, 1.0)
    if v.decay:
        env *= np.exp(-t / v.decay)
    env *= np.where(t < dur, 1.0, np.exp(-(t - dur) / v.release))
    if v.tremolo[1]:
        env *= 1 - v.tremolo[1] * (0.5 + 0.5 * np.sin(2 * np.pi * v.tremolo[0] * t))
    return out * env


def place(n: int, sr: int, times: np.ndarray, sounds: list[np.ndarray] | np.ndarray,
          gains: np.ndarray | None = None) -> np.ndarray:
    """Sum sounds (one per time, or one for all) starting at times (s) into an (n,) stem."""
    stem = np.zeros(n)
    for i, t in enumerate(times):
        s = sounds if isinstance(sounds, np.ndarray) else sounds[i]
        start = int(t * sr)
        if 0 <= start < n:
            stem[start:start + len(s)] += (1.0 if gains is None else gains[i]) * s[:n - start]
    return stem


def kick(sr: int, rng: np.random.Generator, low: float = 50.0) -> np.ndarray:
    """A sine swept down from 110-170 Hz above `low` Hz to `low` Hz: 0.4 s."""
    t = np.arange(int(0.4 * sr)) / sr
    f = low * rng.uniform(0.85, 1.2) + rng.uniform(60, 120) * np.exp(-t / rng.uniform(0.02, 0.05))
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.12, 0.3))


def snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A 180-250 Hz body and band-passed noise: 0.3 s."""
    t = np.arange(int(0.3 * sr)) / sr
    body = np.sin(2 * np.pi * rng.uniform(180, 250) * t) * np.exp(-t / 0.04)
    rattle = bandpass(rng.standard_normal(len(t)), sr, lo=rng.uniform(800, 2000), hi=rng.uniform(5000, 9000))
    return 0.5 * body + 0.4 * rattle * np.exp(-t / rng.uniform(0.06, 0.15))


def hat(sr: int, rng: np.random.Generator, length: float = 0.05) -> np.ndarray:
    """High-passed noise with an exponential decay of `length` s."""
    t = np.arange(int(4 * length * sr)) / sr
    noise = bandpass(rng.standard_normal(len(t)), sr, lo=rng.uniform(5000, 8000), order=4)
    return noise * np.exp(-t / length)


def hand_drum(sr: int, rng: np.random.Generator, f: float) -> np.ndarray:
    """A tabla/darbuka-like stroke: a membrane tone that drops in pitch, and a slap: 0.5 s."""
    t = np.arange(int(0.5 * sr)) / sr
    pitch = f * (1 + 0.3 * np.exp(-t / 0.03))
    tone = np.sin(2 * np.pi * np.cumsum(pitch) / sr) + 0.4 * np.sin(2 * np.pi * 2.7 * np.cumsum(pitch) / sr)
    slap = bandpass(rng.standard_normal(len(t)), sr, lo=1500, hi=6000) * np.exp(-t / 0.01)
    return (tone * np.exp(-t / rng.uniform(0.08, 0.25)) + 0.5 * slap) * 0.6


# ----------------------------------------------------------------------------
# Songs: the time grid, harmony and the mixer a style writes its parts into.

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "hijaz": (0, 1, 4, 5, 7, 8, 10), "bhairav": (0, 1, 4, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9), "minor_pentatonic": (0, 3, 5, 7, 10), "whole_tone": (0, 2, 4, 6, 8, 10),
}


@dataclass
class Song:
    """One track being written: its grid, harmony and a stereo mix buffer."""

    rng: np.random.Generator
    sr: int
    n: int                               # samples
    bpm: float
    meter: int                           # beats per bar
    key: int                             # MIDI note of the tonic (the style's register)
    scale: tuple[int, ...]
    progression: tuple[int, ...]         # scale degree (0-based) of each bar's chord, cycled
    swing: float = 0.0                   # delay of every other step, as a fraction of a step
    mix: np.ndarray = field(init=False)  # (n, 2) float64

    def __post_init__(self) -> None:
        self.mix = np.zeros((self.n, 2))

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    def grid(self, per_beat: int) -> np.ndarray:
        """Start time (s) of every step, per_beat steps a beat, over the whole song."""
        step = self.beat / per_beat
        k = np.arange(int(self.n / self.sr / step) + 1)
        return k * step + (k % 2) * self.swing * step

    def bar(self, t: np.ndarray | float) -> np.ndarray:
        return (np.asarray(t) / (self.meter * self.beat)).astype(int)

    def pitch(self, degree: int, octave: int = 0) -> int:
        """MIDI note of a scale degree (any integer), `octave` octaves from the key's."""
        d = len(self.scale)
        return self.key + 12 * (octave + degree // d) + self.scale[degree % d]

    def chord(self, t: float, size: int = 3, octave: int = 0) -> list[int]:
        """MIDI notes of the chord sounding at t s: stacked thirds on this bar's degree."""
        root = self.progression[int(self.bar(t)) % len(self.progression)]
        return [self.pitch(root + 2 * i, octave) for i in range(size)]

    def add(self, stem: np.ndarray, db: float, pan: float) -> None:
        """Mix a mono stem in at `db` dB (+-4 dB per track) and pan in [-1, 1] (+-0.3 per track)."""
        g = 10 ** ((db + self.rng.uniform(-4, 4)) / 20)
        p = np.clip(pan + self.rng.uniform(-0.3, 0.3), -1, 1)
        angle = (p + 1) * np.pi / 4                                    # constant-power pan
        self.mix[:, 0] += g * np.cos(angle) * stem
        self.mix[:, 1] += g * np.sin(angle) * stem


def rhythm(s: Song, pattern: str, per_beat: int, mutate: float = 0.08,
           jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and velocities of a one-bar pattern ('x' accent, 'o' soft, '.' rest), repeated.

    Each step flips (hit <-> rest) with probability `mutate`; timing is humanized by
    `jitter` s (standard deviation).
    """
    times = s.grid(per_beat)
    vel = np.array([{"x": 1.0, "o": 0.5, ".": 0.0}[c] for c in pattern])[np.arange(len(times)) % len(pattern)]
    flip = s.rng.random(len(times)) < mutate
    vel = np.where(flip, np.where(vel > 0, 0.0, 0.4), vel) * s.rng.uniform(0.75, 1.0, len(times))
    times = times + s.rng.normal(0, jitter, len(times)) if jitter else times
    keep = (vel > 0) & (times >= 0)
    return times[keep], vel[keep]


def play(s: Song, v: Voice, times: np.ndarray, midis: list[int] | np.ndarray, durs: np.ndarray | float,
         vels: np.ndarray | None = None, hi: float = 0.0) -> np.ndarray:
    """A stem of voice v playing MIDI notes `midis` at `times` (s) for `durs` (s), low-passed at hi Hz."""
    durs = np.broadcast_to(durs, len(times))
    cache: dict[tuple[int, float], np.ndarray] = {}                   # a riff repeats its notes
    for m, d in zip(midis, durs):
        if (m, d) not in cache:
            cache[m, d] = note(v, hz(m), d, s.sr)
            if hi:
                cache[m, d] = bandpass(cache[m, d], s.sr, hi=hi)
    return place(s.n, s.sr, times, [cache[m, d] for m, d in zip(midis, durs)], vels)


def walk(s: Song, count: int, start: int = 0, steps=(-2, -1, -1, 0, 1, 1, 2), lo: int = -3, hi: int = 9) -> np.ndarray:
    """A melody as scale degrees: a random walk of `count` steps kept within [lo, hi]."""
    d = start + np.cumsum(s.rng.choice(steps, count))
    return np.clip(d, lo, hi)


# Instruments shared between styles (neighbouring genres use the same ones).
PLUCK = Voice(amps=(1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08), attack=0.002, decay=0.6, darken=3.0, release=0.08)
PIANO = Voice(amps=(1, 0.45, 0.3, 0.12, 0.08, 0.04), attack=0.003, decay=0.9, darken=1.5, release=0.15)
BOWED = Voice(amps=(1, 0.6, 0.45, 0.3, 0.2, 0.12, 0.08), attack=0.15, release=0.25, vibrato=(5.5, 0.006))
SAW = Voice(amps=tuple(1 / k for k in range(1, 13)), attack=0.005, release=0.05)
PULSE = Voice(amps=(1, 0, 1 / 3, 0, 1 / 5, 0, 1 / 7, 0, 1 / 9), attack=0.003, release=0.03)
VOCAL = Voice(amps=(0.6, 1.0, 0.8, 0.35, 0.2, 0.3, 0.25, 0.1), attack=0.06, release=0.12, vibrato=(5.8, 0.012))
SUB = Voice(amps=(1, 0.15), attack=0.01, release=0.1)


# ----------------------------------------------------------------------------
# Parts: each writes one instrument's stem into the song. Styles pick among them.

def hits(s: Song, pattern: str, per_beat: int, sound: np.ndarray, mutate: float = 0.08,
         jitter: float = 0.0) -> np.ndarray:
    """A stem of `sound` played on a rhythm pattern (see `rhythm`)."""
    t, v = rhythm(s, pattern, per_beat, mutate, jitter)
    return place(s.n, s.sr, t, sound, v)


def four_on_the_floor(s: Song) -> None:
    s.add(hits(s, "x...x...x...x...", 4, kick(s.sr, s.rng), 0.02), -3, 0)
    s.add(hits(s, "..x...x...x...x.", 4, hat(s.sr, s.rng, 0.12), 0.05), -14, 0.3)
    s.add(hits(s, "oooooooooooooooo", 4, hat(s.sr, s.rng, 0.03), 0.1), -20, -0.3)
    if s.rng.random() < 0.6:
        s.add(hits(s, "....x.......x...", 4, snare(s.sr, s.rng), 0.02), -9, 0)


def boom_bap(s: Song) -> None:
    s.add(hits(s, "x.....x...x..o..", 4, kick(s.sr, s.rng, 45), 0.1, 0.006), -2, 0)
    s.add(hits(s, "....x.......x...", 4, snare(s.sr, s.rng), 0.03, 0.006), -5, 0.05)
    s.add(hits(s, "xoxoxoxoxoxoxoxo", 4, hat(s.sr, s.rng, 0.04), 0.15, 0.008), -16, 0.25)


def rock_kit(s: Song) -> None:
    s.add(hits(s, "x.o.x.o.x.x.o...", 4, kick(s.sr, s.rng, 60), 0.08, 0.004), -4, 0)
    s.add(hits(s, "....x.......x...", 4, snare(s.sr, s.rng), 0.04, 0.004), -3, 0)
    s.add(hits(s, "x.x.x.x.x.x.x.x.", 4, hat(s.sr, s.rng, s.rng.uniform(0.04, 0.2)), 0.05, 0.004), -12, 0.35)
    bars = np.arange(0, s.n / s.sr, s.meter * s.beat * 2)
    s.add(place(s.n, s.sr, bars, hat(s.sr, s.rng, 0.8)), -14, -0.4)       # a crash every two bars


def pop_kit(s: Song) -> None:
    s.add(hits(s, "x.......x.x.....", 4, kick(s.sr, s.rng, 55), 0.06, 0.002), -5, 0)
    s.add(hits(s, "....x.......x...", 4, snare(s.sr, s.rng), 0.02, 0.002), -6, 0)
    s.add(hits(s, "o.o.o.o.o.o.o.o.", 4, hat(s.sr, s.rng, 0.05), 0.05, 0.003), -17, 0.3)


def hand_drums(s: Song) -> None:
    pattern = s.rng.choice(["x.o.x.ox.o.x.o", "x..o.x.o..x.o.", "x.ox.ox.o.xo", "xo.xo.xoox.o"])
    t, v = rhythm(s, pattern, 4, 0.1, 0.01)
    f = hz(s.key - 12) * s.rng.uniform(0.9, 1.1)
    sounds = [hand_drum(s.sr, s.rng, f * (1.0 if vi > 0.7 else 1.6)) for vi in v]
    s.add(place(s.n, s.sr, t, sounds, v), -6, s.rng.uniform(-0.4, 0.4))


def shaker(s: Song) -> None:
    s.add(hits(s, "xooxooxoo", 3 if s.meter == 3 else 4, hat(s.sr, s.rng, 0.07), 0.1, 0.008), -22, 0.5)
    s.add(hits(s, "x...", 4, kick(s.sr, s.rng, 70), 0.1, 0.01), -20, 0)          # foot stomp


def sub_bass(s: Song) -> None:
    times = np.arange(0, s.n / s.sr, 2 * s.beat)
    s.add(play(s, SUB, times, [s.chord(t)[0] - 24 for t in times], 1.8 * s.beat), -4, 0)


def picked_bass(s: Song) -> None:
    times = s.grid(2)
    v = Voice(amps=(1, 0.5, 0.25, 0.1), attack=0.004, decay=0.4, darken=2.0, release=0.05)
    s.add(play(s, v, times, [s.chord(t)[0] - 24 for t in times], 0.45 * s.beat), -7, 0)


def synth_bass(s: Song) -> None:
    t, v = rhythm(s, ".x.x.x.x", 2, 0.05)
    s.add(play(s, SAW, t, [s.chord(x)[0] - 24 for x in t], 0.4 * s.beat, v, hi=s.rng.uniform(300, 900)), -6, 0)


def arpeggio(s: Song) -> None:
    times = s.grid(4)
    order = s.rng.choice([(0, 1, 2, 3), (0, 1, 2, 1), (0, 2, 1, 3), (3, 2, 1, 0)])
    midis = [s.chord(t, 4, octave=1)[order[i % 4]] for i, t in enumerate(times)]
    v = PULSE if s.rng.random() < 0.5 else SAW
    v = dataclasses.replace(v, decay=s.rng.uniform(0.05, 0.2))
    s.add(play(s, v, times, midis, 0.2 * s.beat, hi=s.rng.uniform(1500, 6000)), -13, s.rng.uniform(-0.6, 0.6))


def saw_pad(s: Song) -> None:
    bars = np.arange(0, s.n / s.sr, s.meter * s.beat)
    pad = dataclasses.replace(SAW, attack=0.3, release=0.3, vibrato=(0.3, 0.004))
    stem = sum(play(s, pad, bars, [s.chord(t)[i] for t in bars], s.meter * s.beat, hi=2500) for i in range(3))
    pump = 1 - 0.6 * np.exp(-(np.arange(s.n) / s.sr % s.beat) / 0.08)         # side-chained to the kick
    s.add(stem * pump, -14, 0)


def power_chords(s: Song) -> None:
    """Eighth-note power chords (root, fifth, octave) of naive saws through tanh distortion."""
    t, v = rhythm(s, "xoxoxoxo", 2, 0.08, 0.004)
    x = np.arange(int(0.5 * s.beat * s.sr)) / s.sr
    drive, tone = s.rng.uniform(4, 15), s.rng.uniform(2500, 5000)
    sounds = {}                                                          # one per chord root
    for root in {s.chord(at)[0] - 12 for at in t}:
        saws = sum(2 * ((hz(root) * ratio * x + s.rng.random()) % 1) - 1 for ratio in (1, 1.5, 2))
        sounds[root] = bandpass(np.tanh(drive * saws) / 2, s.sr, lo=90, hi=tone)
    stem = place(s.n, s.sr, t, [sounds[s.chord(at)[0] - 12] for at in t], v)
    s.add(stem, -9, s.rng.choice([-0.5, 0.5]))


def piano_chords(s: Song) -> None:
    times = s.grid(s.rng.choice([1, 2]))
    stem = sum(play(s, PIANO, times, [s.chord(t, 4)[i] for t in times], 0.9 * s.beat) for i in range(4))
    s.add(stem, -12, s.rng.uniform(-0.3, 0.3))


def rhodes_loop(s: Song) -> None:
    bars = np.arange(0, s.n / s.sr, s.meter * s.beat / 2)
    ep = Voice(amps=(1, 0.3, 0.1), attack=0.005, decay=1.5, release=0.2, tremolo=(5.0, 0.4))
    hi = s.rng.uniform(1200, 2500)
    stem = sum(play(s, ep, bars, [s.chord(t, 4, octave=-1)[i] for t in bars], s.meter * s.beat / 2, hi=hi)
               for i in range(4))
    s.add(stem, -10, 0)


def piano_melody(s: Song) -> None:
    times = s.grid(2)
    keep = s.rng.random(len(times)) < 0.7
    s.add(play(s, PIANO, times[keep], [s.pitch(d, 1) for d in walk(s, keep.sum())], 0.5 * s.beat), -10, 0.2)


def strum(s: Song) -> None:
    t, v = rhythm(s, s.rng.choice(["x.x.oxox", "x..x..x.", "x.oxo.ox"]), 2, 0.1, 0.01)
    stem = np.zeros(s.n)
    for i in range(4):                                                   # strings 15-30 ms apart
        midis = [s.chord(x, 4, octave=-1)[i] for x in t]
        stem += play(s, PLUCK, t + i * s.rng.uniform(0.012, 0.03), midis, 0.45 * s.beat, v)
    s.add(stem, -10, s.rng.uniform(-0.5, 0.5))


def fingerpick(s: Song) -> None:
    times = s.grid(2)
    midis = [s.chord(t, 3)[[0, 2, 1, 2][i % 4]] + (-12 if i % 4 == 0 else 0) for i, t in enumerate(times)]
    s.add(play(s, PLUCK, times, midis, 0.8 * s.beat), -9, s.rng.uniform(-0.5, 0.5))


def string_pad(s: Song) -> None:
    bars = np.arange(0, s.n / s.sr, s.meter * s.beat)
    stem = sum(play(s, BOWED, bars, [s.chord(t)[i] for t in bars], s.meter * s.beat) for i in range(3))
    s.add(stem, -15, 0)


def sung_lead(s: Song) -> None:
    times = s.grid(2)
    keep = (s.rng.random(len(times)) < 0.6) & (s.bar(times) % 4 != 3)  # phrases breathe every 4th bar
    s.add(play(s, VOCAL, times[keep], [s.pitch(d, 0) for d in walk(s, keep.sum(), 2)], 0.9 * s.beat), -9, 0)


def fiddle(s: Song) -> None:
    times = s.grid(2)
    s.add(play(s, BOWED, times, [s.pitch(d, 1) for d in walk(s, len(times))], 0.5 * s.beat), -12, -0.3)


def modal_lead(s: Song) -> None:
    """A sitar/oud-like line: bright plucks that slide into their notes."""
    times = s.grid(s.rng.choice([2, 4]))
    keep = s.rng.random(len(times)) < 0.65
    v = dataclasses.replace(PLUCK, amps=(1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2),
                            slide=(s.rng.uniform(-0.06, 0.06), 0.04), decay=0.8)
    s.add(play(s, v, times[keep], [s.pitch(d, 1) for d in walk(s, keep.sum())], 0.4 * s.beat), -9, 0.3)


def drone(s: Song) -> None:
    """A tanpura-like drone: the tonic and fifth, plucked in turn, ringing."""
    times = np.arange(0, s.n / s.sr, s.rng.uniform(0.4, 0.9))
    midis = [s.key - 12 + (0, 7, 12, 0)[i % 4] for i in range(len(times))]
    v = dataclasses.replace(PLUCK, decay=2.5, darken=0.8)
    s.add(play(s, v, times, midis, 1.0), -14, -0.2)


def glissandi(s: Song) -> None:
    """Sine tones sliding between random pitches at irregular times."""
    count = s.rng.poisson(1.5 * s.n / s.sr) + 1
    times = np.sort(s.rng.uniform(0, s.n / s.sr, count))
    sounds = []
    for _ in range(count):
        length = s.rng.uniform(0.3, 2.0)
        t = np.arange(int(length * s.sr)) / s.sr
        f = np.geomspace(s.rng.uniform(80, 3000), s.rng.uniform(80, 3000), len(t))
        sounds.append(np.sin(2 * np.pi * np.cumsum(f) / s.sr) * np.sin(np.pi * t / length))
    s.add(place(s.n, s.sr, times, sounds), -12, s.rng.uniform(-0.7, 0.7))


def noise_bursts(s: Song) -> None:
    """Band-passed noise swells at random centre frequencies and times."""
    count = s.rng.poisson(1.2 * s.n / s.sr) + 1
    times = s.rng.uniform(0, s.n / s.sr, count)
    sounds = []
    for _ in range(count):
        length, centre = s.rng.uniform(0.1, 1.2), s.rng.uniform(200, 8000)
        t = np.arange(int(length * s.sr)) / s.sr
        sounds.append(bandpass(s.rng.standard_normal(len(t)), s.sr, lo=centre / 1.5, hi=centre * 1.5)
                      * np.sin(np.pi * t / length) ** 2)
    s.add(place(s.n, s.sr, times, sounds), -12, s.rng.uniform(-0.7, 0.7))


def bells(s: Song) -> None:
    """Inharmonic, bell-like clusters (partials at non-integer ratios)."""
    count = s.rng.poisson(1.0 * s.n / s.sr) + 1
    times = s.rng.uniform(0, s.n / s.sr, count)
    ratios = s.rng.uniform(1.0, 4.5, 5)
    t = np.arange(int(1.5 * s.sr)) / s.sr
    sounds = [sum(np.sin(2 * np.pi * f0 * r * t) * np.exp(-t * (1 + 2 * r)) for r in ratios) / 3
              for f0 in s.rng.uniform(150, 900, count)]
    s.add(place(s.n, s.sr, times, sounds), -12, s.rng.uniform(-0.6, 0.6))


def vinyl(s: Song) -> None:
    """Record crackle and hiss."""
    clicks = (s.rng.random(s.n) < 30 / s.sr) * s.rng.standard_normal(s.n)
    hiss = np.diff(s.rng.standard_normal(s.n + 1))                       # differenced: tilted to the highs
    s.add(clicks + 0.02 * hiss, -20, 0)


@dataclass(frozen=True)
class Style:
    """A genre as a recipe: tempo, metre, harmony and register ranges, and the parts it plays."""

    bpm: tuple[float, float]                 # tempo range (beats per minute)
    meters: tuple[int, ...]                  # beats per bar, one drawn per track
    scales: tuple[str, ...]                  # names in SCALES
    progressions: tuple[tuple[int, ...], ...]  # chord roots (scale degrees), one bar each
    core: tuple                              # parts always played
    optional: tuple = ()                     # (part, probability of playing it)
    swing: tuple[float, float] = (0.0, 0.0)  # range of Song.swing
    key: tuple[int, int] = (60, 71)          # MIDI range of the tonic (register)


STYLES = {
    "Electronic": Style(
        bpm=(118, 136), meters=(4,), scales=("minor", "dorian"), progressions=((0, 0, 5, 3), (0, 5, 3, 4), (0, 3)),
        core=(four_on_the_floor, arpeggio), optional=((synth_bass, 0.8), (saw_pad, 0.6), (vinyl, 0.1))),
    "Experimental": Style(
        bpm=(60, 140), meters=(4, 5, 7), scales=("whole_tone", "hijaz", "minor"), progressions=((0,), (0, 1)),
        core=(glissandi, noise_bursts), optional=((bells, 0.7), (drone, 0.3), (saw_pad, 0.2), (piano_melody, 0.2))),
    "Folk": Style(
        bpm=(80, 125), meters=(3, 4), scales=("major", "mixolydian"),
        progressions=((0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4)), core=(strum,),
        optional=((fingerpick, 0.5), (fiddle, 0.4), (sung_lead, 0.4), (shaker, 0.4), (picked_bass, 0.3))),
    "Hip-Hop": Style(
        bpm=(78, 100), meters=(4,), scales=("minor", "dorian", "minor_pentatonic"),
        progressions=((0, 5), (0, 3, 5, 4), (0,)), core=(boom_bap, sub_bass),
        optional=((rhodes_loop, 0.7), (vinyl, 0.5), (piano_chords, 0.2)), swing=(0.1, 0.3), key=(55, 66)),
    "Instrumental": Style(
        bpm=(60, 100), meters=(3, 4), scales=("major", "minor"),
        progressions=((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3)), core=(piano_melody,),
        optional=((piano_chords, 0.6), (string_pad, 0.6), (fingerpick, 0.3))),
    "International": Style(
        bpm=(90, 135), meters=(5, 6, 7), scales=("hijaz", "bhairav", "pentatonic"),
        progressions=((0,), (0, 6), (0, 1)), core=(hand_drums, modal_lead),
        optional=((drone, 0.7), (sung_lead, 0.3), (strum, 0.2))),
    "Pop": Style(
        bpm=(95, 128), meters=(4,), scales=("major", "pentatonic"),
        progressions=((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4)), core=(pop_kit, sung_lead),
        optional=((piano_chords, 0.6), (picked_bass, 0.7), (arpeggio, 0.3), (strum, 0.2))),
    "Rock": Style(
        bpm=(100, 160), meters=(4,), scales=("minor", "mixolydian", "minor_pentatonic"),
        progressions=((0, 6, 5, 6), (0, 3, 4, 3), (0, 5)), core=(rock_kit, power_chords),
        optional=((picked_bass, 0.8), (sung_lead, 0.3), (fiddle, 0.05)), key=(52, 64)),
}
ALL_PARTS = sorted({p for st in STYLES.values() for p in (*st.core, *(q for q, _ in st.optional))},
                   key=lambda p: p.__name__)


def render(genre: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A track of `genre`'s style: (round(seconds*sr), 2) float32 in [-1, 1]."""
    st = STYLES[genre]
    s = Song(rng=rng, sr=sr, n=int(round(seconds * sr)), bpm=rng.uniform(*st.bpm), meter=int(rng.choice(st.meters)),
             key=int(rng.integers(st.key[0], st.key[1] + 1)), scale=SCALES[rng.choice(st.scales)],
             progression=st.progressions[rng.integers(len(st.progressions))], swing=rng.uniform(*st.swing))
    parts = list(st.core) + [p for p, prob in st.optional if rng.random() < prob]
    if rng.random() < BORROW_P:
        others = [p for p in ALL_PARTS if p not in parts]
        parts.append(others[rng.integers(len(others))])
    for part in parts:
        part(s)
    f = np.fft.rfftfreq(s.n, 1 / sr)
    gain = (np.maximum(f, 50) / 1000) ** (rng.uniform(-3, 3) / 6.02)       # a tilt of +-3 dB per octave
    if rng.random() < 0.3:                                                  # a dull recording
        gain /= np.sqrt(1 + (f / rng.uniform(3000, 9000)) ** 4)
    x = np.fft.irfft(np.fft.rfft(s.mix.T.astype(np.float32)) * gain.astype(np.float32), s.n)  # (2, n)
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    x += rms * 10 ** (rng.uniform(-45, -20) / 20) * rng.standard_normal(x.shape, np.float32)  # noise floor
    peak = np.abs(x).max() + 1e-9
    return np.ascontiguousarray(x.T * np.float32(10 ** (rng.uniform(-12, -1) / 20) / peak))


# ----------------------------------------------------------------------------
# Metadata: tracks.csv and genres.csv in FMA's format.

@dataclass
class TrackMeta:
    """What tracks.csv says about one track; every other column is filled with plausible values."""

    track_id: int
    subset: str                          # small | medium | large
    split: str                           # training | validation | test
    genre_top: str | None                # None: no single top genre (FMA leaves it empty)
    genres: list[int]                    # genre ids, as in genres.csv
    genres_all: list[int] | None = None  # genres and their ancestors; None: same as genres
    duration: int = 30                   # s
    bit_rate: int = 128_000              # bit/s
    title: str = ""


def tracks_table(rows: list[TrackMeta], seed: int = 0) -> pd.DataFrame:
    """tracks.csv's DataFrame: index track_id (sorted), FMA's 52 two-level columns in file order."""
    rows = sorted(rows, key=lambda r: r.track_id)
    rng = np.random.default_rng([seed, 1])
    n = len(rows)
    artist = rng.integers(1, 25_000, n)
    album = rng.integers(1, 20_000, n)
    created = pd.Timestamp("2008-11-25 17:49:06") + pd.to_timedelta(rng.integers(0, 8 * 365 * 86400, n), unit="s")
    nan = [np.nan] * n
    empty_lists = [[] for _ in range(n)]
    columns = {
        ("album", "comments"): [0] * n, ("album", "date_created"): created,
        ("album", "date_released"): created.normalize(), ("album", "engineer"): nan,
        ("album", "favorites"): rng.integers(0, 10, n), ("album", "id"): album,
        ("album", "information"): nan, ("album", "listens"): rng.integers(50, 50_000, n),
        ("album", "producer"): nan, ("album", "tags"): empty_lists,
        ("album", "title"): [f"Synthetic Album {a}" for a in album],
        ("album", "tracks"): rng.integers(1, 20, n), ("album", "type"): ["Album"] * n,
        ("artist", "active_year_begin"): nan, ("artist", "active_year_end"): nan,
        ("artist", "associated_labels"): nan, ("artist", "bio"): nan, ("artist", "comments"): [0] * n,
        ("artist", "date_created"): created - pd.Timedelta(days=30), ("artist", "favorites"): rng.integers(0, 50, n),
        ("artist", "id"): artist, ("artist", "latitude"): rng.uniform(-50, 60, n).round(4),
        ("artist", "location"): ["Synthesizer City"] * n, ("artist", "longitude"): rng.uniform(-120, 140, n).round(4),
        ("artist", "members"): nan, ("artist", "name"): [f"Synthetic Artist {a}" for a in artist],
        ("artist", "related_projects"): nan, ("artist", "tags"): empty_lists, ("artist", "website"): nan,
        ("artist", "wikipedia_page"): nan,
        ("set", "split"): [r.split for r in rows], ("set", "subset"): [r.subset for r in rows],
        ("track", "bit_rate"): [r.bit_rate for r in rows], ("track", "comments"): [0] * n,
        ("track", "composer"): nan, ("track", "date_created"): created, ("track", "date_recorded"): nan,
        ("track", "duration"): [r.duration for r in rows], ("track", "favorites"): rng.integers(0, 5, n),
        ("track", "genre_top"): [r.genre_top for r in rows], ("track", "genres"): [list(r.genres) for r in rows],
        ("track", "genres_all"): [list(r.genres if r.genres_all is None else r.genres_all) for r in rows],
        ("track", "information"): nan, ("track", "interest"): rng.integers(100, 20_000, n),
        ("track", "language_code"): ["en"] * n, ("track", "license"): [LICENSE] * n,
        ("track", "listens"): rng.integers(50, 15_000, n), ("track", "lyricist"): nan,
        ("track", "number"): rng.integers(1, 12, n), ("track", "publisher"): nan, ("track", "tags"): empty_lists,
        ("track", "title"): [r.title or f"Synthetic track {r.track_id}" for r in rows],
    }
    assert list(columns) == COLUMNS, "tracks_table's columns drifted from fma.COLUMNS"
    df = pd.DataFrame(columns, index=pd.Index([r.track_id for r in rows], name="track_id"))
    df.columns = pd.MultiIndex.from_tuples(COLUMNS)
    return df


def genres_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """genres.csv's DataFrame for the 8 top genres: #tracks counts tracks whose genres_all has the id."""
    counts = pd.Series([g for gs in tracks["track", "genres_all"] for g in gs]).value_counts()
    ids = sorted(GENRE_IDS.values())
    title = {i: g for g, i in GENRE_IDS.items()}
    return pd.DataFrame({"#tracks": [int(counts.get(i, 0)) for i in ids], "parent": [0] * len(ids),
                         "title": [title[i] for i in ids], "top_level": ids},
                        index=pd.Index(ids, name="genre_id"))


def split_sizes(tracks_per_genre: int) -> list[dict[str, int]]:
    """Tracks per split for each genre (label order): 80/10/10, rounded so the totals are too.

    Validation and test counts are rounded cumulatively over genres: with 5 tracks a
    genre, genres alternate 1 and 0 validation tracks, and the totals are 32/4/4.
    """
    def cumulative(fraction: float, g: int) -> int:
        return math.floor(fraction * tracks_per_genre * g + 0.5)
    sizes = []
    for g in range(len(GENRES)):
        val = cumulative(VALIDATION_FRACTION, g + 1) - cumulative(VALIDATION_FRACTION, g)
        test = cumulative(TEST_FRACTION, g + 1) - cumulative(TEST_FRACTION, g)
        sizes.append({"training": tracks_per_genre - val - test, "validation": val, "test": test})
    return sizes


@dataclass
class Job:
    """One file to write: `kind` is music, or a bad case (short, silent, empty, garbage, missing)."""

    track_id: int
    genre: str
    kind: str
    seconds: float
    sample_rate: int
    seed: int
    root: str


def write_track(job: Job) -> tuple[int, str | None, int]:
    """Write one mp3 under job.root; return (track_id, sha1 or None if no file, bytes)."""
    path = audio_path(job.root, job.track_id)
    if job.kind == "missing":
        return job.track_id, None, 0
    rng = np.random.default_rng([job.seed, job.track_id])
    path.parent.mkdir(parents=True, exist_ok=True)
    if job.kind == "empty":
        path.write_bytes(b"")
    elif job.kind == "garbage":
        path.write_bytes(rng.bytes(int(16_000 * job.seconds)))          # ~128 kbit/s worth of noise bytes
    elif job.kind == "silent":
        sf.write(path, np.zeros((round(job.seconds * job.sample_rate), 2), np.float32), job.sample_rate,
                 format="MP3")
    else:
        seconds = SHORT_SECONDS if job.kind == "short" else job.seconds
        sf.write(path, render(job.genre, seconds, job.sample_rate, rng), job.sample_rate, format="MP3")
    data = path.read_bytes()
    return job.track_id, hashlib.sha1(data).hexdigest(), len(data)


def synthesize(out_dir: str | Path, tracks_per_genre: int, seconds: float, sample_rate: int = 44100,
               seed: int = 0, bad_cases: bool = False, progress: bool = True, workers: int = 0) -> Path:
    """Write a synthetic FMA-format data set to out_dir (which must be absent or empty); return it.

    The set is written to `out_dir.partial` and renamed at the end, so a killed run
    never leaves a folder that looks complete. workers: processes (0: one per core).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty; remove it or choose another folder")
    if sample_rate not in MP3_RATES:
        raise ValueError(f"sample_rate {sample_rate} Hz: mp3 supports only {MP3_RATES}")
    if tracks_per_genre < 1 or seconds <= 0:
        raise ValueError(f"need tracks_per_genre >= 1 and seconds > 0, got {tracks_per_genre}, {seconds}")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)

    # Track ids and metadata: genre g's small tracks, then medium and large extras.
    rng = np.random.default_rng([seed, 0])
    n_extra = max(1, round(EXTRA_FRACTION * tracks_per_genre))
    n_small = len(GENRES) * tracks_per_genre
    candidates = np.setdiff1d(np.arange(2, MAX_TRACK_ID + 1), list(BAD_CASES))
    ids = [int(i) for i in rng.choice(candidates, n_small + 2 * len(GENRES) * n_extra, replace=False)]
    rows, jobs = [], []
    for g, (genre, sizes) in enumerate(zip(GENRES, split_sizes(tracks_per_genre))):
        splits = [split for split, k in sizes.items() for _ in range(k)]
        for tid, split in zip(ids[g * tracks_per_genre:(g + 1) * tracks_per_genre], splits):
            rows.append(TrackMeta(tid, "small", split, genre, [GENRE_IDS[genre]], duration=round(seconds)))
            jobs.append(Job(tid, genre, "music", seconds, sample_rate, seed, str(tmp)))
    extras = ids[n_small:]
    for k, tid in enumerate(extras):
        genre, other = GENRES[k % len(GENRES)], GENRES[(k + 3) % len(GENRES)]
        split = ("training", "validation", "test")[k % 3]
        if k < len(extras) // 2:
            rows.append(TrackMeta(tid, "medium", split, genre, [GENRE_IDS[genre]], duration=round(seconds)))
        else:    # a large-subset track under two top genres: FMA then leaves genre_top empty
            rows.append(TrackMeta(tid, "large", split, None, [GENRE_IDS[genre], GENRE_IDS[other]],
                                  duration=round(seconds)))
    if bad_cases:
        for k, (tid, kind) in enumerate(BAD_CASES.items()):
            genre = GENRES[k % len(GENRES)]
            duration = round(SHORT_SECONDS if kind == "short" else seconds)
            rows.append(TrackMeta(tid, "small", "training", genre, [GENRE_IDS[genre]], duration=duration))
            jobs.append(Job(tid, genre, kind, seconds, sample_rate, seed, str(tmp)))

    # Audio, in parallel: each track's bytes depend only on (seed, track_id).
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    with process_pool(workers) as executor:
        # (the pool starts no process until it is given work: workers == 1 runs here)
        results = executor.map(write_track, jobs, chunksize=4) if workers > 1 else map(write_track, jobs)
        written = list(tqdm(results, total=len(jobs), desc=f"synth {out_dir.name}", unit="track",
                            disable=not progress))

    # Checksums, genres.csv, tracks.csv (bit_rate measured from each file), then the rename.
    size = {tid: n_bytes for tid, sha, n_bytes in written if sha is not None}
    lines = sorted(f"{sha}  {audio_path('', tid).relative_to('fma_small').as_posix()}"
                   for tid, sha, _ in written if sha is not None)
    (tmp / "fma_small" / "checksums").write_text("".join(line + "\n" for line in lines))
    length = {j.track_id: SHORT_SECONDS if j.kind == "short" else j.seconds for j in jobs}
    for r in rows:
        if size.get(r.track_id):
            r.bit_rate = int(round(8 * size[r.track_id] / length[r.track_id], -3))   # average bit/s
    tracks = tracks_table(rows, seed)
    meta = tmp / "fma_metadata"
    meta.mkdir(parents=True)
    genres_table(tracks).to_csv(meta / "genres.csv")
    tracks.to_csv(meta / "tracks.csv")
    if out_dir.exists():
        out_dir.rmdir()
    tmp.rename(out_dir)
    return out_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Write a synthetic data set in FMA's exact on-disk format: DIR/fma_metadata/tracks.csv "
                     "and genres.csv, DIR/fma_small/NNN/NNNNNN.mp3 and DIR/fma_small/checksums. Eight genres "
                     "of synthetic music (a distinct style each, random per track), split 80/10/10 per genre, "
                     "plus medium/large tracks listed in tracks.csv only (prepare leaves them out).")
    p.add_argument("dir", type=Path, metavar="DIR", help="output folder (must not exist, or be empty)")
    p.add_argument("--tracks-per-genre", type=int, default=60, metavar="N",
                   help="small-subset tracks per genre (default: 60)")
    p.add_argument("--seconds", type=float, default=5.0, metavar="S",
                   help="length of each track in s (default: 5; FMA: 30)")
    p.add_argument("--sample-rate", type=int, default=44100, metavar="HZ",
                   help="Hz of the mp3s (default: 44100, as FMA)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="same seed -> identical files (default: 0)")
    p.add_argument("--bad-cases", action="store_true",
                   help="add FMA's failure cases: a short track, a silent one, an empty mp3, "
                        "an mp3 of random bytes, and a track whose file is missing")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="encoding processes (default: 0 = one per core)")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")


def run(args: argparse.Namespace) -> int:
    if args.force and args.dir.exists():
        shutil.rmtree(args.dir)
    try:
        out = synthesize(args.dir, args.tracks_per_genre, args.seconds, args.sample_rate, args.seed,
                         args.bad_cases, progress=True, workers=args.workers)
    except (FileExistsError, ValueError) as err:
        print(f"fmareport synth: {err}", file=sys.stderr)
        return 2
    print(out)
    return 0
