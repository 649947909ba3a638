"""The `sonde.telemetry` event every sonde source emits, and the rules they share.

Event (design §2) of one radiosonde frame::

    id       sonde:<serial>:<frame>      the same frame seen by the SDR, auto_rx and
                                         SondeHub has the same id (see README: dedupe)
    kind     sonde.telemetry
    t        frame time, UTC epoch ms    (GPS time converted: UTC = GPS - leap seconds)
    lat/lon  WGS84 degrees
    alt      metres, alt_ref "ellipsoid" (GPS height as the sonde reports it)
    data     always:   serial, frame, type ("RS41", "DFM", …), vel_h_mps, heading_deg,
                       vel_v_mps, sats, batt_v, freq_hz   (null when unknown)
             if known: subtype, rs_errors, snr_db, rssi_dbm, temp_c, humidity_pct,
                       pressure_hpa, uploader (the station that received it)

`FrameMemo` is the "publish a frame once" rule of the live sources: a frame is new
when its number differs from the last one published for that serial. The last frame
per serial is recorded in the producer's memo hash in the same atomic step as the
stream entry (``emit(event, memo=(serial, str(frame)))``) and loaded at start, so a
restart does not publish the frame in flight again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.event import Event
from daemon.sources.base import Source
from hardware.rs41.gps import gps_leap_seconds

__all__ = [
    "KIND",
    "FrameMemo",
    "SondeFix",
    "event_id",
    "gps_to_utc_datetime",
    "load_frames",
    "utc_ms",
]

KIND = "sonde.telemetry"


def event_id(serial: str, frame: int) -> str:
    """The event id of a frame: ``sonde:<serial>:<frame>``."""
    return f"sonde:{serial}:{frame}"


def gps_to_utc_datetime(gps_time: datetime) -> datetime:
    """UTC of a GPS-scale calendar time (what RS41 decoders print): minus leap seconds."""
    if gps_time.tzinfo is None:
        gps_time = gps_time.replace(tzinfo=UTC)
    return gps_time - timedelta(seconds=gps_leap_seconds(gps_time))


def utc_ms(when: datetime) -> int:
    """Epoch milliseconds of a datetime (naive means UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class SondeFix:
    """One frame of telemetry with a position, whatever it came from (units in names)."""

    serial: str
    frame: int
    t_ms: int
    lat: float
    lon: float
    alt_m: float | None
    sonde_type: str
    vel_h_mps: float | None = None
    heading_deg: float | None = None
    vel_v_mps: float | None = None
    sats: int | None = None
    batt_v: float | None = None
    freq_hz: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_event(self, src: str, station: str, rx_ms: int) -> Event:
        """The `sonde.telemetry` Event of this fix (module docstring)."""
        data: dict[str, Any] = {
            "serial": self.serial,
            "frame": self.frame,
            "type": self.sonde_type,
            "vel_h_mps": _round(self.vel_h_mps, 3),
            "heading_deg": _round(self.heading_deg, 3),
            "vel_v_mps": _round(self.vel_v_mps, 3),
            "sats": self.sats,
            "batt_v": _round(self.batt_v, 2),
            "freq_hz": None if self.freq_hz is None else round(self.freq_hz),
        }
        data.update({k: v for k, v in self.extra.items() if v is not None})
        return Event(
            id=event_id(self.serial, self.frame),
            src=src,
            kind=KIND,
            t=self.t_ms,
            rx=rx_ms,
            lat=self.lat,
            lon=self.lon,
            alt=_finite(self.alt_m),
            station=station,
            data=data,
            alt_ref="ellipsoid",
        )


def _round(value: float | None, digits: int) -> float | None:
    value = _finite(value)
    return None if value is None else round(value, digits)


class FrameMemo:
    """The last frame published per serial; a frame is new when its number differs.

    "Differs", not "is larger": an RS41 restarts its frame counter at power-on, and a
    sonde switched on again on the ground must not stay silent until it passes the
    old count. Repeats of the same frame (a second auto_rx, a poll that saw nothing
    new, a restart) are what this suppresses. Thread-safe.
    """

    def __init__(self, known: dict[str, str] | None = None) -> None:
        self._last: dict[str, str] = dict(known or {})
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._last)

    def is_new(self, serial: str, frame: int) -> bool:
        """Whether (serial, frame) was not the last frame published for `serial`."""
        with self._lock:
            return self._last.get(serial) != str(frame)

    def published(self, serial: str, frame: int) -> None:
        """Record that (serial, frame) was handed to the pipeline."""
        with self._lock:
            self._last[serial] = str(frame)


def load_frames(source: Source, wait: Callable[[float], bool], once: bool) -> FrameMemo | None:
    """The last frame `source` published per serial, from its memo hash in Redis.

    Retried while Redis is unreachable (`Source.load_memo`): without it the last
    frame of every sonde would be published again. None when stopped meanwhile.
    """
    known = source.load_memo(lambda: source.ctx.memo(source.producer), wait, once,
                             "the frames already published")
    return None if known is None else FrameMemo(known)
