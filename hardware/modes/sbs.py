"""SBS-1 BaseStation CSV (dump1090/readsb TCP port 30003): parser and formatter.

One message per line, 22 comma-separated fields (empty = not in this message)::

     0 message type      MSG (others: SEL, ID, AIR, STA, CLK carry no aircraft data)
     1 transmission 1..8 1 ES identification      callsign
                         2 ES surface position    alt, speed, track, lat, lon, ground
                         3 ES airborne position   alt, lat, lon, alert, emerg, spi, ground
                         4 ES airborne velocity   speed, track, vertical rate
                         5 surveillance altitude  alt, alert, spi, ground
                         6 surveillance ID        alt, squawk, alert, emerg, spi, ground
                         7 air-to-air (ACAS)      alt, ground
                         8 all-call reply         ground
     2 session id   3 aircraft id   4 hex ident (ICAO, 6 hex digits)   5 flight id
     6 date generated  YYYY/MM/DD     7 time generated  HH:MM:SS.sss
     8 date logged                    9 time logged
    10 callsign   11 altitude ft (barometric)   12 ground speed kt   13 track deg
    14 latitude deg   15 longitude deg   16 vertical rate ft/min   17 squawk (4 octal)
    18 alert (squawk changed)   19 emergency   20 SPI   21 on ground
       flags: -1 (or 1) true, 0 false

The decoder upstream has already done CPR: positions arrive as degrees. Times are
local to the sending program (dump1090 writes local time; readsb can write UTC): the
caller passes the zone. Malformed lines raise `SbsError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from hardware.modes.address import address_hex, track_address
from hardware.modes.errors import DecodeError

__all__ = ["SbsError", "SbsMessage", "format_sbs_line", "parse_sbs_line"]

N_FIELDS = 22


class SbsError(DecodeError):
    """A malformed SBS line; `field` names the offending field."""

    def __init__(self, field: str, value: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"SBS {field}={value[:40]!r}: invalid")


@dataclass(frozen=True, slots=True)
class SbsMessage:
    """The aircraft fields of one MSG line (None where the line leaves them empty)."""

    transmission: int
    icao: int  # address.NON_ICAO set for a "~" (non-ICAO) hex ident
    t_ms: int | None  # date/time generated, epoch ms
    callsign: str | None = None
    altitude_ft: int | None = None
    speed_kt: float | None = None
    track_deg: float | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    vrate_fpm: int | None = None
    squawk: str | None = None
    alert: bool | None = None
    emergency: bool | None = None
    spi: bool | None = None
    on_ground: bool | None = None

    @property
    def icao_hex(self) -> str:
        """Six hex digits, "~" first for a non-ICAO address."""
        return address_hex(self.icao)


def _num(fields: list[str], i: int, name: str, kind: type[int] | type[float]) -> float | None:
    text = fields[i].strip()
    if not text:
        return None
    try:
        return kind(float(text)) if kind is int else float(text)
    except ValueError:
        raise SbsError(name, text) from None


def _flag(fields: list[str], i: int, name: str) -> bool | None:
    text = fields[i].strip()
    if not text:
        return None
    if text in ("-1", "1"):
        return True
    if text == "0":
        return False
    raise SbsError(name, text)


def _time_ms(date: str, clock: str, tz: tzinfo) -> int | None:
    date, clock = date.strip(), clock.strip()
    if not date or not clock:
        return None
    try:
        dt = datetime.strptime(f"{date} {clock}", "%Y/%m/%d %H:%M:%S.%f")
    except ValueError:
        try:
            dt = datetime.strptime(f"{date} {clock}", "%Y/%m/%d %H:%M:%S")
        except ValueError:
            raise SbsError("date_generated", f"{date} {clock}") from None
    return round(dt.replace(tzinfo=tz).timestamp() * 1000)


def parse_sbs_line(line: str, tz: tzinfo = UTC) -> SbsMessage | None:
    """Parse one line; None for non-MSG lines (SEL, ID, AIR, STA, CLK) and blank lines.

    `tz` is the zone of the date/time fields (UTC by default). Raises SbsError.
    """
    text = line.strip()
    if not text:
        return None
    fields = text.split(",")
    if fields[0] != "MSG":
        if fields[0] in ("SEL", "ID", "AIR", "STA", "CLK"):
            return None
        raise SbsError("message_type", fields[0])
    if len(fields) < N_FIELDS:
        # dump1090 always writes all 22; shorter lines were cut in transit.
        raise SbsError("field_count", str(len(fields)))
    try:
        transmission = int(fields[1])
    except ValueError:
        raise SbsError("transmission_type", fields[1]) from None
    if not 1 <= transmission <= 8:
        raise SbsError("transmission_type", fields[1])
    hexident = fields[4].strip()
    non_icao = hexident.startswith("~")  # readsb's mark of a non-ICAO (TIS-B) address
    hexident = hexident.removeprefix("~")
    try:
        icao = int(hexident, 16)
    except ValueError:
        raise SbsError("hex_ident", fields[4]) from None
    if len(hexident) != 6:
        raise SbsError("hex_ident", fields[4])
    icao = track_address(icao, non_icao)
    lat = _num(fields, 14, "latitude", float)
    lon = _num(fields, 15, "longitude", float)
    if lat is not None and not -90 <= lat <= 90:
        raise SbsError("latitude", fields[14])
    if lon is not None and not -180 <= lon <= 180:
        raise SbsError("longitude", fields[15])
    alt = _num(fields, 11, "altitude", int)
    vrate = _num(fields, 16, "vertical_rate", int)
    squawk = fields[17].strip() or None
    if squawk is not None and not (len(squawk) == 4 and all(c in "01234567" for c in squawk)):
        raise SbsError("squawk", squawk)
    return SbsMessage(
        transmission=transmission,
        icao=icao,
        t_ms=_time_ms(fields[6], fields[7], tz),
        callsign=fields[10].strip() or None,
        altitude_ft=None if alt is None else int(alt),
        speed_kt=_num(fields, 12, "ground_speed", float),
        track_deg=_num(fields, 13, "track", float),
        lat_deg=lat,
        lon_deg=lon,
        vrate_fpm=None if vrate is None else int(vrate),
        squawk=squawk,
        alert=_flag(fields, 18, "alert"),
        emergency=_flag(fields, 19, "emergency"),
        spi=_flag(fields, 20, "spi"),
        on_ground=_flag(fields, 21, "on_ground"),
    )


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "-1" if value else "0"
    if isinstance(value, float):
        return f"{value:.5f}".rstrip("0").rstrip(".")
    return str(value)


def format_sbs_line(msg: SbsMessage, tz: tzinfo = UTC) -> str:
    """The CSV line (with ``\\r\\n``, as dump1090 writes it) for `msg`."""
    if msg.t_ms is None:
        date = clock = ""
    else:
        dt = datetime.fromtimestamp(msg.t_ms / 1000, tz)
        date = dt.strftime("%Y/%m/%d")
        clock = dt.strftime("%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"
    fields = [
        "MSG", str(msg.transmission), "1", "1", msg.icao_hex, "1",
        date, clock, date, clock,
        _fmt(msg.callsign), _fmt(msg.altitude_ft), _fmt(msg.speed_kt), _fmt(msg.track_deg),
        _fmt(msg.lat_deg), _fmt(msg.lon_deg), _fmt(msg.vrate_fpm), _fmt(msg.squawk),
        _fmt(msg.alert), _fmt(msg.emergency), _fmt(msg.spi), _fmt(msg.on_ground),
    ]
    return ",".join(fields) + "\r\n"
