"""Block walk, CRC-16/CCITT-FALSE and the status/GPS block fields."""

from __future__ import annotations

import pytest

from hardware.rs41 import blocks as blk
from hardware.rs41.ecc import encode_parity
from hardware.rs41.errors import BlockCrcError, FieldError
from hardware.rs41.frame import decode_plain_frame


def _flip_bit(frame: bytes, pos: int, bit: int = 0) -> bytes:
    """Flip one bit and re-encode the parity, so only the block CRC can notice."""
    out = bytearray(frame)
    out[pos] ^= 1 << bit
    return encode_parity(bytes(out))


def test_crc16_is_ccitt_false() -> None:
    assert blk.crc16(b"123456789") == 0x29B1
    assert blk.crc16(b"") == 0xFFFF


def test_a_standard_frame_walks_to_its_end_with_every_crc_good(ref_frames: list[bytes]) -> None:
    walked = blk.walk_blocks(ref_frames[0])
    assert [b.block_id for b in walked] == [0x79, 0x7A, 0x7C, 0x7D, 0x7B, 0x76]
    assert [b.offset for b in walked] == [0x39, 0x65, 0x93, 0xB5, 0x112, 0x12B]
    assert all(b.crc_ok for b in walked)
    last = walked[-1]
    assert last.offset + 2 + len(last.data) + 2 == 320


def test_an_extended_frame_carries_xdata(examples: list[bytes]) -> None:
    walked = blk.walk_blocks(examples[3])
    assert [b.block_id for b in walked] == [0x79, 0x7A, 0x7C, 0x7D, 0x7B, 0x7E, 0x76]
    assert all(b.crc_ok for b in walked)


def test_a_flipped_bit_fails_only_its_blocks_crc_and_is_counted(ref_frames: list[bytes]) -> None:
    # 0x7A PTU data starts at 0x67.
    bad = _flip_bit(ref_frames[0], 0x67 + 5, 3)
    walked = blk.walk_blocks(bad)
    assert [b.crc_ok for b in walked] == [True, False, True, True, True, True]
    frame = decode_plain_frame(bad)
    assert frame.rs_errors == (0, 0)
    assert frame.crc_ok[blk.BLOCK_PTU] is False
    assert frame.crc_failures == 1
    assert frame.lat is not None


def test_a_failed_position_crc_leaves_the_position_empty(ref_frames: list[bytes]) -> None:
    frame = decode_plain_frame(_flip_bit(ref_frames[0], 0x114 + 2))
    assert frame.crc_ok[blk.BLOCK_GPS_POS] is False
    assert frame.lat is None and frame.alt is None and frame.vel_h_mps is None
    assert frame.time_utc is not None
    assert frame.crc_failures == 1


def test_a_failed_status_crc_rejects_the_frame(ref_frames: list[bytes]) -> None:
    with pytest.raises(BlockCrcError) as info:
        decode_plain_frame(_flip_bit(ref_frames[0], 0x3B + 4))
    assert info.value.block_id == 0x79
    assert info.value.reason == "crc"


def test_status_fields(ref_frames: list[bytes]) -> None:
    status = blk.parse_status(blk.walk_blocks(ref_frames[0])[0].data)
    assert status == blk.Status(frame_number=3172, serial="L1830070", batt_v=2.7)


def test_an_unprintable_serial_is_a_field_error(ref_frames: list[bytes]) -> None:
    data = bytearray(blk.walk_blocks(ref_frames[0])[0].data)
    data[4] = 0x07
    with pytest.raises(FieldError) as info:
        blk.parse_status(bytes(data))
    assert info.value.field == "serial"


def test_gps_time_and_position_fields(examples: list[bytes]) -> None:
    by_id = {b.block_id: b for b in blk.walk_blocks(examples[0])}
    assert blk.parse_gps_time(by_id[0x7C].data) == blk.GpsTime(week=1800, tow_ms=131874000)
    pos = blk.parse_gps_position(by_id[0x7B].data)
    assert pos == blk.GpsPosition(4279094.3, 1235968.62, 4589580.49, -20.8, -20.15, -25.59, 8)
