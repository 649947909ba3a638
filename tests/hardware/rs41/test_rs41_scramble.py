"""Descrambling: the published mask, its LFSR structure, and the header."""

from __future__ import annotations

from hardware.rs41.scramble import HEADER_ON_AIR, HEADER_PLAIN, MASK, descramble, scramble


def test_mask_is_the_output_of_its_lfsr() -> None:
    m = MASK
    assert len(m) == 64
    for i in range(8, 56):
        assert m[(i + 16) % 64] == m[i] ^ m[i + 2] ^ m[i + 4] ^ m[i + 6], i


def test_on_air_header_descrambles_to_the_frame_start_of_every_reference_frame(
    ref_frames: list[bytes],
) -> None:
    assert bytes.fromhex("8635f44093df1a60") == HEADER_PLAIN
    assert all(f[:8] == HEADER_PLAIN for f in ref_frames)
    assert descramble(HEADER_ON_AIR) == HEADER_PLAIN


def test_scramble_and_descramble_are_inverse_over_frames_longer_than_the_mask(
    examples: list[bytes],
) -> None:
    frame = examples[3]
    assert len(frame) == 518
    on_air = scramble(frame)
    assert on_air != frame
    assert on_air[:8] == HEADER_ON_AIR
    assert on_air[64 + 3] == frame[64 + 3] ^ MASK[3]
    assert descramble(on_air) == frame
