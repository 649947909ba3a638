"""Test data and test signals for the RS41 decoder.

The bundled reference files, a comparison against rs41mod's JSON, and synthesis:
the reference frames re-scrambled, prefixed with a preamble and GFSK-modulated as
audio or IQ, so the decoder chain can be run on signals whose content is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from hardware.rs41.frame import Rs41Frame
from hardware.rs41.scramble import scramble

DATA = Path(__file__).resolve().parents[3] / "recordings" / "rs41"
WAV = DATA / "rs41pre_20150802.wav"
FRAMES_HEX = DATA / "rs41pre_20150802.frames.hex"
REFERENCE_JSONL = DATA / "rs41pre_20150802.rs41mod.jsonl"
EXAMPLES_HEX = DATA / "rs41txt_example_frames.hex"
BAUD = 4800
GPS_MINUS_UTC_2015 = timedelta(seconds=17)


def reference_frames() -> list[bytes]:
    """The 60 descrambled, RS-checked 320-byte frames of the wav."""
    return [bytes.fromhex(line) for line in FRAMES_HEX.read_text().split()]


def example_frames() -> list[bytes]:
    """The four frames from rs41.txt (line 2 has 2 byte errors in cw2's parity)."""
    return [bytes.fromhex(line) for line in EXAMPLES_HEX.read_text().split()]


def assert_matches_reference(frame: Rs41Frame, ref: dict[str, Any]) -> None:
    """The fields rs41mod prints, within its print precision (5 decimals)."""
    assert frame.frame == ref["frame"]
    assert frame.serial == ref["id"]
    gps_time = datetime.fromisoformat(ref["datetime"].replace("Z", "+00:00"))
    assert frame.time_utc == gps_time.astimezone(UTC) - GPS_MINUS_UTC_2015
    assert frame.lat == pytest.approx(ref["lat"], abs=1e-5)
    assert frame.lon == pytest.approx(ref["lon"], abs=1e-5)
    assert frame.alt == pytest.approx(ref["alt"], abs=0.5)
    assert frame.vel_h_mps == pytest.approx(ref["vel_h"], abs=0.1)
    assert frame.heading_deg == pytest.approx(ref["heading"], abs=0.1)
    assert frame.vel_v_mps == pytest.approx(ref["vel_v"], abs=0.1)
    assert frame.sats == ref["sats"]
    assert frame.batt_v == pytest.approx(ref["batt"], abs=0.05)


def on_air_bits(
    plain: bytes, preamble_bytes: int = 40, flip_bits: tuple[int, ...] = ()
) -> NDArray[np.uint8]:
    """Bits on air (LSB first): a preamble of 0xAA..., then the scrambled frame.

    ``flip_bits``: bit indices counted from the first frame bit, inverted on air.
    """
    data = bytes([0xAA] * preamble_bytes) + scramble(plain)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    for i in flip_bits:
        bits[8 * preamble_bytes + i] ^= 1
    return bits


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
    flip_bits: tuple[int, ...] = (),
) -> NDArray[np.float32]:
    """FM-demodulated audio at 48 kHz (positive polarity) carrying ``frames`` (plain)."""
    rng = np.random.default_rng(seed)
    parts = []
    for plain in frames:
        parts.append(amplitude * gaussian_nrz(on_air_bits(plain, flip_bits=flip_bits), 10))
        parts.append(np.zeros(int(gap_s * 48_000)))
    audio = np.concatenate(parts)
    return (audio + rng.normal(0.0, noise_rms, audio.size)).astype(np.float32)


def fm_modulate_audio(
    audio: NDArray[np.float32],
    audio_rate_hz: int,
    iq_rate_hz: int,
    offset_hz: float,
    hz_per_unit: float,
    snr_db: float,
    seed: int = 0,
) -> Iterator[NDArray[np.complex64]]:
    """Audio as the instantaneous frequency of a carrier: IQ in blocks of 1 s, + noise.

    The frequency is held between audio samples, so the phase is exactly piecewise
    linear at the IQ rate (a multiple of the audio rate).
    """
    rng = np.random.default_rng(seed)
    up = iq_rate_hz // audio_rate_hz
    noise_std = np.float32(np.sqrt(10 ** (-snr_db / 10) / 2))
    step = np.arange(1, up + 1, dtype=np.float64) * (2 * np.pi / iq_rate_hz)
    phase = 0.0
    for start in range(0, audio.size, audio_rate_hz):
        freq = offset_hz + hz_per_unit * audio[start : start + audio_rate_hz].astype(np.float64)
        starts = phase + np.concatenate(([0.0], np.cumsum(freq[:-1] * step[-1])))
        phase = float((starts[-1] + freq[-1] * step[-1]) % (2 * np.pi))
        ph = np.mod(starts[:, None] + freq[:, None] * step[None, :], 2 * np.pi).reshape(-1)
        ph32 = ph.astype(np.float32)
        out = noise_std * rng.standard_normal(2 * ph32.size, dtype=np.float32)
        out[0::2] += np.cos(ph32)
        out[1::2] += np.sin(ph32)
        yield out.view(np.complex64)
