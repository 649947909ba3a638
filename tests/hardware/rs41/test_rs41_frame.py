"""Whole-frame decoding of the reference frames against rs41mod's JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rs41_signal import assert_matches_reference

from hardware.rs41.errors import FrameLengthError, UncorrectableError
from hardware.rs41.frame import decode_frame, decode_plain_frame
from hardware.rs41.scramble import scramble


def test_reference_frames_decode_to_rs41mod_fields(
    ref_frames: list[bytes], ref_json: list[dict[str, Any]]
) -> None:
    assert len(ref_frames) == len(ref_json) == 60
    for plain, ref in zip(ref_frames, ref_json, strict=True):
        assert_matches_reference(decode_plain_frame(plain), ref)


def test_k1930293_position_and_time(examples: list[bytes]) -> None:
    frame = decode_plain_frame(examples[0])
    assert (frame.serial, frame.frame) == ("K1930293", 5910)
    assert (frame.gps_week, frame.gps_tow_ms) == (1800, 131874000)
    assert frame.lat == pytest.approx(46.0503, abs=1e-4)
    assert frame.lon == pytest.approx(16.1108, abs=1e-4)
    assert frame.alt == pytest.approx(28410, abs=1)
    assert frame.time_utc == datetime(2014, 7, 7, 12, 37, 38, tzinfo=UTC)  # GPS - 16 s


def test_the_two_error_frame_decodes_as_the_corrected_frame(examples: list[bytes]) -> None:
    frame = decode_plain_frame(examples[1])
    assert frame.rs_errors == (0, 2)
    assert frame.plain == examples[2]
    assert frame.extended
    assert frame.xdata is not None and frame.xdata[1:9] == b"40010001"
    assert (frame.serial, frame.frame) == ("K4020244", 5014)


def test_on_air_bytes_decode_like_the_plain_frame(examples: list[bytes]) -> None:
    frame = decode_frame(scramble(examples[3]))
    assert frame.plain == examples[3]
    assert (frame.serial, frame.frame, frame.sats) == ("K4020244", 5000, 9)


def test_header_bit_errors_do_not_reach_the_decoded_frame(ref_frames: list[bytes]) -> None:
    on_air = bytearray(scramble(ref_frames[5]))
    on_air[2] ^= 0x21
    assert decode_frame(bytes(on_air)).plain == ref_frames[5]


def test_uncorrectable_frame_raises_with_reason(ref_frames: list[bytes]) -> None:
    bad = bytearray(ref_frames[0])
    for i in range(20):
        bad[56 + 2 * i] ^= 0x5A
    with pytest.raises(UncorrectableError) as info:
        decode_plain_frame(bytes(bad))
    assert info.value.reason == "rs_uncorrectable"
    assert info.value.codeword == 1


def test_wrong_length_is_a_length_error(ref_frames: list[bytes]) -> None:
    with pytest.raises(FrameLengthError) as info:
        decode_frame(ref_frames[0][:300])
    assert info.value.n_bytes == 300
