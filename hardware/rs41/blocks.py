"""RS41 frame blocks: walk, CRC-16 and the fields of the blocks decoded here.

After the header (8 bytes), the parity (48) and the frame type byte at 0x38
(0x0F: 320-byte frame, 0xF0: 518-byte frame with aux data) the frame is a chain of
blocks starting at offset 0x39::

    +----+-----+------------------+-----------+
    | ID | LEN | data (LEN bytes) | CRC16 LE  |   CRC-16/CCITT-FALSE over data only
    +----+-----+------------------+-----------+   (poly 0x1021, init 0xFFFF)

Blocks decoded here (offsets within the data, little-endian integers)::

    0x79 status (40)   0 u16 frame number | 2 char[8] serial | 10 u8 battery, 0.1 V
    0x7C GPS time (30) 0 u16 GPS week     | 2 u32 time of week, ms | 6.. sat info
    0x7B GPS pos (21)  0 i32 ECEF x, y, z, cm | 12 i16 vx, vy, vz, cm/s | 18 u8 sats
    0x7A PTU (42)      raw measurements, kept raw (needs the calibration subframes)
    0x7E XDATA         raw, kept raw
    0x76 empty         padding to the frame end

Other block ids are returned raw and otherwise skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hardware.rs41.errors import FieldError, FrameLengthError

BLOCKS_OFFSET = 0x39
FRAME_TYPE_OFFSET = 0x38

BLOCK_STATUS = 0x79
BLOCK_PTU = 0x7A
BLOCK_GPS_POS = 0x7B
BLOCK_GPS_TIME = 0x7C
BLOCK_GPS_RAW = 0x7D
BLOCK_XDATA = 0x7E
BLOCK_EMPTY = 0x76


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a frame: its id, the frame offset of its id byte, data, CRC verdict."""

    block_id: int
    offset: int
    data: bytes
    crc_ok: bool


@dataclass(frozen=True, slots=True)
class Status:
    """The 0x79 status block: frame counter, serial, battery voltage (V)."""

    frame_number: int
    serial: str
    batt_v: float


@dataclass(frozen=True, slots=True)
class GpsTime:
    """The 0x7C block: GPS week and time of week (ms)."""

    week: int
    tow_ms: int


@dataclass(frozen=True, slots=True)
class GpsPosition:
    """The 0x7B block: ECEF position (m), ECEF velocity (m/s), satellites used."""

    x_m: float
    y_m: float
    z_m: float
    vx_mps: float
    vy_mps: float
    vz_mps: float
    sats: int


def _crc_table_entry(byte: int) -> int:
    # The register after one byte enters a zero register, MSB first.
    crc = byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


_TABLE = tuple(_crc_table_entry(b) for b in range(256))


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


def walk_blocks(frame: bytes) -> list[Block]:
    """The blocks of a plain frame, in order, each with its CRC checked.

    The walk stops at the first block whose length runs past the frame end (a
    corrupted length byte cannot be told from the end of the chain).
    """
    if len(frame) <= BLOCKS_OFFSET + 4:
        raise FrameLengthError(len(frame))
    blocks: list[Block] = []
    pos = BLOCKS_OFFSET
    while pos + 4 <= len(frame):
        block_id, length = frame[pos], frame[pos + 1]
        end = pos + 2 + length
        if end + 2 > len(frame):
            break
        data = frame[pos + 2 : end]
        crc_rx = frame[end] | (frame[end + 1] << 8)
        blocks.append(Block(block_id, pos, data, crc16(data) == crc_rx))
        pos = end + 2
    return blocks


def parse_status(data: bytes) -> Status:
    """Decode a 0x79 status block's data (frame number, serial, battery)."""
    if len(data) < 11:
        raise FieldError("status_len", len(data))
    frame_number = data[0] | (data[1] << 8)
    serial_raw = data[2:10]
    if any(c < 0x20 or c > 0x7E for c in serial_raw):
        raise FieldError("serial", serial_raw)
    return Status(frame_number, serial_raw.decode("ascii"), data[10] / 10.0)


def parse_gps_time(data: bytes) -> GpsTime:
    """Decode a 0x7C block's data (GPS week, time of week in ms)."""
    if len(data) < 6:
        raise FieldError("gps_time_len", len(data))
    week, tow_ms = struct.unpack_from("<HI", data, 0)
    if tow_ms >= 7 * 86400 * 1000:
        raise FieldError("tow_ms", tow_ms)
    return GpsTime(week, tow_ms)


def parse_gps_position(data: bytes) -> GpsPosition:
    """Decode a 0x7B block's data (ECEF cm and cm/s to m and m/s, satellites)."""
    if len(data) < 19:
        raise FieldError("gps_pos_len", len(data))
    x, y, z, vx, vy, vz, sats = struct.unpack_from("<iiihhhB", data, 0)
    return GpsPosition(x / 100, y / 100, z / 100, vx / 100, vy / 100, vz / 100, sats)
