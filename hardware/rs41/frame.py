"""One RS41 frame, decoded: descramble, Reed-Solomon, blocks, fields.

    on-air bytes --descramble--> plain frame --correct_frame--> corrected frame
        --walk_blocks--> 0x79 status, 0x7C GPS time, 0x7B ECEF pos/vel --> Rs41Frame

The status block (serial, frame number) is required: without it the frame has no
identity and `decode_plain_frame` raises. GPS time and position are optional: a
block that is absent or fails its CRC leaves its fields ``None`` and shows in
``crc_ok``. Times are UTC (GPS - leap seconds); ``alt_m`` is WGS84 ellipsoidal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hardware.rs41 import blocks as blk
from hardware.rs41.ecc import FRAME_LEN_EXTENDED, FRAME_LEN_STANDARD, correct_frame
from hardware.rs41.errors import BlockCrcError, FrameLengthError, MissingBlockError
from hardware.rs41.gps import ecef_to_geodetic, ecef_velocity_to_local, gps_to_utc
from hardware.rs41.scramble import HEADER_PLAIN, descramble


@dataclass(frozen=True, slots=True)
class Rs41Frame:
    """A decoded RS41 frame. Positions WGS84 (deg, ellipsoidal m), speeds m/s."""

    serial: str
    frame: int
    batt_v: float
    time_utc: datetime | None
    gps_week: int | None
    gps_tow_ms: int | None
    lat: float | None
    lon: float | None
    alt: float | None
    vel_h_mps: float | None
    heading_deg: float | None
    vel_v_mps: float | None
    sats: int | None
    rs_errors: tuple[int, int]
    crc_ok: dict[int, bool]
    ptu_raw: bytes | None = None
    xdata: bytes | None = None
    plain: bytes = field(default=b"", repr=False)
    sample_offset: int | None = None

    @property
    def crc_failures(self) -> int:
        """How many blocks of this frame failed their CRC."""
        return sum(1 for ok in self.crc_ok.values() if not ok)

    @property
    def extended(self) -> bool:
        """True for a 518-byte frame (with aux data)."""
        return len(self.plain) == FRAME_LEN_EXTENDED


@dataclass(frozen=True, slots=True)
class FrameFailure:
    """A frame that was found on air but could not be decoded, and why.

    ``reason`` is the `DecodeError.reason` ("rs_uncorrectable", "crc", ...).
    """

    reason: str
    detail: str
    sample_offset: int | None = None
    raw: bytes = field(default=b"", repr=False)


def decode_frame(raw: bytes, erasures: Sequence[int] = ()) -> Rs41Frame:
    """Decode an on-air (scrambled) 320- or 518-byte frame. Raises `DecodeError`.

    ``erasures``: byte positions the demodulator found unreliable (see
    `ecc.correct_frame`).

    The 8 header bytes are set to their constant: Reed-Solomon does not cover them,
    and the demodulator found the frame by matching them (allowing bit errors).
    """
    if len(raw) not in (FRAME_LEN_STANDARD, FRAME_LEN_EXTENDED):
        raise FrameLengthError(len(raw))
    plain = descramble(raw)
    return decode_plain_frame(HEADER_PLAIN + plain[len(HEADER_PLAIN) :], erasures)


def decode_plain_frame(plain: bytes, erasures: Sequence[int] = ()) -> Rs41Frame:
    """Decode a descrambled 320- or 518-byte frame. Raises `DecodeError`."""
    if len(plain) not in (FRAME_LEN_STANDARD, FRAME_LEN_EXTENDED):
        raise FrameLengthError(len(plain))
    ecc = correct_frame(plain, erasures)
    found = blk.walk_blocks(ecc.frame)
    first: dict[int, blk.Block] = {}
    for block in found:
        first.setdefault(block.block_id, block)
    crc_ok = {b.block_id: b.crc_ok for b in found}
    # A repeated id counts as failed if any copy failed.
    for b in found:
        crc_ok[b.block_id] = crc_ok[b.block_id] and b.crc_ok

    status_block = first.get(blk.BLOCK_STATUS)
    if status_block is None:
        raise MissingBlockError(blk.BLOCK_STATUS)
    if not status_block.crc_ok:
        raise BlockCrcError(blk.BLOCK_STATUS)
    status = blk.parse_status(status_block.data)

    week = tow_ms = None
    time_utc = None
    time_block = first.get(blk.BLOCK_GPS_TIME)
    if time_block is not None and time_block.crc_ok:
        gps_time = blk.parse_gps_time(time_block.data)
        week, tow_ms = gps_time.week, gps_time.tow_ms
        time_utc = gps_to_utc(week, tow_ms)

    lat = lon = alt = vel_h = heading = vel_v = None
    sats = None
    pos_block = first.get(blk.BLOCK_GPS_POS)
    if pos_block is not None and pos_block.crc_ok:
        pos = blk.parse_gps_position(pos_block.data)
        sats = pos.sats
        # All zero means no fix yet.
        if (pos.x_m, pos.y_m, pos.z_m) != (0.0, 0.0, 0.0):
            geo = ecef_to_geodetic(pos.x_m, pos.y_m, pos.z_m)
            lat, lon, alt = geo.lat_deg, geo.lon_deg, geo.alt_m
            vel = ecef_velocity_to_local(lat, lon, pos.vx_mps, pos.vy_mps, pos.vz_mps)
            vel_h, heading, vel_v = vel.vel_h_mps, vel.heading_deg, vel.vel_v_mps

    ptu = first.get(blk.BLOCK_PTU)
    xdata = first.get(blk.BLOCK_XDATA)
    return Rs41Frame(
        serial=status.serial,
        frame=status.frame_number,
        batt_v=status.batt_v,
        time_utc=time_utc,
        gps_week=week,
        gps_tow_ms=tow_ms,
        lat=lat,
        lon=lon,
        alt=alt,
        vel_h_mps=vel_h,
        heading_deg=heading,
        vel_v_mps=vel_v,
        sats=sats,
        rs_errors=ecc.errors,
        crc_ok=crc_ok,
        ptu_raw=ptu.data if ptu is not None else None,
        xdata=xdata.data if xdata is not None and xdata.crc_ok else None,
        plain=ecc.frame,
    )
