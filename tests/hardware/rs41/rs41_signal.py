"""Test-signal synthesis for the RS41 decoder: on-air bits, GFSK audio and IQ.

Used only by the tests: it re-scrambles the reference frames, prefixes a preamble
and modulates them, so the decoder chain can be run on signals whose content is
known exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hardware.rs41.scramble import scramble

DATA = Path(__file__).resolve().parents[3] / "recordings" / "rs41"
WAV = DATA / "rs41pre_20150802.wav"
FRAMES_HEX = DATA / "rs41pre_20150802.frames.hex"
REFERENCE_JSONL = DATA / "rs41pre_20150802.rs41mod.jsonl"
EXAMPLES_HEX = DATA / "rs41txt_example_frames.hex"
BAUD = 4800


def reference_frames() -> list[bytes]:
    """The 60 descrambled, RS-checked 320-byte frames of the wav."""
    return [bytes.fromhex(line) for line in FRAMES_HEX.read_text().split()]


def example_frames() -> list[bytes]:
    """The four frames from rs41.txt (line 2 has 2 byte errors in cw2's parity)."""
    return [bytes.fromhex(line) for line in EXAMPLES_HEX.read_text().split()]


def on_air_bits(plain: bytes, preamble_bytes: int = 40) -> NDArray[np.uint8]:
    """Bits on air (LSB first) of a preamble of 0xAA... then the scrambled frame."""
    data = bytes([0xAA] * preamble_bytes) + scramble(plain)
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def gaussian_nrz(bits: NDArray[np.uint8], sps: int, bt: float = 0.5) -> NDArray[np.float64]:
    """NRZ (+-1) at ``sps`` samples per bit through a Gaussian filter of bandwidth-time bt."""
    nrz = np.repeat(2.0 * bits.astype(np.float64) - 1.0, sps)
    sigma = np.sqrt(np.log(2)) / (2 * np.pi * bt) * sps
    t = np.arange(-3 * sps, 3 * sps + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return np.convolve(nrz, g / g.sum(), mode="same")


def gfsk_iq_bursts(
    frames: list[bytes],
    sample_rate_hz: int,
    offset_hz: float,
    deviation_hz: float = 2400.0,
    gap_s: float = 0.02,
    snr_db: float = 10.0,
    seed: int = 0,
    preamble_bytes: int = 16,
) -> Iterator[NDArray[np.complex64]]:
    """GFSK IQ, one chunk per frame (carrier on for the frame, then a gap of noise).

    ``snr_db`` is carrier power against noise power in the whole sample bandwidth.
    The Gaussian-shaped frequency is computed at 48 kHz and held for the samples in
    between, so the phase is exactly piecewise linear at the full rate. The noise
    comes from one pool of 2^22 samples read at random offsets (cheaper than fresh
    noise per sample, and white within any chunk).
    """
    rng = np.random.default_rng(seed)
    audio_sps = 10
    up = sample_rate_hz // (audio_sps * BAUD)
    noise_std = np.float32(np.sqrt(10 ** (-snr_db / 10) / 2))
    pool = (noise_std * rng.standard_normal(2 * (1 << 22), dtype=np.float32)).view(np.complex64)
    step = np.arange(1, up + 1, dtype=np.float64) * (2 * np.pi / sample_rate_hz)
    phase = 0.0
    for plain in frames:
        shaped = gaussian_nrz(on_air_bits(plain, preamble_bytes), audio_sps)
        freq = offset_hz + deviation_hz * shaped
        starts = phase + np.concatenate(([0.0], np.cumsum(freq[:-1] * step[-1])))
        phase = float((starts[-1] + freq[-1] * step[-1]) % (2 * np.pi))
        ph = np.mod(starts[:, None] + freq[:, None] * step[None, :], 2 * np.pi)
        ph32 = ph.reshape(-1).astype(np.float32)
        n = ph32.size + int(gap_s * sample_rate_hz)
        at = int(rng.integers(0, pool.size - n))
        out = pool[at : at + n].copy()
        out[: ph32.size] += np.cos(ph32) + 1j * np.sin(ph32)
        yield out


def gfsk_audio(
    frames: list[bytes],
    amplitude: float = 1000.0,
    noise_rms: float = 100.0,
    gap_s: float = 0.3,
    seed: int = 0,
) -> NDArray[np.float32]:
    """FM-demodulated audio at 48 kHz (positive polarity) carrying ``frames`` (plain)."""
    rng = np.random.default_rng(seed)
    parts = []
    for plain in frames:
        parts.append(amplitude * gaussian_nrz(on_air_bits(plain), 10))
        parts.append(np.zeros(int(gap_s * 48_000)))
    audio = np.concatenate(parts)
    return (audio + rng.normal(0.0, noise_rms, audio.size)).astype(np.float32)
