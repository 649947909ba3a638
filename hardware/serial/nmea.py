"""NMEA 0183 sentences from a GPS: checksum, GGA and RMC, and the latest fix.

Wire format (one sentence per line, any talker: GP, GN, GL, GA, BD, GB, …)::

    $GNGGA,hhmmss.ss,ddmm.mmmm,N,dddmm.mmmm,E,q,ss,h.h,aaa.a,M,gg.g,M,age,ref*HH
            time     lat       N/S lon      E/W | |  hdop alt_m    geoid sep
                                                | satellites in use
                                                fix quality: 0 none, 1 GPS, 2 DGPS,
                                                4 RTK fixed, 5 RTK float, 6 estimated
    $GNRMC,hhmmss.ss,A,ddmm.mmmm,N,dddmm.mmmm,E,s.s,c.c,ddmmyy,m.m,E,M[,S]*HH
                     status A valid / V void   knots deg  date   magvar mode (2.3+):
                                                                  A,D,E,F,R valid; N not

``*HH`` is the XOR of every character between ``$`` and ``*`` (required here).
Latitude is ``ddmm.mmmm`` (degrees then decimal minutes), longitude
``dddmm.mmmm``; GGA altitude is metres above mean sea level. Times are UTC;
GGA has no date, so it is dated from the last RMC or, failing that, the day
nearest a reference clock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from typing import Any

from hardware.serial.checksum import split_checksum, xor_checksum
from hardware.serial.errors import ChecksumError, SentenceError

__all__ = [
    "Fix",
    "GpsTracker",
    "NmeaSentence",
    "decode_gga",
    "decode_rmc",
    "parse_fix",
    "parse_sentence",
    "utc_ms",
]

KNOT_MPS = 1852.0 / 3600.0
DAY_MS = 86_400_000
_RMC_MODE_QUALITY = {"A": 1, "D": 2, "E": 6, "F": 5, "R": 4, "P": 1}


@dataclass(frozen=True, slots=True)
class NmeaSentence:
    """A checksum-verified sentence: ``$<talker><kind>,<fields…>``."""

    talker: str
    kind: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fix:
    """A valid position fix.

    `t_ms` is UTC epoch ms (None when the date cannot be known), `tod_ms` the UTC
    time of day in ms; `alt_m` is metres above MSL (None from an RMC alone);
    `quality` follows GGA (1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 estimated).
    """

    lat: float
    lon: float
    alt_m: float | None
    quality: int
    sats: int | None
    hdop: float | None
    tod_ms: int
    t_ms: int | None
    speed_mps: float | None = None
    course_deg: float | None = None
    sentence: str = "GGA"
    talker: str = "GP"

    def to_data(self) -> dict[str, Any]:
        """The fix as the ``fix`` object of a reading (None fields left out)."""
        out: dict[str, Any] = {
            "lat": self.lat, "lon": self.lon, "alt_m": self.alt_m, "quality": self.quality,
            "sats": self.sats, "hdop": self.hdop, "t_ms": self.t_ms,
            "speed_mps": self.speed_mps, "course_deg": self.course_deg,
            "sentence": self.talker + self.sentence,
        }
        return {k: v for k, v in out.items() if v is not None}


def parse_sentence(line: str) -> NmeaSentence:
    """Verify the checksum of ``$…*HH`` and split it into talker, kind and fields.

    Raises ChecksumError (bad or missing ``*HH``) or SentenceError.
    """
    text = line.strip()
    if not text.startswith("$"):
        raise SentenceError(text[:16], "does not start with '$'")
    body, actual = split_checksum(text[1:])
    if actual is None:
        raise ChecksumError(xor_checksum(body), None)
    expected = xor_checksum(body)
    if actual != expected:
        raise ChecksumError(expected, actual)
    parts = body.split(",")
    address = parts[0]
    if len(address) < 5 or not address.isalnum():
        raise SentenceError(address, "bad address field")
    if address.startswith("P"):
        # Proprietary sentences ($PUBX, $PMTK…) have no talker id.
        return NmeaSentence("P", address[1:], tuple(parts[1:]))
    return NmeaSentence(address[:2], address[2:], tuple(parts[1:]))


def _field(s: NmeaSentence, i: int) -> str:
    return s.fields[i] if i < len(s.fields) else ""


def _tod_ms(s: NmeaSentence, text: str) -> int:
    try:
        hh, mm, ss = int(text[0:2]), int(text[2:4]), float(text[4:])
    except ValueError:
        raise SentenceError(s.kind, f"bad time {text!r}") from None
    if len(text) < 6 or not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 61):
        raise SentenceError(s.kind, f"bad time {text!r}")
    return (hh * 3600 + mm * 60) * 1000 + round(ss * 1000)


def _angle(s: NmeaSentence, text: str, hemi: str, deg_digits: int, limit: float) -> float:
    """``ddmm.mmmm`` + hemisphere -> signed degrees."""
    try:
        degrees = int(text[:deg_digits])
        minutes = float(text[deg_digits:])
    except ValueError:
        raise SentenceError(s.kind, f"bad coordinate {text!r}") from None
    well_formed = text[:deg_digits + 2].isdigit() and text.find(".") in (-1, deg_digits + 2)
    if not well_formed or not 0 <= minutes < 60:
        raise SentenceError(s.kind, f"bad coordinate {text!r}")
    value = degrees + minutes / 60.0
    if value > limit:
        raise SentenceError(s.kind, f"coordinate {text!r} beyond {limit:g} degrees")
    if hemi in ("S", "W"):
        return -value
    if hemi in ("N", "E"):
        return value
    raise SentenceError(s.kind, f"bad hemisphere {hemi!r}")


def _opt_float(s: NmeaSentence, text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise SentenceError(s.kind, f"bad {name} {text!r}") from None


def _date(s: NmeaSentence, text: str) -> tuple[int, int, int] | None:
    """``ddmmyy`` -> (year, month, day); None when empty."""
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise SentenceError(s.kind, f"bad date {text!r}")
    day, month, yy = int(text[0:2]), int(text[2:4]), int(text[4:6])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        raise SentenceError(s.kind, f"bad date {text!r}")
    # Two-digit years: GPS receivers in use today report 2000-2079.
    return (2000 + yy if yy < 80 else 1900 + yy, month, day)


def utc_ms(tod_ms: int, date: tuple[int, int, int] | None, reference_ms: int) -> int:
    """Epoch ms of a UTC time of day on `date`, or on the day that puts it nearest
    `reference_ms` when the date is unknown (GGA around midnight)."""
    if date is not None:
        return calendar.timegm((*date, 0, 0, 0)) * 1000 + tod_ms
    base = reference_ms - reference_ms % DAY_MS + tod_ms
    return min((base - DAY_MS, base, base + DAY_MS), key=lambda t: abs(t - reference_ms))


def decode_gga(s: NmeaSentence, reference_ms: int,
               date: tuple[int, int, int] | None = None) -> Fix | None:
    """The fix in a GGA sentence; None when it reports no fix (quality 0)."""
    quality_text = _field(s, 5)
    if not quality_text.isdigit():
        raise SentenceError(s.kind, f"bad fix quality {quality_text!r}")
    quality = int(quality_text)
    if quality == 0 or not _field(s, 1):
        return None
    tod = _tod_ms(s, _field(s, 0))
    sats_text = _field(s, 6)
    alt = _opt_float(s, _field(s, 8), "altitude")
    return Fix(
        lat=_angle(s, _field(s, 1), _field(s, 2), 2, 90.0),
        lon=_angle(s, _field(s, 3), _field(s, 4), 3, 180.0),
        alt_m=alt,
        quality=quality,
        sats=int(sats_text) if sats_text.isdigit() else None,
        hdop=_opt_float(s, _field(s, 7), "hdop"),
        tod_ms=tod,
        t_ms=utc_ms(tod, date, reference_ms) if date is not None or reference_ms else None,
        sentence="GGA",
        talker=s.talker,
    )


def decode_rmc(s: NmeaSentence) -> tuple[Fix | None, tuple[int, int, int] | None]:
    """The fix (None when void) and the date (year, month, day) in an RMC sentence."""
    date = _date(s, _field(s, 8))
    status = _field(s, 1)
    mode = _field(s, 11)
    if status != "A" or mode == "N":
        return None, date
    tod = _tod_ms(s, _field(s, 0))
    speed_kn = _opt_float(s, _field(s, 6), "speed")
    fix = Fix(
        lat=_angle(s, _field(s, 2), _field(s, 3), 2, 90.0),
        lon=_angle(s, _field(s, 4), _field(s, 5), 3, 180.0),
        alt_m=None,
        quality=_RMC_MODE_QUALITY.get(mode, 1),
        sats=None,
        hdop=None,
        tod_ms=tod,
        t_ms=utc_ms(tod, date, 0) if date is not None else None,
        speed_mps=None if speed_kn is None else speed_kn * KNOT_MPS,
        course_deg=_opt_float(s, _field(s, 7), "course"),
        sentence="RMC",
        talker=s.talker,
    )
    return fix, date


def parse_fix(line: str, reference_ms: int) -> Fix | None:
    """The fix in one GGA or RMC line (None for other sentences or no fix)."""
    s = parse_sentence(line)
    if s.kind == "GGA":
        return decode_gga(s, reference_ms)
    if s.kind == "RMC":
        return decode_rmc(s)[0]
    return None


class GpsTracker:
    """Keeps the latest valid fix from a stream of sentences.

    GGA and RMC of the same second are merged (GGA: altitude, quality, satellites;
    RMC: date, speed, course). Age is measured on the caller's monotonic clock at
    reception, so a GPS with a wrong or missing clock still ages out.
    """

    def __init__(self, carry_s: float = 2.0) -> None:
        self.carry_s = carry_s
        self._fix: Fix | None = None
        self._fix_rx_s = 0.0
        self._gga: Fix | None = None
        self._gga_rx_s = 0.0
        self._rmc: Fix | None = None
        self._date: tuple[int, int, int] | None = None
        self._date_tod_ms = 0

    def feed(self, s: NmeaSentence, rx_ms: int, rx_mono_s: float) -> Fix | None:
        """Update from one sentence; return the new fix when this sentence made one."""
        if s.kind == "RMC":
            fix, date = decode_rmc(s)
            if date is not None:
                self._date = date
                self._date_tod_ms = _tod_ms(s, _field(s, 0)) if _field(s, 0) else 0
            if fix is None:
                return None
            self._rmc = fix
            gga = self._gga
            if gga is not None and rx_mono_s - self._gga_rx_s <= self.carry_s:
                # Same epoch (or the one before): keep GGA's altitude and quality.
                fix = replace(fix, alt_m=gga.alt_m, quality=gga.quality, sats=gga.sats,
                              hdop=gga.hdop)
            return self._set(fix, rx_mono_s)
        if s.kind == "GGA":
            date = self._date
            tod = _tod_ms(s, _field(s, 0)) if _field(s, 0) else 0
            if date is not None and tod < self._date_tod_ms:
                date = None  # past midnight since the last RMC: date it from the clock
            fix = decode_gga(s, rx_ms, date)
            if fix is None:
                return None
            rmc = self._rmc
            if rmc is not None and rmc.tod_ms == fix.tod_ms:
                fix = replace(fix, speed_mps=rmc.speed_mps, course_deg=rmc.course_deg)
            self._gga, self._gga_rx_s = fix, rx_mono_s
            return self._set(fix, rx_mono_s)
        return None

    def _set(self, fix: Fix, rx_mono_s: float) -> Fix:
        self._fix, self._fix_rx_s = fix, rx_mono_s
        return fix

    def current(self, now_mono_s: float, max_age_s: float) -> Fix | None:
        """The latest fix if it was received within `max_age_s`, else None."""
        if self._fix is None or now_mono_s - self._fix_rx_s > max_age_s:
            return None
        return self._fix

    def age_s(self, now_mono_s: float) -> float | None:
        """Seconds since the latest fix was received (None if there never was one)."""
        return None if self._fix is None else now_mono_s - self._fix_rx_s
