"""Magnitude table, vectorized CRC and the pure `demodulate` function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from signal_gen import df11, random_df17, synthesize

from hardware.modes.crc import residual
from hardware.modes.crc_rows import (
    LONG_BITS,
    SHORT_BITS,
    frame_residuals,
    mixed_residuals,
    one_bit_away,
)
from hardware.modes.demod import Demodulator, address_hypotheses, demodulate
from hardware.modes.magnitude import magnitude
from hardware.modes.noise import estimate_noise_floor

MODES1 = Path(__file__).resolve().parents[3] / "recordings" / "adsb" / "modes1.bin"


def test_magnitude_table_gives_the_distance_from_the_iq_midpoint() -> None:
    iq = np.array([0, 0, 255, 255, 127, 128, 200, 100], np.uint8)
    want = np.hypot(iq[0::2] - 127.5, iq[1::2] - 127.5)
    np.testing.assert_allclose(magnitude(iq), want, rtol=1e-6)


def test_magnitude_rejects_odd_length_and_non_u8() -> None:
    with pytest.raises(ValueError):
        magnitude(np.zeros(3, np.uint8))
    with pytest.raises(TypeError):
        magnitude(np.zeros(4, np.int16))


@pytest.mark.parametrize("nbits", [SHORT_BITS, LONG_BITS])
def test_vectorized_residual_matches_crc_module(nbits: int) -> None:
    rng = np.random.default_rng(7)
    msgs = rng.integers(0, 256, (200, 14), dtype=np.uint8)
    got = frame_residuals(msgs, nbits)
    want = [residual(row[: nbits // 8].tobytes()) for row in msgs]
    assert got.tolist() == want


def test_mixed_residuals_read_each_row_at_its_own_length() -> None:
    rng = np.random.default_rng(8)
    msgs = rng.integers(0, 256, (300, 14), dtype=np.uint8)
    long_rows = rng.random(300) < 0.5
    got = mixed_residuals(msgs, long_rows, compiled=False)
    want = [
        residual(row[: 14 if is_long else 7].tobytes())
        for row, is_long in zip(msgs, long_rows, strict=True)
    ]
    assert got.tolist() == want


def test_one_bit_away_recognises_every_single_bit_error_and_not_two() -> None:
    rng = np.random.default_rng(3)
    frame = bytearray(random_df17(rng, 0x4D2023))
    singles, doubles = [], []
    for bit in range(LONG_BITS):
        one = bytearray(frame)
        one[bit // 8] ^= 0x80 >> (bit % 8)
        singles.append(residual(bytes(one)))
        two = bytearray(one)
        other = (bit + 37) % LONG_BITS
        two[other // 8] ^= 0x80 >> (other % 8)
        doubles.append(residual(bytes(two)))
    assert one_bit_away(np.array(singles, np.uint32), LONG_BITS).all()
    assert not one_bit_away(np.array(doubles, np.uint32), LONG_BITS).any()


def test_unsupported_sample_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        Demodulator(3_000_000)


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_demodulate_recovers_strong_synthetic_frames_at_their_offsets(rate_hz: int) -> None:
    rng = np.random.default_rng(11)
    frames = [random_df17(rng, 0x3C6586) for _ in range(40)]
    iq, bursts = synthesize(frames, rate_hz, 30.0, rng, spacing_us=300)
    rows = demodulate(magnitude(iq), rate_hz)
    clean = [
        (float(rows.preamble[k] + rows.phase[k]), rows.frame(k))
        for k in range(len(rows))
        if rows.residual[k] == 0
    ]
    found = 0
    for burst in bursts:
        near = [abs(start - burst.start_sample) for start, frame in clean if frame == burst.frame]
        found += bool(near) and min(near) < 0.75
    # 2.0 MS/s loses a few frames to inter-symbol interference even at 30 dB
    assert found >= 36


def test_demodulate_on_modes1_finds_clean_df17_from_one_aircraft_only() -> None:
    if not MODES1.exists():
        pytest.skip("modes1.bin not available")
    rows = demodulate(magnitude(np.fromfile(MODES1, np.uint8)))
    df17 = [rows.frame(k) for k in range(len(rows)) if rows.df[k] == 17 and rows.residual[k] == 0]
    print(f"demodulate(): {len(df17)} clean DF17 rows")
    assert len(df17) >= 150
    assert {frame[1:4].hex().upper() for frame in df17} == {"4D2023"}


@pytest.mark.parametrize("rate_hz", [2_000_000, 2_400_000])
def test_preamble_search_does_not_depend_on_its_chunk_size(rate_hz: int) -> None:
    # The prefilter works in cache-sized chunks of scratch arrays; every test near
    # a chunk edge must read real window sums, not what a previous chunk left.
    rng = np.random.default_rng(12)
    frames = [random_df17(rng, 0x3C6586) for _ in range(60)]
    iq, _ = synthesize(frames, rate_hz, 14.0, rng, spacing_us=100)
    mag = magnitude(iq)
    # The generator's noise mean (amplitude 60 at 14 dB): frames every 100 us fill
    # the air, where no estimate from the samples can find the noise.
    floor = 60.0 / np.sqrt(2 * 10**1.4) * np.sqrt(np.pi / 2)
    found = []
    for chunk in (mag.size, 4096, 13):
        demod = Demodulator(rate_hz, chunk_samples=chunk)
        demod.find_preambles(np.full(mag.size, 1e4, np.float32), 0, mag.size, floor)  # stale sums
        found.append(demod.find_preambles(mag, 0, mag.size, floor))
    assert found[0].size > 60
    assert np.array_equal(found[0], found[1])
    assert np.array_equal(found[0], found[2])


def test_data_aided_fit_tells_frames_from_frames_under_a_stronger_collision() -> None:
    # The gate before the second pass and soft repair: with its bits right, a
    # 12 dB frame fits the pulse model at ~0.3-0.6 mu^2 per sample; one that a
    # stronger frame overlaps does not, whatever the bits.
    rng = np.random.default_rng(21)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(40)]
    iq, bursts = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=300)
    others = [random_df17(rng, 0x123456) for _ in range(40)]
    loud, _ = synthesize(others, 2_000_000, 60.0, rng, spacing_us=300, amplitude=120.0, lead_us=80)
    collided = np.clip(iq.astype(np.int16) + loud[: iq.size] - 128, 0, 255).astype(np.uint8)
    demod = Demodulator(2_000_000)
    noise = np.full(len(bursts), estimate_noise_floor(magnitude(iq)), np.float32)
    preambles = np.array([int(b.start_sample) for b in bursts], np.int64)
    bits = np.array([np.unpackbits(np.frombuffer(f, np.uint8)) for f in frames])
    misfit = []
    for data in (iq, collided):
        mag = magnitude(data)
        best, _, _ = demod.fit_preambles(mag, preambles, noise)
        misfit.append(demod._data_fit(mag, preambles, best, bits, noise).misfit)
    assert misfit[0].max() < demod.frame_misfit / 3
    assert np.median(misfit[1]) > demod.frame_misfit


def frame_bits(frame: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(frame, np.uint8))


def test_address_hypotheses_pick_rows_near_a_known_address() -> None:
    rng = np.random.default_rng(3)
    known = np.array(sorted([0x3C6586, 0x4D2023]), np.uint32)
    near = frame_bits(random_df17(rng, 0x4D2023))
    near[[9, 20, 30]] ^= 1  # three address bits off
    far = frame_bits(random_df17(rng, 0x123456))  # 8+ bits from both
    df_doubt = frame_bits(random_df17(rng, 0x3C6586))
    df_doubt[3] ^= 1  # DF 10011: one bit from 17 and from 18
    short = np.zeros(112, np.uint8)
    short[:56] = frame_bits(df11(0x3C6586))
    rows, fixed = address_hypotheses(np.array([near, far, df_doubt, short]), known, 6)
    # The DF11 row too: its first bit may be a misread long frame's.
    assert rows.tolist() == [0, 2, 3]
    address = (fixed[:, 8:32].astype(np.int64) << np.arange(23, -1, -1)).sum(axis=1)
    assert address.tolist() == [0x4D2023, 0x3C6586, 0x3C6586]
    assert fixed[0, :5].tolist() == [1, 0, 0, 0, 1]  # DF17
    assert fixed[1, :5].tolist() == [1, -1, -1, -1, -1]  # only "long"
    assert fixed[2, :5].tolist() == [1, -1, -1, -1, -1]  # DF11: 3 bits from 17 and 18
    assert (fixed[:, 5:8] == -1).all() and (fixed[:, 32:] == -1).all()
