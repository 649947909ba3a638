"""Pulse model, matched-filter and sequence slicers, and the noise tracker."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from signal_gen import Burst, noise_iq, random_df17, synthesize

from hardware.modes.demod import Demodulator
from hardware.modes.magnitude import magnitude
from hardware.modes.noise import NoiseTracker, estimate_noise_floor
from hardware.modes.slicer import PulseModel, pulse_samples
from hardware.modes.windows import gather_windows


def test_pulse_model_matches_the_receiver_calibration() -> None:
    # An on-grid 0.5 us pulse at 2 MS/s (centred on a sample) keeps about a quarter
    # of its height in each neighbour, as modes1.bin shows (7 / 26 at sample 794).
    k = np.arange(-3.0, 4.0)
    on_grid = pulse_samples(k, -0.5, 1.0, 0.3)
    assert on_grid.argmax() == 3
    assert 0.15 < on_grid[4] / on_grid[3] < 0.35
    # A pulse starting on a sample centre splits evenly over two samples.
    straddle = pulse_samples(k, 0.0, 1.0, 0.3)
    assert straddle[3] == pytest.approx(straddle[4])


def windows_at_bursts(
    model: PulseModel, samples: npt.NDArray[Any], bursts: list[Burst]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """Slicing windows of `samples` (magnitudes or complex) at each burst's exact
    generator position, and the phase step of each."""
    start = np.array([b.start_sample for b in bursts])
    origin = np.floor(start).astype(np.int64)
    step = np.rint((start - origin) * model.steps).astype(np.intp)
    origin += step // model.steps
    step %= model.steps
    view = np.lib.stride_tricks.sliding_window_view(samples, model.window_len)
    return np.ascontiguousarray(view[origin - model.lookback]), step


def sliced_at_true_phase(
    rate_hz: int, snr_db: float, count: int = 120
) -> tuple[PulseModel, npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """(model, true bits, fast-slice bits, sequence bits) of synthetic DF17 frames
    sliced at their exact (generator) phase."""
    rng = np.random.default_rng(21)
    frames = [random_df17(rng, 0x3C6586) for _ in range(count)]
    iq, bursts = synthesize(frames, rate_hz, snr_db, rng, spacing_us=300)
    mag = magnitude(iq)
    model = PulseModel(rate_hz)
    windows, step = windows_at_bursts(model, mag, bursts)
    fast = model.slice(windows, step)
    noise = np.full(count, estimate_noise_floor(mag), np.float32)
    seq = model.sequence_slice(windows, step, fast.amplitude, noise, fast.bits)
    truth = np.unpackbits(np.frombuffer(b"".join(frames), np.uint8)).reshape(count, 112)
    return model, truth, fast.bits, seq.bits


def test_sequence_detection_resolves_pulses_straddling_samples_at_2msps() -> None:
    # At 40 dB the only errors left are inter-symbol interference: the decision-
    # feedback slicer still misreads some straddling frames, the sequence
    # detector none.
    _, truth, fast, seq = sliced_at_true_phase(2_000_000, 40.0)
    assert (seq == truth).all()
    assert (fast != truth).any(axis=1).sum() >= 1


def test_both_slicers_are_clean_at_2p4msps_and_40db() -> None:
    _, truth, fast, seq = sliced_at_true_phase(2_400_000, 40.0)
    assert (fast == truth).all()
    assert (seq == truth).all()


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_fast_slice_of_a_row_does_not_depend_on_the_other_rows(rate_hz: int) -> None:
    # Block sizes decide how many rows are sliced together; the sums inside (the
    # matched filter, the amplitude) must come out the same for any row count.
    rng = np.random.default_rng(9)
    model = PulseModel(rate_hz)
    windows = rng.rayleigh(3.0, (7, model.window_len)).astype(np.float32)
    step = rng.integers(0, model.steps, 7).astype(np.intp)
    together = model.slice(windows, step, timing=True)
    noise = np.full(7, 3.0, np.float32)
    occupancy = model.occupancy(windows, step, together.amplitude, noise)
    for row in range(7):
        alone = model.slice(windows[row : row + 1], step[row : row + 1], timing=True)
        assert np.array_equal(alone.bits[0], together.bits[row])
        assert np.array_equal(alone.confidence[0], together.confidence[row])
        assert alone.amplitude[0] == together.amplitude[row]
        assert alone.timing[0] == together.timing[row]
        one = model.occupancy(
            windows[row : row + 1],
            step[row : row + 1],
            together.amplitude[row : row + 1],
            noise[:1],
        )
        assert one[0] == occupancy[row]


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_pulses_counted_over_the_first_bits_from_a_short_window_are_the_long_counts(
    rate_hz: int,
) -> None:
    # The demodulator counts weak rows' pulses over 32 bits from short windows
    # first and drops those that cannot reach the 56-bit test: that is sound
    # only while the short count equals the same bits of the long one.
    rng = np.random.default_rng(21)
    model = PulseModel(rate_hz)
    rows = 400
    windows = rng.rayleigh(3.0, (rows, model.window_len)).astype(np.float32)
    windows[::2, model.lookback :] += rng.uniform(0, 12, (rows // 2, 1)).astype(np.float32)
    step = rng.integers(0, model.steps, rows).astype(np.intp)
    amplitude = rng.uniform(1.0, 10.0, rows).astype(np.float32)
    noise = np.full(rows, 3.76, np.float32)
    whole_levels = model._filter(windows, step, model._sum_taps, 56)
    for bits in (8, 32, 55):
        short = np.ascontiguousarray(windows[:, : model.window_len_for(bits)])
        levels = model._filter(short, step, model._sum_taps, bits)
        np.testing.assert_array_equal(levels, whole_levels[:bits])
        counted = model.held_bits(short, step, amplitude, noise, bits)
        long_count = model.held_bits(windows, step, amplitude, noise, bits)
        np.testing.assert_array_equal(counted, long_count)
    whole = model.held_bits(windows, step, amplitude, noise, 56)
    assert 0 < np.count_nonzero(whole >= 40) < rows


def test_quick_occupancy_drops_only_rows_the_whole_test_rejects() -> None:
    rng = np.random.default_rng(22)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(150)]
    iq, _ = synthesize(frames, 2_000_000, 9.0, rng, spacing_us=300)
    mag = magnitude(np.concatenate([iq, noise_iq(rng, 10.6, iq.size // 2)]))
    demod = Demodulator(2_000_000)
    floor = estimate_noise_floor(mag)
    found = demod.find_preambles(mag, 0, mag.size, floor)
    noise = np.full(found.size, floor, np.float32)
    best, amp, plausible = demod.fit_preambles(mag, found, noise, plausible_only=True)
    at = np.flatnonzero(plausible)
    origin, step, _ = demod._hypothesis(found[at], best[at])
    model = demod.model
    windows = gather_windows(mag, origin - model.lookback, model.window_len)
    passes = model.occupancy(windows, step, amp[at], noise[at]) >= np.float32(demod.min_occupancy)
    hopeful = demod._quick_occupancy(mag, origin, step, amp[at], noise[at])
    assert hopeful is not None  # noise candidates are plenty, and hopeless
    kept = np.zeros(at.size, bool)
    kept[hopeful] = True
    assert passes.any()
    assert not (passes & ~kept).any()
    assert (~kept).sum() > 0.5 * (~passes).sum()


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_preamble_fit_finds_the_sub_sample_phase(rate_hz: int) -> None:
    rng = np.random.default_rng(5)
    frames = [random_df17(rng, 0x3C6586) for _ in range(60)]
    iq, bursts = synthesize(frames, rate_hz, 30.0, rng, spacing_us=300)
    mag = magnitude(iq)
    demod = Demodulator(rate_hz)
    start = np.array([b.start_sample for b in bursts])
    near = np.rint(start).astype(np.int64)
    noise = np.full(near.size, estimate_noise_floor(mag), np.float32)
    best, amplitude, plausible = demod.fit_preambles(mag, near, noise)
    error = near + demod.phases[best] - start
    assert plausible.all()
    assert np.abs(error).max() <= 0.2
    assert np.median(amplitude) == pytest.approx(60.0, rel=0.15)  # signal_gen's amplitude


def test_noise_floors_do_not_depend_on_how_the_stream_is_cut() -> None:
    rng = np.random.default_rng(3)
    scale = np.repeat([5.0, 20.0, 5.0], 150_000)  # a noise step in the middle
    mag = (rng.rayleigh(1.0, scale.size) * scale).astype(np.float32)
    probe = np.arange(0, mag.size, 997, dtype=np.int64)
    floors = []
    for block in (4096, 65_536 + 3, mag.size):
        tracker = NoiseTracker()
        for lo in range(0, mag.size, block):
            tracker.add(mag[lo : lo + block])
        floors.append(tracker.floors(probe))
    assert np.array_equal(floors[0], floors[1])
    assert np.array_equal(floors[0], floors[2])
    mean_5 = 5.0 * np.sqrt(np.pi / 2)  # Rayleigh mean
    # segment 0 is only 1024 samples (a rough start); two segments in it is close.
    assert floors[0][probe.searchsorted(140_000)] == pytest.approx(mean_5, rel=0.05)
    # After the step the average moves towards the louder noise within 0.1 s.
    assert floors[0][probe.searchsorted(299_000)] > 2 * mean_5


def test_nothing_is_searched_before_the_first_noise_segment_is_complete() -> None:
    tracker = NoiseTracker(origin=1000)
    tracker.add(np.ones(500, np.float32))
    assert tracker.ready_until(final=False) == 0
    assert tracker.ready_until(final=True) == 1500
    tracker.add(np.ones(600, np.float32))
    assert tracker.ready_until(final=False) == 2100


def test_carrier_projection_recovers_the_envelope_under_a_frequency_offset() -> None:
    # Noise-free complex windows of frames turning at 40 kHz: the in-phase part
    # about the tracked carrier is the pulse envelope, with its amplitude.
    rng = np.random.default_rng(31)
    frames = [random_df17(rng, 0x3C6586) for _ in range(20)]
    iq, bursts = synthesize(
        frames, 2_000_000, 80.0, rng, spacing_us=300, freq_offset_hz=40e3, amplitude=50.0
    )
    z = (iq[0::2].astype(np.float32) - 127.5) + 1j * (iq[1::2].astype(np.float32) - 127.5)
    model = PulseModel(2_000_000)
    windows, step = windows_at_bursts(model, z, bursts)
    windows = windows.astype(np.complex64)
    truth = np.unpackbits(np.frombuffer(b"".join(frames), np.uint8)).reshape(20, 112)
    inphase, amp = model.carrier_projection(windows, step, truth)
    assert np.allclose(amp, 50.0, rtol=0.05)
    envelope = np.abs(windows)
    data = slice(int(model._tap_origin.min()), None)
    assert np.abs(inphase[:, data] - envelope[:, data]).max() < 3.0  # u8 rounding
    bits = model.sequence_slice(
        inphase, step, amp, np.ones(20, np.float32), truth, coherent=True
    ).bits
    assert (bits == truth).all()


def test_data_aided_amplitude_is_unbiased_where_pulses_straddle_samples() -> None:
    rng = np.random.default_rng(32)
    frames = [random_df17(rng, 0x3C6586) for _ in range(200)]
    iq, bursts = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=300)
    mag = magnitude(iq)
    model = PulseModel(2_000_000)
    windows, step = windows_at_bursts(model, mag, bursts)
    truth = np.unpackbits(np.frombuffer(b"".join(frames), np.uint8)).reshape(200, 112)
    noise = np.full(200, estimate_noise_floor(mag), np.float32)
    amp, misfit = model.data_amplitude(windows, step, truth, noise)
    assert abs(float(np.median(amp)) - 60.0) < 3.0  # the generator's amplitude
    fast = model.slice(windows, step)
    assert float(np.median(fast.amplitude)) < 57.0  # what it improves on
    shifted = model.data_amplitude(windows, (step + 3) % model.steps, truth, noise)[1]
    assert np.mean(misfit < shifted) > 0.9  # the misfit finds the phase


def coherent_windows_at_bursts(
    snr_db: float, count: int, seed: int
) -> tuple[
    PulseModel,
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.intp],
    npt.NDArray[np.uint8],
]:
    """(model, in-phase windows, amplitudes, steps, true bits) of synthetic DF17
    frames at 2.0 MS/s, projected on their carrier at their exact phase."""
    rng = np.random.default_rng(seed)
    frames = [random_df17(rng, 0x3C6586) for _ in range(count)]
    iq, bursts = synthesize(frames, 2_000_000, snr_db, rng, spacing_us=300)
    z = (iq[0::2].astype(np.float32) - 127.5) + 1j * (iq[1::2].astype(np.float32) - 127.5)
    model = PulseModel(2_000_000)
    windows, step = windows_at_bursts(model, z, bursts)
    truth = np.unpackbits(np.frombuffer(b"".join(frames), np.uint8)).reshape(count, 112)
    inphase, amp = model.carrier_projection(windows.astype(np.complex64), step, truth)
    return model, inphase, amp, step, truth


def test_fixed_bits_bind_every_path_of_the_sequence_detector() -> None:
    # Clean frames, with the address field fixed to the inverse of what was sent:
    # the decision must take the fixed bits, however the samples disagree.
    model, inphase, amp, step, truth = coherent_windows_at_bursts(60.0, 20, seed=41)
    fixed = np.full(truth.shape, -1, np.int8)
    fixed[:, 8:32] = 1 - truth[:, 8:32]
    noise = np.ones(20, np.float32)
    seq = model.sequence_slice(inphase, step, amp, noise, truth, coherent=True, fixed=fixed)
    assert (seq.bits[:, 8:32] == 1 - truth[:, 8:32]).all()
    assert (seq.bits[:, 40:] == truth[:, 40:]).all()  # far from the forced bits: unchanged
    assert (seq.confidence[:, 8:32] > 1e3 * seq.confidence[:, 40:].max()).all()

