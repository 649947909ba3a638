"""The IQ path: decimation, carrier offset search, discriminator, decode_iq."""

from __future__ import annotations

import numpy as np
import pytest
from rs41_signal import fm_modulate_audio, gfsk_iq_bursts

from hardware.rs41.decoder import decode_iq
from hardware.rs41.fm import (
    FirDecimator,
    FmDemodulator,
    bytes_per_sample,
    estimate_offset_hz,
    iq_from_bytes,
    lowpass_taps,
)
from hardware.rs41.frame import Rs41Frame

RATE_HZ = 2_400_000


def test_fir_decimator_equals_convolution_and_does_not_depend_on_block_sizes() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(50_000) + 1j * rng.standard_normal(50_000)).astype(np.complex64)
    taps = lowpass_taps(61, 80e3, 2.4e6)
    dec = FirDecimator(taps, 10)
    y = np.concatenate(
        [dec.process(x[:12_345]), dec.process(x[12_345:12_350]), dec.process(x[12_350:])]
    )
    # Output m is the filter output at input sample 10 m + 9 (the end of its rows).
    expected = np.convolve(x, taps)[9::10][: y.size]
    assert y.size == 5_000  # history starts as zeros: one output per 10 inputs
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_offset_of_a_gfsk_burst_is_found_and_noise_alone_finds_nothing(
    ref_frames: list[bytes],
) -> None:
    burst = next(gfsk_iq_bursts(ref_frames[:1], 240_000, -12_300.0, snr_db=0.0))
    est = estimate_offset_hz(burst[:24_000], 240_000, 84_000)
    assert est == pytest.approx(-12_300.0, abs=400)
    noise = burst[-4_000:]  # the gap after the frame: noise only
    assert estimate_offset_hz(noise, 240_000, 84_000) is None


def test_discriminator_of_a_steady_carrier_reads_its_residual_near_zero() -> None:
    n = RATE_HZ // 5
    t = np.arange(n) / RATE_HZ
    tone = np.exp(2j * np.pi * 6_000.0 * t).astype(np.complex64)
    fm = FmDemodulator(RATE_HZ)
    audio = fm.process(tone)
    assert fm.audio_rate_hz == 48_000
    assert fm.offset_hz == pytest.approx(6_000.0, abs=150)
    # After mixing the carrier down the discriminator reads the residual only.
    assert abs(float(np.median(audio[1_000:]))) < 200


def test_iq_file_formats_scale_to_about_one() -> None:
    u8 = iq_from_bytes(bytes([255, 0, 127, 128]), "u8")
    np.testing.assert_allclose(u8, [1 - 1j, -1 / 255 + 1j / 255], atol=1e-6)
    cs16 = iq_from_bytes(np.array([16384, -32768], dtype="<i2").tobytes(), "cs16")
    np.testing.assert_allclose(cs16, [0.5 - 1j])
    assert (bytes_per_sample("u8"), bytes_per_sample("cs16")) == (2, 4)
    with pytest.raises(ValueError, match="IQ format"):
        iq_from_bytes(b"", "cf32")


@pytest.mark.slow
def test_iq_at_2_4_msps_with_offset_and_noise_decodes_at_least_58_of_60(
    ref_frames: list[bytes],
) -> None:
    # GFSK BT 0.5, +-2.4 kHz, 7.5 kHz off tune, noise 8 dB above the carrier over
    # the full 2.4 MHz (about 13 dB in the channel), carrier off between frames.
    iq = gfsk_iq_bursts(ref_frames, RATE_HZ, 7_500.0, snr_db=-8.0, seed=5)
    results = list(decode_iq(iq, RATE_HZ))
    good = [r for r in results if isinstance(r, Rs41Frame) and r.plain in ref_frames]
    assert len(good) >= 58
    assert len({r.frame for r in good}) == len(good)


@pytest.mark.parametrize("offset_hz", [1_500.0, -40_000.0])
def test_a_strong_tuner_dc_spike_neither_hides_nor_corrupts_the_sonde(
    ref_frames: list[bytes], offset_hz: float
) -> None:
    # An RTL-SDR's LO leakage: a constant 2.6 times the sonde's power.
    dc = np.complex64(1.5 + 1.0j)
    iq = (c + dc for c in gfsk_iq_bursts(ref_frames[:4], RATE_HZ, offset_hz, snr_db=-8.0))
    results = list(decode_iq(iq, RATE_HZ))
    assert [r.plain for r in results if isinstance(r, Rs41Frame)] == ref_frames[:4]


def test_the_recording_fm_modulated_to_iq_decodes_at_least_58_of_60(
    wav_audio: tuple[np.ndarray, int], ref_frames: list[bytes]
) -> None:
    # The real audio (data swings about +-5 LSB) as +-2.4 kHz of deviation, 7.5 kHz
    # off tune, at 240 kS/s (an SDR already decimated), noise 3 dB above the carrier
    # over the 240 kHz.
    samples, rate = wav_audio
    iq = fm_modulate_audio(samples, rate, 240_000, 7_500.0, 2_400.0 / 5.0, snr_db=-3.0)
    results = list(decode_iq(iq, 240_000))
    good = [r for r in results if isinstance(r, Rs41Frame) and r.plain in ref_frames]
    assert len(good) >= 58
