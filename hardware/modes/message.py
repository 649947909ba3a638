"""Decode a checked Mode S frame into one typed, frozen record.

Downlink formats and the fields read here (bit 0 = first bit on air)::

    DF0   0..4 DF | 5 VS | 6 CC | 8..10 SL | 13..16 RI | 19..31 AC13 | 32..55 AP
    DF4   0..4 DF | 5..7 FS | 8..12 DR | 13..18 UM | 19..31 AC13 | 32..55 AP
    DF5   0..4 DF | 5..7 FS | 8..12 DR | 13..18 UM | 19..31 ID13 | 32..55 AP
    DF11  0..4 DF | 5..7 CA | 8..31 AA | 32..55 PI (CRC ^ IID)
    DF16  as DF0, then 32..87 MV (ACAS) | 88..111 AP
    DF17  0..4 DF | 5..7 CA | 8..31 AA | 32..87 ME | 88..111 PI
    DF18  0..4 DF | 5..7 CF | 8..31 AA | 32..87 ME | 88..111 PI
    DF20  as DF4, then 32..87 MB (Comm-B) | 88..111 AP
    DF21  as DF5, then 32..87 MB | 88..111 AP

- VS (DF0/16) 1 = on the ground. FS (DF4/5/20/21): 0 airborne, 1 ground, 2 alert
  airborne, 3 alert ground, 4 alert + SPI, 5 SPI, 6..7 reserved. CA (DF11/17): 4
  ground, 5 airborne, others unknown.
- ME by type code: 1..4 identification (ident.py), 5..8 surface position, 9..18 and
  20..22 airborne position (position.py), 19 velocity (velocity.py), 28/29/31 status
  (status.py). DF18 carries an ADS-B ME for CF 0, 1 (non-ICAO address), 2, 5 (TIS-B
  fine, 5 non-ICAO) and 6 (ADS-R); CF 3, 4 and 7 are not decoded. CF 2 and 6 say in
  their IMF bit, where the type code has one, whether the AA is an ICAO address
  (`non_icao`, `address`; see address.py).
- MB of DF20/21 is returned raw (`mb`); BDS inference is out of scope.

Units: each quantity comes in the unit of the wire (altitude_ft, speed_kt, vrate_fpm)
and as an SI property (alt_m, speed_mps, vrate_mps); `as_dict` gives both.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from hardware.modes.address import track_address
from hardware.modes.altitude import decode_ac13
from hardware.modes.cpr import CprFrame
from hardware.modes.crc import residual
from hardware.modes.errors import (
    DecodeError,
    FrameLengthError,
    UnsupportedFormatError,
    UnsupportedTypeCodeError,
)
from hardware.modes.frame_check import CheckedFrame, downlink_format
from hardware.modes.ident import decode_identification
from hardware.modes.position import decode_airborne_position, decode_surface_position
from hardware.modes.squawk import decode_id13
from hardware.modes.status import (
    TargetState,
    decode_emergency_status,
    decode_operational_status,
    decode_target_state,
)
from hardware.modes.units import fpm_to_mps, ft_to_m, kt_to_mps
from hardware.modes.velocity import decode_velocity

__all__ = ["DecodedMessage", "decode", "decode_checked"]

_SHORT = frozenset({0, 4, 5, 11})
_LONG = frozenset({16, 17, 18, 20, 21})
_DF18_ADSB_CF = frozenset({0, 1, 2, 5, 6})


class DecodedMessage(NamedTuple):
    """Everything decoded from one frame; fields a format does not carry are None.

    A named tuple rather than a frozen dataclass (immutable either way): with 28
    fields the tuple is built in a fifth of the time (~1.3 instead of ~6.6 us, which
    was half of `decode`), and a busy receiver decodes ~2000 messages a second.
    Equality compares every field, `error` (an exception instance) too.
    """

    df: int
    icao: int  # AA, or the address recovered from AP
    msg: bytes
    tc: int | None = None  # ADS-B type code (DF17/18)
    non_icao: bool = False  # DF18 with a non-ICAO (anonymous/TIS-B track) address
    on_ground: bool | None = None
    alert: bool | None = None
    spi: bool | None = None
    altitude_ft: int | None = None  # barometric
    gnss_height_m: float | None = None  # above the WGS84 ellipsoid
    squawk: str | None = None
    callsign: str | None = None
    category: str | None = None
    cpr: CprFrame | None = None
    speed_kt: float | None = None  # ground speed
    track_deg: float | None = None
    airspeed_kt: float | None = None
    airspeed_type: str | None = None
    heading_deg: float | None = None
    vrate_fpm: int | None = None
    vrate_source: str | None = None
    gnss_minus_baro_ft: int | None = None
    emergency: str | None = None
    adsb_version: int | None = None
    nac_p: int | None = None
    target_state: TargetState | None = None
    mb: bytes | None = None  # raw Comm-B of DF20/21
    #: why part of the frame was not decoded (unsupported TC, illegal field): the
    #: message is still returned with what could be read.
    error: DecodeError | None = None

    @property
    def icao_hex(self) -> str:
        return f"{self.icao:06X}"

    @property
    def address(self) -> int:
        """The aircraft-table key: `icao`, with address.NON_ICAO set when `non_icao`."""
        return track_address(self.icao, self.non_icao)

    @property
    def alt_m(self) -> float | None:
        """Barometric altitude in metres."""
        return ft_to_m(self.altitude_ft)

    @property
    def speed_mps(self) -> float | None:
        return kt_to_mps(self.speed_kt)

    @property
    def airspeed_mps(self) -> float | None:
        return kt_to_mps(self.airspeed_kt)

    @property
    def vrate_mps(self) -> float | None:
        return fpm_to_mps(self.vrate_fpm)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the fields that are set, plus their SI conversions."""
        out: dict[str, Any] = {"df": self.df, "icao": self.icao_hex, "msg": self.msg.hex().upper()}
        for name in self._fields:
            if name in ("df", "icao", "msg", "error", "non_icao"):
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, CprFrame):
                value = {
                    "odd": value.odd,
                    "lat_cpr": value.lat_cpr,
                    "lon_cpr": value.lon_cpr,
                    "surface": value.surface,
                }
            elif isinstance(value, TargetState):
                value = {k: getattr(value, k) for k in value.__dataclass_fields__}
            elif isinstance(value, bytes):
                value = value.hex().upper()
            out[name] = value
        if self.non_icao:
            out["non_icao"] = True
        for name in ("alt_m", "speed_mps", "airspeed_mps", "vrate_mps"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.error is not None:
            out["error"] = type(self.error).__name__
        return out


def _flight_status(fs: int) -> dict[str, Any]:
    return {
        "on_ground": {0: False, 1: True, 2: False, 3: True}.get(fs),
        "alert": fs in (2, 3, 4) if fs < 6 else None,
        "spi": fs in (4, 5) if fs < 6 else None,
    }


def _ca_on_ground(ca: int) -> bool | None:
    return {4: True, 5: False}.get(ca)


# ME bit (1 = the first ME bit, as DO-260B counts) of the IMF flag of fine TIS-B and
# ADS-R messages, by type code; the flag's position depends on the format, and
# identification messages have none.
_IMF_BIT = {
    **dict.fromkeys(range(5, 9), 21),  # surface position
    **dict.fromkeys([*range(9, 19), *range(20, 23)], 8),  # airborne position
    19: 9,  # airborne velocity
    29: 51,  # target state and status
    31: 56,  # operational status
}


def _imf(me: int) -> bool:
    """Whether a CF 2 / CF 6 ME says its AA is not an ICAO address (IMF = 1)."""
    tc = me >> 51
    bit = _IMF_BIT.get(tc)
    if tc == 28 and (me >> 48) & 0x7 == 1:  # emergency/priority status
        bit = 56
    return bit is not None and bool((me >> (56 - bit)) & 1)


def _decode_me(me: int) -> dict[str, Any]:
    """Fields of a 56-bit ADS-B ME; raises DecodeError subclasses for what it cannot read."""
    tc = me >> 51
    if 1 <= tc <= 4:
        ident = decode_identification(me)
        return {"callsign": ident.callsign, "category": ident.category}
    if 5 <= tc <= 8:
        surf = decode_surface_position(me)
        return {
            "cpr": surf.cpr,
            "on_ground": True,
            "speed_kt": surf.speed_kt,
            "track_deg": surf.track_deg,
        }
    if 9 <= tc <= 18 or 20 <= tc <= 22:
        pos = decode_airborne_position(me)
        gnss = None if pos.gnss_height_m is None else float(pos.gnss_height_m)
        return {
            "cpr": pos.cpr,
            "on_ground": False,
            "altitude_ft": pos.altitude_ft,
            "gnss_height_m": gnss,
        }
    if tc == 19:
        vel = decode_velocity(me)
        return {
            "on_ground": False,
            "speed_kt": vel.speed_kt,
            "track_deg": vel.track_deg,
            "airspeed_kt": vel.airspeed_kt,
            "airspeed_type": vel.airspeed_type,
            "heading_deg": vel.heading_deg,
            "vrate_fpm": vel.vrate_fpm,
            "vrate_source": vel.vrate_source,
            "gnss_minus_baro_ft": vel.gnss_minus_baro_ft,
        }
    if tc == 28:
        status = decode_emergency_status(me)
        return {"emergency": status.emergency, "squawk": status.squawk}
    if tc == 29:
        return {"target_state": decode_target_state(me)}
    if tc == 31:
        ops = decode_operational_status(me)
        return {"adsb_version": ops.version, "nac_p": ops.nac_p}
    raise UnsupportedTypeCodeError(tc)


_MEMO_FRAMES = 4096
"""Frames `decode` remembers: a transponder repeats many replies bit for bit (all-call
replies, identification, velocity while it holds course; on modes1.bin 171 distinct
frames among 349), and a repeat is then a dictionary lookup instead of ~10 us. About
500 bytes a frame: ~2 MB when full."""


def decode(msg: bytes, icao: int | None = None) -> DecodedMessage:
    """Decode a 7- or 14-byte Mode S frame that has passed `check_frame`.

    `icao` overrides the address (pass CheckedFrame.icao); by default it is the AA
    field, or the CRC residual for address/parity formats. Raises FrameLengthError and
    UnsupportedFormatError for frames no decoder applies to; a field that cannot be
    read inside a supported frame is left None and the reason put in `error`.

    A pure function of its arguments, memoized (`_MEMO_FRAMES`): the result is
    immutable, so repeats share one.
    """
    return _decode(bytes(msg), icao)


@lru_cache(maxsize=_MEMO_FRAMES)
def _decode(msg: bytes, icao: int | None) -> DecodedMessage:
    """`decode` of exactly `msg` (bytes)."""
    if len(msg) not in (7, 14):
        raise FrameLengthError(len(msg))
    df = downlink_format(msg[0])
    if df not in _SHORT and df not in _LONG:
        raise UnsupportedFormatError(df)
    expected = 7 if df in _SHORT else 14
    if len(msg) != expected:
        raise FrameLengthError(len(msg), expected)
    value = int.from_bytes(msg, "big")
    n_bits = len(msg) * 8

    def bits(start: int, length: int) -> int:
        return (value >> (n_bits - start - length)) & ((1 << length) - 1)

    fields: dict[str, Any] = {}
    error: DecodeError | None = None
    if icao is None:
        icao = bits(8, 24) if df in (11, 17, 18) else residual(msg)

    try:
        if df in (0, 16):
            fields["on_ground"] = bool(bits(5, 1))
            fields["altitude_ft"] = decode_ac13(bits(19, 13))
        elif df in (4, 20):
            fields.update(_flight_status(bits(5, 3)))
            fields["altitude_ft"] = decode_ac13(bits(19, 13))
        elif df in (5, 21):
            fields.update(_flight_status(bits(5, 3)))
            fields["squawk"] = decode_id13(bits(19, 13))
        elif df == 11:
            fields["on_ground"] = _ca_on_ground(bits(5, 3))
        if df in (20, 21):
            fields["mb"] = msg[4:11]
        if df == 17 or (df == 18 and bits(5, 3) in _DF18_ADSB_CF):
            me = bits(32, 56)
            if df == 17:
                fields["on_ground"] = _ca_on_ground(bits(5, 3))
            else:
                cf = bits(5, 3)
                fields["non_icao"] = cf in (1, 5) or (cf in (2, 6) and _imf(me))
            fields["tc"] = me >> 51
            fields.update({k: v for k, v in _decode_me(me).items() if v is not None})
    except DecodeError as exc:
        # Without its traceback: a remembered result must not keep this frame alive.
        error = exc.with_traceback(None)
    return DecodedMessage(df=df, icao=icao, msg=msg, error=error, **fields)


def decode_checked(frame: CheckedFrame) -> DecodedMessage:
    """Decode a frame returned by `check_frame`, keeping the address it established."""
    return decode(frame.msg, frame.icao)
