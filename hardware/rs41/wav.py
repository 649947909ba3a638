"""Read mono 8- or 16-bit PCM WAV files (stdlib `wave`) as float32 samples.

8-bit WAV is unsigned (128 = zero), 16-bit is signed little-endian. Samples are
returned in LSB units of the file (no scaling): the demodulator does not care about
amplitude, and keeping LSB units makes DC offsets in tests easy to state.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class WavAudio:
    """Audio samples (float32, LSB units, zero-centred) and their rate (Hz)."""

    samples: NDArray[np.float32]
    sample_rate_hz: int
    sample_width_bytes: int


def read_wav(path: str | Path) -> WavAudio:
    """Read a mono (or the first channel of a multi-channel) 8/16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as w:
        n_channels = w.getnchannels()
        width = w.getsampwidth()
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        samples = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32)
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV is not supported (8 or 16 only)")
    if n_channels > 1:
        samples = samples[::n_channels]
    return WavAudio(np.ascontiguousarray(samples), rate, width)


def write_wav(
    path: str | Path, samples: NDArray[np.float32], sample_rate_hz: int, width: int
) -> None:
    """Write mono 8- or 16-bit PCM (samples in LSB units, clipped), e.g. for test fixtures."""
    if width == 1:
        data = (np.clip(np.round(samples), -128, 127) + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    else:
        raise ValueError("width must be 1 or 2 bytes")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(sample_rate_hz)
        w.writeframes(data)
