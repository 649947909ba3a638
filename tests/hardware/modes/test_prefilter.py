"""The preamble prefilter (`Demodulator.find_preambles`) against a plain reference.

The demodulator's prefilter works in reused cache-sized scratch arrays, sums the
pulses in pairs, folds tests into one another and scales arrays in place; where
few samples pass its energy threshold it evaluates the other tests at those
samples only (`sparse_fraction`). The reference below evaluates the same tests on
whole arrays in the most direct way, with the same float32 sums in the same order
(so the same rounding): every candidate the two disagree on is a bug in a fast
path. The tests run each path on its own (numpy with sparse_fraction 0: whole
arrays always; 1: survivors always; the compiled kernel, `native`, which must give
the same float32 numbers) and the default switch between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from native_kernels import require_native
from signal_gen import noise_iq, random_df17, synthesize

from hardware.modes.demod import Demodulator
from hardware.modes.magnitude import magnitude
from hardware.modes.noise import estimate_noise_floor

MODES1 = Path(__file__).resolve().parents[3] / "recordings" / "adsb" / "modes1.bin"
RATES_HZ = (2_000_000, 2_400_000)

F32 = npt.NDArray[np.float32]


def reference_preambles(demod: Demodulator, mag: F32, noise_mean: float) -> npt.NDArray[np.int64]:
    """Every n with lookback <= n <= len(mag) - span - 1 that passes the prefilter,
    each test on its own whole array (sums in the fast path's float32 order)."""
    width = demod._win
    po, qo = demod._pulse_offsets, demod._quiet_offsets
    npulse, nquiet = len(po), len(qo)
    mu_w = noise_mean * width
    n = np.arange(demod.lookback, mag.size - demod.span)
    # win[k]: sum of mag[k .. k + width - 1], added left to right
    reach = mag.size - width + 1
    win = mag[:reach] + mag[1 : 1 + reach]
    for j in range(2, width):
        win = win + mag[j : j + reach]

    def at(offset: int) -> F32:
        """The window starting `offset` samples after each candidate n."""
        return win[n + offset]

    pair_step = po[1] - po[0]
    total_at = [
        (at(po[0] + d) + at(po[1] + d)) + (at(po[2] + d) + at(po[3] + d)) for d in (-1, 0, 1)
    ]
    before, total, after = total_at
    local_max = (total >= before) & (total > after)
    loud = total > np.float32(npulse * demod.pulse_to_noise * mu_w)
    slope = demod.weakest_to_pulse / npulse
    if slope:
        low = np.minimum.reduce([at(o) for o in po])
        weakest_ok = low > total * np.float32(slope) + np.float32(mu_w - slope * npulse * mu_w)
    else:
        weakest_ok = np.logical_and.reduce(
            [at(o) > np.float32(demod.pulse_floor * mu_w) for o in po]
        )
    if demod._quiet_pair:
        assert qo[2] - qo[1] == pair_step
        quiet = at(qo[0]) + (at(qo[1]) + at(qo[2]))
    else:
        quiet = at(qo[0]) + at(qo[1])
        for q in qo[2:]:
            quiet = quiet + at(q)
    slope = demod.quiet_to_pulse * nquiet / npulse
    limit = total * np.float32(slope) + np.float32(nquiet * mu_w - slope * npulse * mu_w)
    quiet_ok = quiet < limit
    return n[local_max & loud & weakest_ok & quiet_ok].astype(np.int64)


def synthetic_mag(rate_hz: int, snr_db: float, seed: int) -> F32:
    """Magnitudes of 60 random DF17 frames in noise, 300 us apart."""
    rng = np.random.default_rng(seed)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(60)]
    iq, _ = synthesize(frames, rate_hz, snr_db, rng, spacing_us=300)
    return magnitude(iq)


def assert_matches_reference(demod: Demodulator, mag: F32) -> None:
    floor = estimate_noise_floor(mag)
    want = reference_preambles(demod, mag, floor)
    got = demod.find_preambles(mag, 0, mag.size, floor)
    assert want.size > 0
    np.testing.assert_array_equal(got, want)


PATHS = ("whole arrays", "survivors", "compiled")


def path_demod(path: str, rate_hz: int, **settings: Any) -> Demodulator:
    """A demodulator whose prefilter takes `path` (see `PATHS`)."""
    if path == "compiled":
        require_native()
        return Demodulator(rate_hz, native=True, **settings)
    sparse = {"whole arrays": 0.0, "survivors": 1.0}[path]
    return Demodulator(rate_hz, native=False, sparse_fraction=sparse, **settings)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_prefilter_on_modes1_equals_the_reference(rate_hz: int, path: str) -> None:
    if not MODES1.exists():
        pytest.skip("modes1.bin not available")
    mag = magnitude(np.fromfile(MODES1, np.uint8))
    assert_matches_reference(path_demod(path, rate_hz), mag)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("snr_db", [6.0, 12.0, 20.0])
def test_prefilter_on_noisy_synthetic_signals_equals_the_reference(
    rate_hz: int, snr_db: float, path: str
) -> None:
    mag = synthetic_mag(rate_hz, snr_db, seed=int(snr_db))
    assert_matches_reference(path_demod(path, rate_hz, chunk_samples=4096), mag)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_prefilter_with_a_weakest_pulse_test_equals_the_reference(rate_hz: int) -> None:
    mag = synthetic_mag(rate_hz, 12.0, seed=3)
    demod = Demodulator(rate_hz, weakest_to_pulse=0.3, chunk_samples=5000)
    assert_matches_reference(demod, mag)


@pytest.mark.parametrize("path", PATHS)
def test_prefilter_on_pure_noise_equals_the_reference(path: str) -> None:
    rng = np.random.default_rng(7)
    iq = np.clip(rng.normal(127.5, 12.0, 2 * 200_000), 0, 255).astype(np.uint8)
    assert_matches_reference(path_demod(path, 2_000_000), magnitude(iq))


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_prefilter_switches_path_per_chunk_by_density(
    rate_hz: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quiet air and a dense stretch in one search: the default takes the survivors'
    # path on the quiet chunks and the whole-array one on the dense chunks, and
    # the candidates are the reference's all the same.
    rng = np.random.default_rng(11)
    quiet = magnitude(noise_iq(rng, 3.0, 150_000))
    rng_dense = np.random.default_rng(12)
    frames = [random_df17(rng_dense, 0xABCDEF) for _ in range(400)]
    iq, _ = synthesize(frames, rate_hz, 20.0, rng_dense, spacing_us=130)
    dense = magnitude(iq)
    dense *= np.float32(estimate_noise_floor(quiet) / estimate_noise_floor(dense))
    mag = np.concatenate([quiet, dense, quiet])
    demod = Demodulator(rate_hz, chunk_samples=16_384, native=False)
    sparse_chunks: list[int] = []
    sparse = demod._prefilter_sparse
    monkeypatch.setattr(
        demod, "_prefilter_sparse", lambda at, *a: sparse_chunks.append(at.size) or sparse(at, *a)
    )
    floor = estimate_noise_floor(quiet)
    want = reference_preambles(demod, mag, floor)
    got = demod.find_preambles(mag, 0, mag.size, floor)
    chunks = -(-(mag.size - demod.lookback - demod.span) // 16_384)
    assert 2 * quiet.size // 16_384 - 2 <= len(sparse_chunks) < chunks
    np.testing.assert_array_equal(got, want)
