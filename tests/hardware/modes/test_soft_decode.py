"""Ordered-statistics soft decoding against the Mode S CRC."""

from __future__ import annotations

import numpy as np
from signal_gen import random_df17

from hardware.modes.crc_rows import frame_residuals
from hardware.modes.soft_decode import osd_candidates, osd_decode


def frames_with_errors(
    count: int, errors: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(true bits, received bits, reliabilities, residuals): DF17 frames with
    `errors` flipped bits, each given a low reliability among the noise of the
    others (as a detector would report them)."""
    rng = np.random.default_rng(seed)
    truth = np.array(
        [np.unpackbits(np.frombuffer(random_df17(rng, 0x4D2023), np.uint8)) for _ in range(count)]
    )
    received = truth.copy()
    reliability = rng.uniform(0.5, 3.0, truth.shape).astype(np.float32)
    for row in range(count):
        wrong = rng.choice(112, errors, replace=False)
        received[row, wrong] ^= 1
        reliability[row, wrong] = rng.uniform(0.05, 0.6, errors)
    residual = frame_residuals(np.packbits(received, axis=1), 112)
    return truth, received, reliability, residual


def test_osd_corrects_more_errors_than_the_code_distance_when_they_are_unreliable() -> None:
    # Seven errors: beyond any hard-decision decoder of a distance-6 code, but all
    # among the least reliable bits.
    truth, received, reliability, residual = frames_with_errors(200, 7, seed=3)
    found = osd_decode(received, reliability, residual, 112)
    assert found.rows.size == 200
    # The truth is always a candidate: nothing the OSD returns costs more.
    truth_cost = (reliability * (truth != received)).sum(axis=1)[found.rows]
    assert (found.cost <= truth_cost + 1e-5).all()
    right = (found.bits == truth[found.rows]).all(axis=1)
    assert right.mean() >= 0.8  # the rest: another codeword even cheaper
    assert (found.flips[right] == 7).all()
    flipped = found.bits != received[found.rows]
    assert np.allclose(found.cost, (reliability[found.rows] * flipped).sum(axis=1), atol=1e-4)
    assert (found.runner_up >= found.cost).all()


def test_osd_always_returns_codewords() -> None:
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, (300, 112)).astype(np.uint8)  # noise, not frames
    reliability = rng.uniform(0.0, 1.0, bits.shape).astype(np.float32)
    residual = frame_residuals(np.packbits(bits, axis=1), 112)
    found = osd_decode(bits, reliability, residual, 112)
    assert found.rows.size >= 295  # only rank-deficient rows may be left out
    assert (frame_residuals(np.packbits(found.bits, axis=1), 112) == 0).all()
    short = osd_decode(bits, reliability, frame_residuals(np.packbits(bits, axis=1), 56), 56)
    assert (frame_residuals(np.packbits(short.bits, axis=1), 56) == 0).all()
    assert (short.bits[:, 56:] == bits[short.rows, 56:]).all()  # past the frame: untouched


def test_osd_candidates_are_distinct_codewords_cheapest_first() -> None:
    _, received, reliability, residual = frames_with_errors(50, 4, seed=8)
    found = osd_candidates(received, reliability, residual, 112, count=6)
    assert found.bits.shape == (found.rows.size, 6, 112)
    assert (np.diff(found.cost, axis=1) >= 0).all()
    for row in range(found.rows.size):
        assert len({found.bits[row, k].tobytes() for k in range(6)}) == 6
    packed = np.packbits(found.bits.reshape(-1, 112), axis=1)
    assert (frame_residuals(packed, 112) == 0).all()


def test_osd_flips_the_least_reliable_bits_just_outside_the_lrb_set() -> None:
    # Two of the six errors rank 31st and 35th in reliability: past the 24 LRB
    # positions, but among the first of the other flip candidates.
    rng = np.random.default_rng(11)
    truth = np.array(
        [np.unpackbits(np.frombuffer(random_df17(rng, 0x4D2023), np.uint8)) for _ in range(200)]
    )
    received = truth.copy()
    reliability = np.empty(truth.shape, np.float32)
    for row in range(truth.shape[0]):
        by_rank = rng.permutation(112)
        reliability[row, by_rank] = 0.01 * np.arange(1, 113)
        received[row, by_rank[[0, 3, 7, 12, 30, 34]]] ^= 1
    residual = frame_residuals(np.packbits(received, axis=1), 112)
    found = osd_decode(received, reliability, residual, 112)
    # The truth is always a candidate: nothing the OSD returns costs more.
    truth_cost = (reliability * (truth != received)).sum(axis=1)[found.rows]
    assert (found.cost <= truth_cost + 1e-5).all()
    right = (found.bits == truth[found.rows]).all(axis=1)
    assert right.mean() >= 0.8  # the rest: another codeword even cheaper
