"""Synthetic Mode S test signals: PPM frames as band-limited pulses in complex noise, u8 IQ.

How a burst is made (all in microseconds, then samples)::

    frame bits ──► envelope at 24 samples/us: preamble pulses 0-0.5, 1.0-1.5,
                   3.5-4.0, 4.5-5.0 us, then per bit a 0.5 us pulse in the first
                   (one) or second (zero) half of its 1 us slot
               ──► x exp(j * random carrier phase) x amplitude
               ──► receiver filter: integrate over one output sample (what the
                   RTL2832's decimator does) smoothed by a Gaussian of 0.3 output
                   samples, then decimation to 2.0 or 2.4 MS/s; every burst starts
                   at a random fraction of a sample (pulses straddle samples)
               ──► + complex Gaussian noise, power = amplitude^2 / 10^(snr_db/10)
               ──► I/Q rounded around 127.5, clipped to 0..255, interleaved u8

SNR definition (the usual one for Mode S receivers, e.g. how readsb/dump1090 and
receiver specs quote it): peak pulse power over the noise power per sample in the
receiver bandwidth, ``snr = amplitude^2 / noise_power`` where `amplitude` is the
pulse envelope's amplitude (a long pulse comes out of the filter at exactly that
height) and `noise_power` the total complex noise variance per output sample
(sigma^2 per I and Q is half of it). The noise is white at the output rate, so
"12 dB" is the same per-sample SNR at 2.0 and 2.4 MS/s.

What the sampler sees is less than `amplitude` for a 0.5 us pulse: at 2.0 MS/s a
pulse starting on a sample boundary (phase 0 here: every output sample integrates
one sample period centred on it) is split half and half between two samples, and
a frame of such pulses carries half the bit information per sample (the sample
between the two half-bit slots holds half a pulse whatever the bit). Decoders lose
such frames first; that is the "2.0 MS/s recovers 51-73 %" effect, not a quirk of
this generator. The filter is calibrated on modes1.bin: there an isolated 0.5 us
pulse on the sample grid leaves about a quarter of its height in the next sample
(26 7 27 1 2 4 10 26 7 27 at sample 794), as it does here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hardware.modes.crc import crc24

OVERSAMPLE_HZ = 24_000_000  # common multiple of 2.0 and 2.4 MS/s (x12 and x10)
PREAMBLE_US = (0.0, 1.0, 3.5, 4.5)


def with_crc(data: bytes) -> bytes:
    """`data` followed by its CRC-24: a clean DF11 (IID 0) / DF17 / DF18 frame."""
    return data + crc24(data).to_bytes(3, "big")


def random_df17(rng: np.random.Generator, icao: int) -> bytes:
    """A clean DF17 frame (CA 5) from `icao` with a random 56-bit ME field."""
    me = rng.integers(0, 256, 7, dtype=np.uint8).tobytes()
    return with_crc(bytes([0x8D]) + icao.to_bytes(3, "big") + me)


def df11(icao: int) -> bytes:
    """A clean 56-bit DF11 all-call reply (CA 5, IID 0) from `icao`."""
    return with_crc(bytes([0x5D]) + icao.to_bytes(3, "big"))


def noise_iq(rng: np.random.Generator, sigma: float, pairs: int) -> npt.NDArray[np.uint8]:
    """`pairs` samples of u8 interleaved IQ holding complex Gaussian noise alone,
    `sigma` ADC units per I and Q, rounded and clipped as the dongle's ADC does."""
    return np.clip(np.rint(rng.normal(127.5, sigma, 2 * pairs)), 0, 255).astype(np.uint8)


