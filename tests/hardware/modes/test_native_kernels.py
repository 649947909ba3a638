"""The compiled kernels (`hardware.modes.native`) against the numpy code they replace.

Which code runs must change the CPU only: the same magnitudes, the same preamble
candidates (test_prefilter.py holds those against its reference on every path),
the same preamble fits up to float32 rounding, the same messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from native_kernels import require_native
from signal_gen import noise_iq, random_df17, synthesize

from hardware.modes import native
from hardware.modes.crc import residual
from hardware.modes.crc_rows import mixed_residuals
from hardware.modes.demod import Demodulator
from hardware.modes.magnitude import magnitude, magnitude_table
from hardware.modes.noise import clipped_noise_floor, estimate_noise_floor
from hardware.modes.receiver import ModeSMessage, Receiver
from hardware.modes.slicer import PulseModel, _max_plus_sweep, _max_plus_sweep_compiled
from hardware.modes.windows import gather_windows

F32 = npt.NDArray[np.float32]
MODES1 = Path(__file__).resolve().parents[3] / "recordings" / "adsb" / "modes1.bin"


@pytest.fixture(autouse=True)
def _built() -> None:
    require_native()


def test_compiled_magnitude_is_the_table_for_every_iq_pair() -> None:
    every_pair = np.arange(1 << 16, dtype="<u2").view(np.uint8)
    got = magnitude(every_pair)
    np.testing.assert_array_equal(got, magnitude_table())
    np.testing.assert_array_equal(got, magnitude(every_pair, compiled=False))


def test_compiled_magnitude_fills_out_and_checks_it() -> None:
    iq = np.array([0, 255, 128, 127, 200, 3], np.uint8)
    out = np.full(3, np.nan, np.float32)
    assert magnitude(iq, out=out) is out
    np.testing.assert_array_equal(out, magnitude(iq, compiled=False))
    with pytest.raises(ValueError, match="float32"):
        magnitude(iq, out=np.empty(2, np.float32))
    with pytest.raises(ValueError, match="even"):
        native.KERNELS.magnitude(iq[:5], out)


def test_compiled_prefilter_refuses_a_range_outside_the_samples() -> None:
    demod = Demodulator(native=True)
    mag = np.ones(1000, np.float32)
    found = np.empty(1000, np.int64)
    geometry = (demod._win, demod._pulse_offsets, demod._quiet_offsets, demod._quiet_pair)
    with pytest.raises(ValueError, match="outside"):
        native.KERNELS.prefilter(mag, 990, 999, found, *geometry, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="outside"):
        native.KERNELS.prefilter(mag, 0, 10, found, *geometry, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="shorter"):
        native.KERNELS.prefilter(mag, 10, 500, found[:100], *geometry, 1.0, 1.0, 1.0, 1.0)
    assert native.KERNELS.prefilter(mag, 10, 10, found, *geometry, 1.0, 1.0, 1.0, 1.0) == 0


def screen_cases() -> list[tuple[int, F32]]:
    """(rate, magnitudes): modes1.bin read at both rates, and weak synthetic frames."""
    cases = []
    for rate_hz in (2_000_000, 2_400_000):
        if MODES1.exists():
            cases.append((rate_hz, magnitude(np.fromfile(MODES1, np.uint8))))
        rng = np.random.default_rng(rate_hz // 1000)
        frames = [random_df17(rng, 0xA0B0C0) for _ in range(60)]
        iq, _ = synthesize(frames, rate_hz, 9.0, rng, spacing_us=300)
        cases.append((rate_hz, magnitude(iq)))
    return cases


@pytest.mark.parametrize(("rate_hz", "mag"), screen_cases())
def test_compiled_preamble_screen_matches_the_numpy_fit(rate_hz: int, mag: F32) -> None:
    demod = Demodulator(rate_hz, native=True)
    model = demod.model
    floor = estimate_noise_floor(mag)
    preambles = demod.find_preambles(mag, 0, mag.size, floor)
    assert preambles.size > 500
    noise = np.full(preambles.size, floor, np.float32)
    origins = preambles - model.lookback
    top, energy, kept, best, picked = demod._screen_compiled(mag, origins, noise)
    # Its plausibility test is `_plausible`'s float32 arithmetic on its own sums.
    explained = top * top
    explained[top <= 0] = 0.0
    np.testing.assert_array_equal(
        kept, np.flatnonzero(demod._plausible(explained, energy, noise))
    )
    corr, want_energy = model.preamble_correlations(
        gather_windows(mag, origins, model.preamble_len), noise
    )
    scale = np.float32(model.preamble_len) * np.maximum(mag.max(), 1.0) ** 2
    np.testing.assert_allclose(top, corr.max(axis=0), rtol=1e-5, atol=1e-5 * np.sqrt(scale))
    np.testing.assert_allclose(energy, want_energy, rtol=1e-5, atol=1e-5 * scale)
    # The kept rows' pick: preamble_pick's on the kernel's own sums.
    want_best, want_picked = model.preamble_pick(corr[:, kept])
    np.testing.assert_array_equal(best, want_best)
    np.testing.assert_allclose(picked, want_picked, rtol=1e-5, atol=1e-5 * np.sqrt(scale))

    # The fit's verdicts: the same rows plausible (a row may flip only where its
    # margin is float32 rounding), and for those the same hypothesis and amplitude.
    best, amp, plausible = demod.fit_preambles(mag, preambles, noise, plausible_only=True)
    numpy_demod = Demodulator(rate_hz, native=False)
    want_best, want_amp, want_plausible = numpy_demod.fit_preambles(
        mag, preambles, noise, plausible_only=True
    )
    assert np.count_nonzero(plausible != want_plausible) <= 1
    both = plausible & want_plausible
    assert both.sum() > 50
    np.testing.assert_array_equal(best[both], want_best[both])
    np.testing.assert_allclose(amp[both], want_amp[both], rtol=1e-5)


def test_compiled_preamble_screen_refuses_windows_outside_the_samples() -> None:
    demod = Demodulator(native=True)
    mag = np.ones(100, np.float32)
    noise = np.ones(1, np.float32)
    with pytest.raises(ValueError, match="outside"):
        demod._screen_compiled(mag, np.array([100 - demod.model.preamble_len + 1]), noise)
    with pytest.raises(ValueError, match="outside"):
        demod._screen_compiled(mag, np.array([-1]), noise)
    top, energy, kept, _, _ = demod._screen_compiled(mag, np.array([0]), noise)
    assert energy[0] == 0.0  # a flat window at the noise mean
    assert abs(top[0]) < 1e-5
    # Below the noise mean: every template fits negatively, nothing is explained.
    top, energy, kept, _, _ = demod._screen_compiled(mag, np.array([0]), 2 * noise)
    assert top[0] < 0
    assert energy[0] == demod.model.preamble_len  # |m - mu|^2 with m = 1, mu = 2
    assert kept.size == 0


class Rows(NamedTuple):
    """Slicer rows read from a synthetic signal, and both models to slice them."""

    model: PulseModel  # compiled kernels
    numpy_model: PulseModel
    windows: F32
    step: npt.NDArray[np.intp]
    rng: np.random.Generator


def random_rows(rate_hz: int, rows: int, seed: int, *, short_frames: bool = False) -> Rows:
    """`rows` windows at random places of 9 dB frames (DF17, and random 56-bit ones
    with `short_frames`), each at a random phase step."""
    numpy_model = Demodulator(rate_hz, native=False).model
    model = Demodulator(rate_hz, native=True).model
    assert model.native and not numpy_model.native
    rng = np.random.default_rng(seed)
    frames = [random_df17(rng, 0x4CA123) for _ in range(15)]
    if short_frames:
        frames += [bytes(rng.integers(0, 256, 7, dtype=np.uint8)) for _ in range(15)]
    iq, _ = synthesize(frames, rate_hz, 9.0, rng)
    mag = magnitude(iq)
    origins = rng.integers(0, mag.size - model.window_len, rows)
    windows = np.stack([mag[o : o + model.window_len] for o in origins])
    step = rng.integers(0, model.steps, rows).astype(np.intp)
    return Rows(model, numpy_model, windows, step, rng)


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
@pytest.mark.parametrize("rows", [1, 2, 300])
def test_compiled_matched_filter_is_numpys_bit_for_bit(rate_hz: int, rows: int) -> None:
    model, numpy_model, windows, step, _ = random_rows(rate_hz, rows, seed=rows)
    for taps, nbits in ((model._taps, 112), (model._sum_taps, 56), (model._sum_taps, 17)):
        np.testing.assert_array_equal(
            model._filter(windows, step, taps, nbits),
            numpy_model._filter(windows, step, taps, nbits),
        )


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
@pytest.mark.parametrize("rows", [1, 2, 300])
def test_compiled_occupancy_count_is_numpys(rate_hz: int, rows: int) -> None:
    model, numpy_model, windows, step, rng = random_rows(rate_hz, rows, seed=rows)
    amplitude = rng.uniform(1.0, 40.0, rows).astype(np.float32)
    noise = rng.uniform(0.5, 5.0, rows).astype(np.float32)
    for nbits in (112, 56, 17, 1):
        got = model.held_bits(windows, step, amplitude, noise, nbits)
        want = numpy_model.held_bits(windows, step, amplitude, noise, nbits)
        np.testing.assert_array_equal(got, want)
        assert 0 < got.max() <= nbits


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_compiled_occupancy_count_reads_windows_in_place(rate_hz: int) -> None:
    model, numpy_model, windows, step, rng = random_rows(rate_hz, 300, seed=5)
    amplitude = rng.uniform(1.0, 40.0, 300).astype(np.float32)
    noise = rng.uniform(0.5, 5.0, 300).astype(np.float32)
    flat = windows.reshape(-1)  # the rows one after another, as in the magnitudes
    order = rng.permutation(300)
    at = order.astype(np.int64) * windows.shape[1]
    for nbits in (56, 32, 112):
        got = model.held_bits(flat, step[order], amplitude, noise, nbits, at=at)
        want = numpy_model.held_bits(windows[order], step[order], amplitude, noise, nbits)
        np.testing.assert_array_equal(got, want)
        in_place = numpy_model.held_bits(flat, step[order], amplitude, noise, nbits, at=at)
        np.testing.assert_array_equal(in_place, want)
    wlen = model.window_len_for(56)
    for outside in (-1, flat.size - wlen + 1):
        with pytest.raises(ValueError, match="out of range"):
            model.held_bits(flat, step[:1], amplitude[:1], noise[:1], 56, at=np.array([outside]))


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
@pytest.mark.parametrize("rows", [1, 2, 300])
def test_compiled_slicer_decisions_are_numpys_bit_for_bit(rate_hz: int, rows: int) -> None:
    model, numpy_model, windows, step, rng = random_rows(
        rate_hz, rows, seed=rows + 7, short_frames=True
    )
    given = rng.uniform(1.0, 40.0, rows).astype(np.float32)
    for amplitude, passes, timing in ((None, 2, False), (given, 0, True), (given, 1, False)):
        got = model.slice(windows, step, amplitude, passes=passes, timing=timing)
        want = numpy_model.slice(windows, step, amplitude, passes=passes, timing=timing)
        for field in ("bits", "confidence", "amplitude", "timing"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
        assert got.bits.dtype == want.bits.dtype and got.bits.shape == (rows, 112)
        assert 0 < got.bits.sum() < got.bits.size


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
@pytest.mark.parametrize("rows", [1, 2, 150])
def test_compiled_sequence_detector_is_numpys_bit_for_bit(rate_hz: int, rows: int) -> None:
    model, numpy_model, windows, step, rng = random_rows(rate_hz, rows, seed=rows + 11)
    amplitude = rng.uniform(0.0, 40.0, rows).astype(np.float32)  # 0: the 1e-6 floor
    amplitude[0] = 0.0
    noise = rng.uniform(0.5, 5.0, rows).astype(np.float32)
    guess = rng.integers(0, 2, (rows, 112)).astype(np.uint8)  # about half of them short
    fixed = np.full((rows, 112), -1, np.int8)
    fixed[:, 8:32] = rng.integers(0, 2, (rows, 24))
    fixed[:, 70] = 1  # past a short row's end
    # Values the slicer never gives are read as numpy reads them: a guessed bit is
    # set when nonzero, a fixed value other than 0 or 1 fixes nothing.
    odd_fixed = fixed.copy()
    odd_fixed[:, 40] = 2
    for kwargs in (
        {},
        {"coherent": True},
        {"fixed": fixed},
        {"coherent": True, "fixed": fixed},
        {"fixed": odd_fixed},
    ):
        for g in (guess, None, guess * 3):
            got = model.sequence_slice(windows, step, amplitude, noise, g, **kwargs)
            want = numpy_model.sequence_slice(windows, step, amplitude, noise, g, **kwargs)
            for field in ("bits", "confidence", "amplitude", "timing"):
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


@pytest.mark.parametrize("rows", [1, 3, 200])
def test_compiled_trellis_sweep_is_numpys_bit_for_bit(rows: int) -> None:
    rng = np.random.default_rng(rows)
    metrics = -rng.uniform(0.0, 300.0, (2, 2, 2, 112, rows)).astype(np.float32)
    metrics[:, :, :, 57:] = 0.0  # a short frame's dead branches: ties everywhere
    got = _max_plus_sweep_compiled(metrics)
    want = _max_plus_sweep(metrics)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="multiple of chunk"):
        cut = metrics[:, :, :, :111].copy()
        native.KERNELS.max_plus_sweep(cut, 2, 111, rows, 8, got[:, :, :111].copy())


@pytest.mark.parametrize("rows", [1, 2, 300])
def test_compiled_frame_residuals_are_the_crc_modules(rows: int) -> None:
    rng = np.random.default_rng(rows)
    msgs = rng.integers(0, 256, (rows, 14), dtype=np.uint8)
    long_rows = rng.random(rows) < 0.5
    got = mixed_residuals(msgs, long_rows)
    want = [
        residual(row[: 14 if is_long else 7].tobytes())
        for row, is_long in zip(msgs, long_rows, strict=True)
    ]
    assert got.tolist() == want
    np.testing.assert_array_equal(got, mixed_residuals(msgs, long_rows, compiled=False))
    with pytest.raises(ValueError, match="rows, 14"):
        native.KERNELS.frame_residuals(msgs[:, :7].copy(), long_rows.view(np.uint8), got, got)


def noise_floor_cases() -> list[tuple[str, F32, float | None]]:
    """(name, magnitudes of a segment's 4096-value subsample, start): Gaussian noise
    from near-silent to a saturating ADC, modes1.bin's segments, and starts far off."""
    rng = np.random.default_rng(4096)
    cases: list[tuple[str, F32, float | None]] = []
    for sigma in (0.3, 0.93, 1.1, 3.0, 20.0, 200.0):
        mag = magnitude(noise_iq(rng, sigma, 4096))
        cases += [(f"sigma {sigma}", mag, None), (f"sigma {sigma}, low start", mag, 0.01)]
    if MODES1.exists():
        mag = magnitude(np.fromfile(MODES1, np.uint8))
        for at in range(0, mag.size - 65536, 65536):
            cases.append((f"modes1.bin at {at}", mag[at : at + 65536 : 16], 1.2))
    cases.append(("every u8 pair at the top", magnitude(np.full(8192, 255, np.uint8)), 180.0))
    return cases


@pytest.mark.parametrize(("name", "mag", "start"), noise_floor_cases())
def test_compiled_noise_floor_is_numpys_exactly(name: str, mag: F32, start: float | None) -> None:
    got = clipped_noise_floor(mag, start)
    want = clipped_noise_floor(mag, start, compiled=False)
    assert got == want, name
    assert got > 0.0


def messages(iq: npt.NDArray[np.uint8], rate_hz: int, compiled: bool) -> list[ModeSMessage]:
    rx = Receiver(rate_hz, demodulator=Demodulator(rate_hz, native=compiled))
    out: list[ModeSMessage] = []
    for start in range(0, iq.size, 1 << 18):
        out += rx.feed(iq[start : start + (1 << 18)])
    return out + rx.flush()


def test_receiver_gives_the_same_messages_with_either_code_on_modes1() -> None:
    if not MODES1.exists():
        pytest.skip("modes1.bin not available")
    iq = np.fromfile(MODES1, np.uint8)
    compiled = messages(iq, 2_000_000, True)
    assert len(compiled) >= 284
    assert compiled == messages(iq, 2_000_000, False)


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_receiver_gives_the_same_messages_with_either_code_on_weak_frames(rate_hz: int) -> None:
    rng = np.random.default_rng(21)
    frames = [random_df17(rng, 0x3C6DD0) for _ in range(80)]
    iq, _ = synthesize(frames, rate_hz, 11.0, rng, spacing_us=400)
    iq = np.concatenate([iq, noise_iq(rng, 2.0, 50_000)])
    compiled = messages(iq, rate_hz, True)
    assert len(compiled) > 40
    assert compiled == messages(iq, rate_hz, False)


def test_asking_for_the_kernels_where_they_are_built_uses_them() -> None:
    assert Demodulator().native
    assert Demodulator(native=True).native
    assert not Demodulator(native=False).native


def test_the_extension_was_built_from_the_source_beside_it() -> None:
    source = Path(native.__file__).with_name("_samples.c")
    assert native.stale_reason(native.KERNELS.SOURCE_DIGEST, source) == ""


def test_an_extension_built_from_another_source_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "_samples.c"
    source.write_text("int edited;\n")
    reason = native.stale_reason(native.KERNELS.SOURCE_DIGEST, source)
    assert "built from another _samples.c" in reason and "pip install -e ." in reason
    assert native.stale_reason("", source).startswith("hardware.modes._samples was built")
    # An installed package has no source beside the build: nothing to compare.
    assert native.stale_reason("0123456789abcdef", tmp_path / "absent.c") == ""


def test_without_the_kernels_numpy_runs_and_asking_for_them_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(native, "KERNELS", None)
    monkeypatch.setattr(native, "UNAVAILABLE_REASON", "not built (test)")
    assert not Demodulator().native
    with pytest.raises(RuntimeError, match="not built"):
        Demodulator(native=True)
    iq = np.array([0, 255, 128, 127], np.uint8)
    np.testing.assert_array_equal(magnitude(iq), magnitude_table()[[0xFF00, 0x7F80]])
