"""The data: FMA's format (fma), making a set (synth, music) or getting it (fetch), decoding
audio (audio), and the clip store every run trains on (store)."""