def envelope(frame: bytes) -> npt.NDArray[np.float64]:
    """Unit-amplitude pulse envelope of one burst at OVERSAMPLE_HZ (preamble + bits)."""
    per_us = OVERSAMPLE_HZ // 1_000_000
    half = per_us // 2
    bits = np.unpackbits(np.frombuffer(frame, np.uint8))
    env = np.zeros((8 + bits.size) * per_us, np.float64)
    for t_us in PREAMBLE_US:
        start = round(t_us * per_us)
        env[start : start + half] = 1.0
    starts = 8 * per_us + np.arange(bits.size) * per_us + np.where(bits == 1, 0, half)
    idx = starts[:, None] + np.arange(half)[None, :]
    env[idx.ravel()] = 1.0
    return env


@dataclass(frozen=True, slots=True)
class Burst:
    """A frame placed in a synthetic capture: `start_sample` is the exact (fractional)
    position of its first preamble pulse in output samples."""

    frame: bytes
    start_sample: float


def lowpass_taps(decimation: int, sigma_samples: float = 0.3) -> npt.NDArray[np.float64]:
    """Receiver filter at OVERSAMPLE_HZ: a box one output sample long convolved with
    a Gaussian of `sigma_samples` output samples; unity DC gain."""
    box = np.ones(decimation) / decimation
    k = np.arange(-4 * decimation, 4 * decimation + 1)
    gauss = np.exp(-0.5 * (k / (sigma_samples * decimation)) ** 2)
    taps = np.convolve(box, gauss / gauss.sum())
    return np.asarray(taps / taps.sum())


def synthesize(
    frames: list[bytes],
    sample_rate_hz: int,
    snr_db: float,
    rng: np.random.Generator,
    *,
    spacing_us: float = 200.0,
    amplitude: float = 60.0,
    lead_us: float = 50.0,
    freq_offset_hz: float = 0.0,
) -> tuple[npt.NDArray[np.uint8], list[Burst]]:
    """u8 interleaved IQ holding `frames`, one every ~`spacing_us` with random jitter
    and sub-sample offsets, at `sample_rate_hz` (2.0 or 2.4 MS/s) and `snr_db`.
    `freq_offset_hz` turns the carrier (transponder or dongle tuning error): the
    pulses' phase then advances by 2 pi f t along each burst."""
    decimation = OVERSAMPLE_HZ // sample_rate_hz
    if decimation * sample_rate_hz != OVERSAMPLE_HZ:
        raise ValueError(f"{sample_rate_hz} Hz does not divide {OVERSAMPLE_HZ} Hz")
    per_us = OVERSAMPLE_HZ // 1_000_000
    total_us = lead_us + spacing_us * (len(frames) + 1)
    hi = np.zeros(int(total_us * per_us), np.complex128)
    offsets_hi: list[int] = []
    for k, frame in enumerate(frames):
        jitter_us = rng.uniform(0.0, spacing_us / 4)
        start = int((lead_us + k * spacing_us + jitter_us) * per_us)
        env = envelope(frame)
        phase = np.exp(2j * np.pi * rng.uniform())
        hi[start : start + env.size] += amplitude * phase * env
        offsets_hi.append(start)
    if freq_offset_hz:
        hi *= np.exp(2j * np.pi * freq_offset_hz / OVERSAMPLE_HZ * np.arange(hi.size))
    taps = lowpass_taps(decimation)
    filtered = np.convolve(hi, taps, mode="same")
    first = int(rng.integers(0, decimation))  # random sub-sample phase of the whole capture
    out = filtered[first::decimation]
    noise_power = amplitude**2 / 10 ** (snr_db / 10)
    noise = rng.normal(0.0, np.sqrt(noise_power / 2), (out.size, 2))
    iq = np.empty(out.size * 2, np.float64)
    iq[0::2] = out.real + noise[:, 0]
    iq[1::2] = out.imag + noise[:, 1]
    iq_u8 = np.clip(np.round(iq + 127.5), 0, 255).astype(np.uint8)
    bursts = [
        Burst(frame, (start - first) / decimation)
        for frame, start in zip(frames, offsets_hi, strict=True)
    ]
    return iq_u8, bursts
