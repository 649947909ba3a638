"""Noise-floor estimates (`hardware.modes.noise`) on u8 IQ of known noise level."""

from __future__ import annotations

import numpy as np
import pytest
from signal_gen import noise_iq

from hardware.modes.magnitude import magnitude
from hardware.modes.noise import (
    FIRST_SEGMENT_SAMPLES,
    SEGMENT_SAMPLES,
    NoiseTracker,
    clipped_noise_floor,
    estimate_noise_floor,
    quartile_noise_floor,
)


@pytest.mark.parametrize("sigma", [2.0, 3.0, 6.0, 10.0, 20.0])
def test_clipped_floor_finds_the_mean_magnitude_of_noise(sigma: float) -> None:
    mag = magnitude(noise_iq(np.random.default_rng(int(sigma * 100)), sigma, 1 << 16))
    sample = mag[::16]
    assert clipped_noise_floor(sample) == pytest.approx(float(mag.mean()), rel=0.04)
    assert estimate_noise_floor(mag) == clipped_noise_floor(sample)


@pytest.mark.parametrize("sigma", [0.8, 0.93, 1.0, 1.1, 1.2, 1.3, 1.5])
def test_clipped_floor_stays_near_the_mean_at_the_lowest_gains(sigma: float) -> None:
    # u8 IQ makes the magnitudes discrete: at a dongle's lowest gains the lower
    # quartile jumps between a few levels (0.75 x the mean at sigma 1.2, 1.36 x at
    # 1.5). The clipped mean power moves in steps too where its clip passes a
    # level (down to 0.88 x near sigma 1.1), but no further.
    for seed in range(3):
        mag = magnitude(noise_iq(np.random.default_rng(seed), sigma, 1 << 16))
        assert clipped_noise_floor(mag[::16]) == pytest.approx(float(mag.mean()), rel=0.12)


def test_the_quartile_estimate_is_off_where_the_clipped_one_is_not() -> None:
    # The reason the receiver no longer uses it (its thresholds follow the floor).
    mag = magnitude(noise_iq(np.random.default_rng(15), 1.5, 1 << 16))
    assert abs(quartile_noise_floor(mag[::16]) / float(mag.mean()) - 1.0) > 0.25


def test_strong_replies_in_a_third_of_the_samples_barely_move_the_floor() -> None:
    rng = np.random.default_rng(3)
    iq = noise_iq(np.random.default_rng(3), 5.0, 1 << 16).astype(np.float64)
    true_mean = float(magnitude(iq.astype(np.uint8)).mean())
    # Pulses of 10x the noise amplitude over a third of the samples, in bursts.
    starts = rng.choice((1 << 16) - 64, 340, replace=False)
    loud = np.zeros(1 << 16, bool)
    for s in starts:
        loud[s : s + 64] = True
    phase = rng.uniform(0, 2 * np.pi, loud.sum())
    iq[0::2][loud] += 50.0 * np.cos(phase)
    iq[1::2][loud] += 50.0 * np.sin(phase)
    mag = magnitude(np.clip(np.rint(iq), 0, 255).astype(np.uint8))
    assert 0.25 < loud.mean() < 0.4
    assert clipped_noise_floor(mag[::16]) == pytest.approx(true_mean, rel=0.08)


def test_the_estimate_does_not_depend_on_where_the_iteration_starts() -> None:
    # The tracker starts each segment from the last one's estimate: after a
    # near-silent stretch or a gain change that start is far off either way.
    mag = magnitude(noise_iq(np.random.default_rng(4), 4.0, 1 << 16))[::16]
    cold = clipped_noise_floor(mag)
    for start in (1e-3, 0.05, 0.5, 0.9, 1.1, 2.0, 50.0):
        assert clipped_noise_floor(mag, start * cold) == pytest.approx(cold, rel=0.02)


def test_noise_after_a_silent_segment_gets_its_own_floor() -> None:
    tracker = NoiseTracker()
    silent = np.full(FIRST_SEGMENT_SAMPLES + SEGMENT_SAMPLES, 0.70710677, np.float32)
    loud = magnitude(noise_iq(np.random.default_rng(10), 10.0, 3 * SEGMENT_SAMPLES))
    tracker.add(silent)
    tracker.add(loud)
    last = FIRST_SEGMENT_SAMPLES + 4 * SEGMENT_SAMPLES - 1
    assert tracker.floor_at(last) > 0.5 * float(loud.mean())


def test_no_samples_and_silence_give_a_zero_floor() -> None:
    assert clipped_noise_floor(np.zeros(0, np.float32)) == 0.0
    assert clipped_noise_floor(np.zeros(4096, np.float32)) == 0.0
