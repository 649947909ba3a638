"""Reed-Solomon RS(255,231) over both interleaved codewords."""

from __future__ import annotations

import random

import pytest

from hardware.rs41.ecc import correct_frame, encode_parity, split_codewords, syndromes
from hardware.rs41.errors import UncorrectableError


def _corrupt(frame: bytes, codeword: int, n_errors: int, seed: int) -> bytes:
    """Flip ``n_errors`` distinct bytes of one codeword (parity or message part)."""
    rng = random.Random(seed)
    par = range(8 + 24 * (codeword - 1), 8 + 24 * codeword)
    msg = range(56 + (codeword - 1), len(frame), 2)
    positions = rng.sample([*par, *msg], n_errors)
    out = bytearray(frame)
    for p in positions:
        out[p] ^= rng.randrange(1, 256)
    return bytes(out)


def test_reference_frames_are_codewords(ref_frames: list[bytes]) -> None:
    for frame in ref_frames:
        cw1, cw2 = split_codewords(frame)
        assert len(cw1) == len(cw2) == 24 + 132
        assert not syndromes(cw1).any()
        assert not syndromes(cw2).any()
        assert correct_frame(frame).errors == (0, 0)


def test_two_parity_errors_in_codeword_2_are_corrected_to_the_published_frame(
    examples: list[bytes],
) -> None:
    bad, good = examples[1], examples[2]
    assert syndromes(split_codewords(bad)[1]).any()
    result = correct_frame(bad)
    assert result.errors == (0, 2)
    assert result.frame == good


def test_parity_recomputed_from_the_message_matches_the_transmitted_parity(
    ref_frames: list[bytes], examples: list[bytes]
) -> None:
    for frame in (ref_frames[0], examples[0], examples[3]):
        blank = frame[:8] + bytes(48) + frame[56:]
        assert encode_parity(blank) == frame


@pytest.mark.parametrize("length_index", [0, 3])
@pytest.mark.parametrize("seed", range(4))
def test_up_to_twelve_errors_per_codeword_are_corrected(
    examples: list[bytes], length_index: int, seed: int
) -> None:
    frame = examples[length_index]
    bad = _corrupt(_corrupt(frame, 1, 12, seed), 2, 7, seed + 100)
    result = correct_frame(bad)
    assert result.frame == frame
    assert result.errors == (12, 7)


@pytest.mark.parametrize("seed", range(6))
def test_more_than_twelve_errors_in_a_codeword_is_uncorrectable(
    ref_frames: list[bytes], seed: int
) -> None:
    bad = _corrupt(ref_frames[seed], 2, 13 + seed, seed)
    with pytest.raises(UncorrectableError) as info:
        correct_frame(bad)
    assert info.value.codeword == 2
    assert info.value.reason == "rs_uncorrectable"


def test_erasures_let_a_codeword_repair_more_than_twelve_bytes(ref_frames: list[bytes]) -> None:
    frame = ref_frames[7]
    bad = bytearray(frame)
    erased = [56 + 2 * i for i in range(18)]  # 18 bytes of codeword 1's message
    for p in erased:
        bad[p] ^= 0x3C
    with pytest.raises(UncorrectableError):
        correct_frame(bytes(bad))
    result = correct_frame(bytes(bad), [*erased, 9, 57])  # two erased bytes were fine
    assert result.frame == frame
    assert result.errors == (18, 0)
