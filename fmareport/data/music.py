"""Synthetic music in eight styles named after FMA-small's genres (for `fmareport synth`).

Each genre is a `Style` (STYLES): its tempo range, metre, scales, drum patterns and instruments,
neighbouring styles sharing instruments and tempi. An `Artist` (`draw_artist`) has its own tempo,
metre, key, scale, swing, optional parts, perhaps one part of another genre's style (BORROW_P) and
a recording chain (tilt, low-pass, noise floor); each of its tracks varies that a little and draws
its own notes. So the task is learnable, not trivially, and one artist's tracks are alike, as on FMA.

`render(genre, seconds, sr, rng, artist)`: one stereo track, drawn from the generators alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

BORROW_P = 0.35  # chance that an artist plays one part of another genre's style
# How far a track strays from its artist (`render`): its own key (3 tracks in 10) and its own choice
# of each optional part (1 in 5), drawn as an artist's are, so a track alone is as hard to place;
# tempo within +-4 % (115-125 bpm for 120), the chain's tilt within +-0.5 dB/octave (the artists'
# spread: +-3) and its noise floor within +-3 dB (the artists' spread: 25 dB).
OWN_KEY_P = 0.3
OWN_PART_P = 0.2
TEMPO_JITTER = 0.04
TILT_JITTER = 0.5  # dB per octave
NOISE_JITTER = 3.0  # dB


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

    amps: tuple[float, ...]  # relative amplitude of each partial
    attack: float = 0.005  # s, linear rise
    decay: float = 0.0  # s, exponential decay time of the body (0: sustained)
    darken: float = 0.0  # 1/s, extra decay rate per partial above the first (plucks)
    release: float = 0.05  # s, exponential fade after the note's end
    vibrato: tuple[float, float] = (0.0, 0.0)  # (rate Hz, depth as a fraction of f)
    tremolo: tuple[float, float] = (0.0, 0.0)  # (rate Hz, depth as a fraction of the amplitude)
    slide: tuple[float, float] = (0.0, 0.0)  # start at f*(1+a), reach f with time constant tau s


def note(v: Voice, f: float, dur: float, sr: int) -> np.ndarray:
    """One note of voice v: f Hz held for dur s, then released; (samples,) float64."""
    t = np.arange(int((dur + 4 * v.release) * sr)) / sr
    (vr, vd), (sa, st) = v.vibrato, v.slide
    cycles = f * t  # phase in cycles of f
    if vd:
        cycles += f * vd * (1 - np.cos(2 * np.pi * vr * t)) / (2 * np.pi * vr)
    if sa:
        cycles += f * sa * st * (1 - np.exp(-t / st))
    theta = 2 * np.pi * cycles
    sin_prev, sin_k, two_cos = np.zeros_like(t), np.sin(theta), 2 * np.cos(theta)
    dark = np.exp(-v.darken * t) if v.darken else None
    damp, out = 1.0, np.zeros_like(t)
    for k, a in enumerate(v.amps, start=1):  # sin(k theta) by Chebyshev's recurrence
        if k * f * (1 + abs(sa)) >= sr / 2:  # no partial above Nyquist
            break
        if a:
            out += a * damp * sin_k
        sin_prev, sin_k = sin_k, two_cos * sin_k - sin_prev
        if dark is not None:
            damp = damp * dark  # partial k decays darken*(k-1) faster
    env = np.minimum(t / v.attack, 1.0)
    if v.decay:
        env *= np.exp(-t / v.decay)
    env *= np.where(t < dur, 1.0, np.exp(-(t - dur) / v.release))
    if v.tremolo[1]:
        env *= 1 - v.tremolo[1] * (0.5 + 0.5 * np.sin(2 * np.pi * v.tremolo[0] * t))
    return out * env


def place(
    n: int, sr: int, times: np.ndarray, sounds: list[np.ndarray] | np.ndarray, gains: np.ndarray | None = None
) -> np.ndarray:
    """Sum sounds (one per time, or one for all) starting at times (s) into an (n,) stem."""
    stem = np.zeros(n)
    for i, t in enumerate(times):
        s = sounds if isinstance(sounds, np.ndarray) else sounds[i]
        start = int(t * sr)
        if 0 <= start < n:
            stem[start : start + len(s)] += (1.0 if gains is None else gains[i]) * s[: n - start]
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
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "hijaz": (0, 1, 4, 5, 7, 8, 10),
    "bhairav": (0, 1, 4, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}


@dataclass
class Song:
    """One track being written: its grid, harmony and a stereo mix buffer."""

    rng: np.random.Generator
    sr: int
    n: int  # samples
    bpm: float
    meter: int  # beats per bar
    key: int  # MIDI note of the tonic (the style's register)
    scale: tuple[int, ...]
    progression: tuple[int, ...]  # scale degree (0-based) of each bar's chord, cycled
    swing: float = 0.0  # delay of every other step, as a fraction of a step
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
        angle = (p + 1) * np.pi / 4  # constant-power pan
        self.mix[:, 0] += g * np.cos(angle) * stem
        self.mix[:, 1] += g * np.sin(angle) * stem


def rhythm(
    s: Song, pattern: str, per_beat: int, mutate: float = 0.08, jitter: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
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


def play(
    s: Song,
    v: Voice,
    times: np.ndarray,
    midis: list[int] | np.ndarray,
    durs: np.ndarray | float,
    vels: np.ndarray | None = None,
    hi: float = 0.0,
) -> np.ndarray:
    """A stem of voice v playing MIDI notes `midis` at `times` (s) for `durs` (s), low-passed at hi Hz."""
    durs = np.broadcast_to(durs, len(times))
    cache: dict[tuple[int, float], np.ndarray] = {}  # a riff repeats its notes
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


def hits(
    s: Song, pattern: str, per_beat: int, sound: np.ndarray, mutate: float = 0.08, jitter: float = 0.0
) -> np.ndarray:
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
    s.add(place(s.n, s.sr, bars, hat(s.sr, s.rng, 0.8)), -14, -0.4)  # a crash every two bars


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
    s.add(hits(s, "x...", 4, kick(s.sr, s.rng, 70), 0.1, 0.01), -20, 0)  # foot stomp


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
    pump = 1 - 0.6 * np.exp(-(np.arange(s.n) / s.sr % s.beat) / 0.08)  # side-chained to the kick
    s.add(stem * pump, -14, 0)


def power_chords(s: Song) -> None:
    """Eighth-note power chords (root, fifth, octave) of naive saws through tanh distortion."""
    t, v = rhythm(s, "xoxoxoxo", 2, 0.08, 0.004)
    x = np.arange(int(0.5 * s.beat * s.sr)) / s.sr
    drive, tone = s.rng.uniform(4, 15), s.rng.uniform(2500, 5000)
    sounds = {}  # one per chord root
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
    stem = sum(
        play(s, ep, bars, [s.chord(t, 4, octave=-1)[i] for t in bars], s.meter * s.beat / 2, hi=hi) for i in range(4)
    )
    s.add(stem, -10, 0)


def piano_melody(s: Song) -> None:
    times = s.grid(2)
    keep = s.rng.random(len(times)) < 0.7
    s.add(play(s, PIANO, times[keep], [s.pitch(d, 1) for d in walk(s, keep.sum())], 0.5 * s.beat), -10, 0.2)


def strum(s: Song) -> None:
    t, v = rhythm(s, s.rng.choice(["x.x.oxox", "x..x..x.", "x.oxo.ox"]), 2, 0.1, 0.01)
    stem = np.zeros(s.n)
    for i in range(4):  # strings 15-30 ms apart
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
    v = dataclasses.replace(
        PLUCK,
        amps=(1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2),
        slide=(s.rng.uniform(-0.06, 0.06), 0.04),
        decay=0.8,
    )
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
        sounds.append(
            bandpass(s.rng.standard_normal(len(t)), s.sr, lo=centre / 1.5, hi=centre * 1.5)
            * np.sin(np.pi * t / length) ** 2
        )
    s.add(place(s.n, s.sr, times, sounds), -12, s.rng.uniform(-0.7, 0.7))


def bells(s: Song) -> None:
    """Inharmonic, bell-like clusters (partials at non-integer ratios)."""
    count = s.rng.poisson(1.0 * s.n / s.sr) + 1
    times = s.rng.uniform(0, s.n / s.sr, count)
    ratios = s.rng.uniform(1.0, 4.5, 5)
    t = np.arange(int(1.5 * s.sr)) / s.sr
    sounds = [
        sum(np.sin(2 * np.pi * f0 * r * t) * np.exp(-t * (1 + 2 * r)) for r in ratios) / 3
        for f0 in s.rng.uniform(150, 900, count)
    ]
    s.add(place(s.n, s.sr, times, sounds), -12, s.rng.uniform(-0.6, 0.6))


def vinyl(s: Song) -> None:
    """Record crackle and hiss."""
    clicks = (s.rng.random(s.n) < 30 / s.sr) * s.rng.standard_normal(s.n)
    hiss = np.diff(s.rng.standard_normal(s.n + 1))  # differenced: tilted to the highs
    s.add(clicks + 0.02 * hiss, -20, 0)


@dataclass(frozen=True)
class Style:
    """A genre as a recipe: tempo, metre, harmony and register ranges, and the parts it plays."""

    bpm: tuple[float, float]  # tempo range (beats per minute)
    meters: tuple[int, ...]  # beats per bar, one drawn per track
    scales: tuple[str, ...]  # names in SCALES
    progressions: tuple[tuple[int, ...], ...]  # chord roots (scale degrees), one bar each
    core: tuple  # parts always played
    optional: tuple = ()  # (part, probability of playing it)
    swing: tuple[float, float] = (0.0, 0.0)  # range of Song.swing
    key: tuple[int, int] = (60, 71)  # MIDI range of the tonic (register)


STYLES = {
    "Electronic": Style(
        bpm=(118, 136),
        meters=(4,),
        scales=("minor", "dorian"),
        progressions=((0, 0, 5, 3), (0, 5, 3, 4), (0, 3)),
        core=(four_on_the_floor, arpeggio),
        optional=((synth_bass, 0.8), (saw_pad, 0.6), (vinyl, 0.1)),
    ),
    "Experimental": Style(
        bpm=(60, 140),
        meters=(4, 5, 7),
        scales=("whole_tone", "hijaz", "minor"),
        progressions=((0,), (0, 1)),
        core=(glissandi, noise_bursts),
        optional=((bells, 0.7), (drone, 0.3), (saw_pad, 0.2), (piano_melody, 0.2)),
    ),
    "Folk": Style(
        bpm=(80, 125),
        meters=(3, 4),
        scales=("major", "mixolydian"),
        progressions=((0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4)),
        core=(strum,),
        optional=((fingerpick, 0.5), (fiddle, 0.4), (sung_lead, 0.4), (shaker, 0.4), (picked_bass, 0.3)),
    ),
    "Hip-Hop": Style(
        bpm=(78, 100),
        meters=(4,),
        scales=("minor", "dorian", "minor_pentatonic"),
        progressions=((0, 5), (0, 3, 5, 4), (0,)),
        core=(boom_bap, sub_bass),
        optional=((rhodes_loop, 0.7), (vinyl, 0.5), (piano_chords, 0.2)),
        swing=(0.1, 0.3),
        key=(55, 66),
    ),
    "Instrumental": Style(
        bpm=(60, 100),
        meters=(3, 4),
        scales=("major", "minor"),
        progressions=((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3)),
        core=(piano_melody,),
        optional=((piano_chords, 0.6), (string_pad, 0.6), (fingerpick, 0.3)),
    ),
    "International": Style(
        bpm=(90, 135),
        meters=(5, 6, 7),
        scales=("hijaz", "bhairav", "pentatonic"),
        progressions=((0,), (0, 6), (0, 1)),
        core=(hand_drums, modal_lead),
        optional=((drone, 0.7), (sung_lead, 0.3), (strum, 0.2)),
    ),
    "Pop": Style(
        bpm=(95, 128),
        meters=(4,),
        scales=("major", "pentatonic"),
        progressions=((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4)),
        core=(pop_kit, sung_lead),
        optional=((piano_chords, 0.6), (picked_bass, 0.7), (arpeggio, 0.3), (strum, 0.2)),
    ),
    "Rock": Style(
        bpm=(100, 160),
        meters=(4,),
        scales=("minor", "mixolydian", "minor_pentatonic"),
        progressions=((0, 6, 5, 6), (0, 3, 4, 3), (0, 5)),
        core=(rock_kit, power_chords),
        optional=((picked_bass, 0.8), (sung_lead, 0.3), (fiddle, 0.05)),
        key=(52, 64),
    ),
}
ALL_PARTS = sorted(
    {p for st in STYLES.values() for p in (*st.core, *(q for q, _ in st.optional))}, key=lambda p: p.__name__
)


@dataclass(frozen=True)
class Artist:
    """What one artist's tracks share: a place in its genre's style and a recording chain."""

    genre: str
    bpm: float
    meter: int
    key: int  # MIDI note of the tonic
    scale: str  # a name in SCALES
    swing: float
    parts: tuple  # the style's optional parts it plays
    borrowed: tuple  # () or one part of another genre's style
    tilt: float  # dB per octave about 1 kHz
    dull: float  # Hz: a low-pass on everything it records; 0.0: none
    noise_db: float  # noise floor, dB against the track's RMS


def draw_artist(genre: str, rng: np.random.Generator) -> Artist:
    """An artist of `genre`'s style, every choice drawn from `rng`."""
    st = STYLES[genre]
    parts = tuple(p for p, prob in st.optional if rng.random() < prob)
    borrowed = ()
    if rng.random() < BORROW_P:
        others = [p for p in ALL_PARTS if p not in st.core and p not in parts]
        borrowed = (others[rng.integers(len(others))],)
    return Artist(
        genre=genre,
        bpm=float(rng.uniform(*st.bpm)),
        meter=int(rng.choice(st.meters)),
        key=int(rng.integers(st.key[0], st.key[1] + 1)),
        scale=str(rng.choice(st.scales)),
        swing=float(rng.uniform(*st.swing)),
        parts=parts,
        borrowed=borrowed,
        tilt=float(rng.uniform(-3, 3)),  # +-3 dB per octave
        dull=float(rng.uniform(3000, 9000)) if rng.random() < 0.3 else 0.0,  # 3 artists in 10
        noise_db=float(rng.uniform(-45, -20)),
    )


def render(genre: str, seconds: float, sr: int, rng: np.random.Generator, artist: Artist | None = None) -> np.ndarray:
    """A track of `genre`'s style by `artist` (None: an artist of its own, drawn from `rng`):
    (round(seconds*sr), 2) float32 in [-1, 1]."""
    st = STYLES[genre]
    a = draw_artist(genre, rng) if artist is None else artist
    if a.genre != genre:
        raise ValueError(f"an artist of {a.genre} cannot play a {genre} track: an artist is in one genre")
    key = int(rng.integers(st.key[0], st.key[1] + 1)) if rng.random() < OWN_KEY_P else a.key
    s = Song(
        rng=rng,
        sr=sr,
        n=int(round(seconds * sr)),
        bpm=a.bpm * rng.uniform(1 - TEMPO_JITTER, 1 + TEMPO_JITTER),
        meter=a.meter,
        key=key,
        scale=SCALES[a.scale],
        progression=st.progressions[rng.integers(len(st.progressions))],  # each song its chords
        swing=a.swing,
    )
    own = rng.random((len(st.optional), 2))  # (parts, 2): whether the track chooses for itself, and its choice
    optional = [
        p for (p, prob), (mine, r) in zip(st.optional, own) if (r < prob if mine < OWN_PART_P else p in a.parts)
    ]
    for part in dict.fromkeys([*st.core, *optional, *a.borrowed]):  # a borrowed part the track also chose: once
        part(s)
    f = np.fft.rfftfreq(s.n, 1 / sr)
    tilt = a.tilt + rng.uniform(-TILT_JITTER, TILT_JITTER)
    gain = (np.maximum(f, 50) / 1000) ** (tilt / 6.02)  # dB per octave
    if a.dull:
        gain /= np.sqrt(1 + (f / a.dull) ** 4)
    x = np.fft.irfft(np.fft.rfft(s.mix.T.astype(np.float32)) * gain.astype(np.float32), s.n)  # (2, n)
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    noise_db = a.noise_db + rng.uniform(-NOISE_JITTER, NOISE_JITTER)
    x += rms * 10 ** (noise_db / 20) * rng.standard_normal(x.shape, np.float32)  # noise floor
    peak = np.abs(x).max() + 1e-9
    return np.ascontiguousarray(x.T * np.float32(10 ** (rng.uniform(-12, -1) / 20) / peak))
