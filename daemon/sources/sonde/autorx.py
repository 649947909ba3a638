"""The `autorx` source: radiosonde_auto_rx's ``PAYLOAD_SUMMARY`` UDP JSON -> sonde events.

auto_rx (``autorx/ozimux.py``, "Payload Summary" output, ``payload_summary_port``,
usually 55673) sends one JSON object per datagram, the latest frame of the sonde it
tracks, every ``update_rate`` seconds::

    {"type": "PAYLOAD_SUMMARY", "station": "PY3XYZ", "callsign": "S1234567",
     "latitude": -30.03, "longitude": -51.23, "altitude": 14035.7,   deg, deg, m
     "speed": 44.4,          km/h (vel_h * 3.6), -1 when unknown
     "heading": 63.3,        deg true, -1 when unknown
     "time": "11:59:26",     HH:MM:SS of the sonde's time, no date
     "datetime": "2015-08-02T11:59:26+00:00",   newer auto_rx only: the full time
     "comment": "Radiosonde", "model": "RS41-SGP", "freq": "402.7000 MHz",
     "temp": -52.1,          deg C, -273 when unknown
     "frame": 3172,
     optional: "bt", "humidity" (%, -1 unknown), "pressure" (hPa), "sats", "batt" (V),
               "snr" (dB), "fest", "f_centre" (Hz), "ppm", "subtype", "sdr_device_idx",
               "vel_v" (m/s), "vel_h" (m/s), "aux"}

Mapping: serial = callsign (a model prefix such as ``DFM-`` is dropped, as auto_rx
does when it uploads to SondeHub, so ids match SondeHub's); vel_h_mps = vel_h, else
speed / 3.6; time = ``datetime`` if present, else ``time`` on the date that puts it
nearest the receive time. auto_rx passes the decoder's time through unchanged, and
the RS41 and RS92 decoders report GPS time: with ``time_ref = "auto"`` those models
are converted to UTC (GPS - leap seconds), others are taken as UTC.

Datagrams that are not JSON objects, lack a field or hold an impossible value are
counted (``bad_input_total{reason}``) and skipped; objects of another ``type`` (a
chase car's ``GPS`` on the same port) are counted as ignored. ``--once``: runs until
``once_timeout_s`` pass without a datagram.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.config import Field, between, non_empty, one_of
from daemon.event import EventError, now_ms
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext
from daemon.sources.sonde.telemetry import (
    FrameMemo,
    SondeFix,
    gps_to_utc_datetime,
    load_frames,
    utc_ms,
)

__all__ = [
    "DEFAULT_PORT",
    "FIELDS",
    "AutoRxSource",
    "PayloadError",
    "build",
    "parse_payload_summary",
]

DEFAULT_PORT = 55673
MAX_DATAGRAM_BYTES = 65_535
GPS_TIME_MODELS = ("RS41", "RS92")
_FREQ_RE = re.compile(r"^\s*([0-9.]+)\s*(MHz|kHz|Hz)?\s*$", re.IGNORECASE)


class PayloadError(ValueError):
    """A datagram that is not a usable PAYLOAD_SUMMARY; `reason` names why (a metric label).

    Reasons: "json", "not_object", "missing_field", "bad_field", "no_fix", "other_type".
    `field` is the offending key, if any.
    """

    def __init__(self, reason: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


def _number(obj: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError("missing_field", f"{key!r} is missing", key)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError("bad_field", f"{key}={value!r} is not a number", key)
    try:
        number = float(value)
    except ValueError:
        raise PayloadError("bad_field", f"{key}={value!r} is not a number", key) from None
    if not math.isfinite(number):
        raise PayloadError("bad_field", f"{key}={value!r} is not finite", key)
    return number


def _known(value: float | None, floor: float) -> float | None:
    """auto_rx's "unknown" markers (-1 speed/heading/humidity, -273 temp) -> None."""
    return None if value is None or value <= floor else value


def parse_freq_hz(value: Any) -> float | None:
    """Hz of auto_rx's ``freq`` ("402.7000 MHz"; a bare number is MHz)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * 1e6
    m = _FREQ_RE.match(str(value))
    if not m:
        return None
    unit = (m.group(2) or "MHz").lower()
    return float(m.group(1)) * {"mhz": 1e6, "khz": 1e3, "hz": 1.0}[unit]


def sondehub_serial(callsign: str, model: str) -> str:
    """The serial as SondeHub spells it: auto_rx prefixes non-Vaisala ids with the model
    (``DFM-12345678``, ``M10-…``, ``IMET-…``) and strips that prefix for SondeHub."""
    if model.upper().startswith(("RS41", "RS92", "RD")) or "-" not in callsign:
        return callsign
    return callsign.split("-", 1)[1]


def _sonde_time(obj: dict[str, Any], rx: datetime) -> datetime:
    """The frame time as the sonde reports it (GPS or UTC scale, tz-aware)."""
    text = obj.get("datetime")
    if isinstance(text, str) and text.strip():
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError("bad_field", f"datetime={text!r} is not ISO 8601",
                               "datetime") from None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    short = obj.get("time")
    if not isinstance(short, str):
        raise PayloadError("missing_field", "'time' is missing", "time")
    try:
        clock = datetime.strptime(short.strip(), "%H:%M:%S").time()
    except ValueError:
        raise PayloadError("bad_field", f"time={short!r} is not HH:MM:SS", "time") from None
    # No date: the day that puts it nearest the receive time (a frame just before
    # midnight received just after it belongs to the day before).
    base = datetime.combine(rx.date(), clock, tzinfo=UTC)
    return min((base + timedelta(days=d) for d in (-1, 0, 1)), key=lambda c: abs(c - rx))


def parse_payload_summary(raw: bytes, rx_ms: int, time_ref: str = "auto") -> SondeFix:
    """A PAYLOAD_SUMMARY datagram as a SondeFix; raises PayloadError (module doc)."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PayloadError("not_object", f"a JSON {type(obj).__name__}, not an object")
    kind = obj.get("type")
    if kind != "PAYLOAD_SUMMARY":
        raise PayloadError("other_type", f"type {kind!r}", "type")
    callsign = obj.get("callsign")
    if not isinstance(callsign, str) or not callsign.strip():
        raise PayloadError("missing_field", "'callsign' is missing", "callsign")
    model = str(obj.get("model") or "")
    frame_value = _number(obj, "frame", required=True)
    assert frame_value is not None
    if frame_value != int(frame_value) or frame_value < 0:
        raise PayloadError("bad_field", f"frame={obj['frame']!r} is not a frame number",
                           "frame")
    lat = _number(obj, "latitude", required=True)
    lon = _number(obj, "longitude", required=True)
    assert lat is not None and lon is not None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PayloadError("bad_field", f"position {lat}, {lon} is off the globe", "latitude")
    if lat == 0.0 and lon == 0.0:
        raise PayloadError("no_fix", "latitude and longitude are 0 (no GPS fix)", "latitude")
    rx = datetime.fromtimestamp(rx_ms / 1000, UTC)
    when = _sonde_time(obj, rx)
    gps_scale = time_ref == "gps" or (
        time_ref == "auto" and model.upper().startswith(GPS_TIME_MODELS)
    )
    if gps_scale:
        when = gps_to_utc_datetime(when)
    vel_h = _known(_number(obj, "vel_h"), -9999.0)
    if vel_h is None:
        speed_kmh = _number(obj, "speed")
        # auto_rx sends -1 for "unknown"; a real 0 km/h is kept.
        if speed_kmh is not None and speed_kmh >= 0:
            vel_h = speed_kmh / 3.6
    heading = _known(_number(obj, "heading"), -1.0)
    sats = _number(obj, "sats")
    f_centre = _number(obj, "f_centre")
    freq_hz = f_centre if f_centre is not None else parse_freq_hz(obj.get("freq"))
    subtype = obj.get("subtype")
    station = obj.get("station")
    return SondeFix(
        serial=sondehub_serial(callsign.strip(), model),
        frame=int(frame_value),
        t_ms=utc_ms(when),
        lat=lat,
        lon=lon,
        alt_m=_number(obj, "altitude"),
        sonde_type=_base_type(model),
        vel_h_mps=vel_h,
        heading_deg=heading,
        vel_v_mps=_known(_number(obj, "vel_v"), -9999.0),
        sats=None if sats is None or sats < 0 else int(sats),
        batt_v=_known(_number(obj, "batt") if "batt" in obj else _number(obj, "batt_voltage"),
                      -0.5),
        freq_hz=freq_hz,
        extra={
            "subtype": subtype if isinstance(subtype, str) and subtype else
            (model if model and model != _base_type(model) else None),
            "snr_db": _number(obj, "snr"),
            "temp_c": _known(_number(obj, "temp"), -273.0),
            "humidity_pct": _known(_number(obj, "humidity"), -0.5),
            "pressure_hpa": _known(_number(obj, "pressure"), -0.5),
            "uploader": station if isinstance(station, str) and station else None,
        },
    )


def _base_type(model: str) -> str:
    """"RS41-SGP" -> "RS41" (SondeHub's `type`); other models as they are."""
    upper = model.upper()
    for base in ("RS41", "RS92"):
        if upper.startswith(base):
            return base
    return model or "unknown"


class AutoRxSource(Source):
    """Listens for PAYLOAD_SUMMARY datagrams (module docstring)."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext) -> None:
        super().__init__(name, cfg, ctx)
        self.bind_host = str(cfg["bind"]).strip("[]")
        self.port = int(cfg["port"])
        self.time_ref = str(cfg["time_ref"])
        self.once_timeout_s = float(cfg["once_timeout_s"])
        self.bound = threading.Event()
        """Set once the socket is bound; `bound_port` is then the real port (port 0)."""
        self.bound_port = 0
        self.frames: FrameMemo | None = None

    def open_socket(self) -> socket.socket:
        """The bound UDP socket. SO_REUSEADDR lets ChaseMapper listen beside us
        (auto_rx broadcasts by default, and a broadcast reaches every listener)."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_host, self.port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.25)
        self.bound_port = int(sock.getsockname()[1])
        self.bound.set()
        return sock

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Receive until `stop`; with `once`, until `once_timeout_s` of silence."""
        self.frames = load_frames(self, stop.wait, once)
        if self.frames is None:
            return
        sock = self.open_socket()
        self.log.info("%s: listening for auto_rx PAYLOAD_SUMMARY on udp %s:%d", self.name,
                      self.bind_host, self.bound_port)
        last_rx = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    raw, _addr = sock.recvfrom(MAX_DATAGRAM_BYTES)
                except TimeoutError:
                    if once and time.monotonic() - last_rx >= self.once_timeout_s:
                        return
                    continue
                last_rx = time.monotonic()
                self.handle(raw, emit)
        finally:
            sock.close()
            self.bound.clear()

    def handle(self, raw: bytes, emit: Emit) -> bool:
        """Parse one datagram and publish it if it is a new frame; True if published."""
        metrics, name = self.ctx.metrics, self.name
        assert self.frames is not None, "run() loads the memo first"
        metrics.inc("sonde_datagrams_total", source=name)
        rx_ms = now_ms()
        try:
            fix = parse_payload_summary(raw, rx_ms, self.time_ref)
            event = fix.to_event(name, self.ctx.station.id, rx_ms)
        except PayloadError as exc:
            if exc.reason == "other_type":
                metrics.inc("sonde_datagrams_ignored_total", source=name)
            else:
                self.count_bad(exc.reason, f"{exc}: {raw[:200]!r}")
            return False
        except EventError as exc:
            self.count_bad("bad_field", f"{exc}: {raw[:200]!r}")
            return False
        if not self.frames.is_new(fix.serial, fix.frame):
            metrics.inc("sonde_frames_repeated_total", source=name)
            return False
        emit(event, memo=(fix.serial, str(fix.frame)))
        self.frames.published(fix.serial, fix.frame)
        metrics.inc("sonde_frames_total", source=name)
        return True


def _host_check(value: Any) -> str | None:
    problem = non_empty(value)
    if problem:
        return problem
    return None if re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", str(value)) else (
        f"{value!r} is not an address; e.g. \"127.0.0.1\" or \"0.0.0.0\"")


FIELDS: dict[str, Field] = {
    "bind": Field((str,), default="127.0.0.1", check=_host_check,
                  doc="address to listen on; \"0.0.0.0\" to hear auto_rx's LAN broadcasts"),
    "port": Field((int,), default=DEFAULT_PORT, check=between(0, 65535),
                  doc="auto_rx's payload_summary_port"),
    "time_ref": Field((str,), default="auto", check=one_of("auto", "gps", "utc"),
                      doc="scale of the sonde time: auto = GPS for RS41/RS92, else UTC"),
    "once_timeout_s": Field((float,), default=10.0, check=between(0.1, 3600),
                            doc="run --once ends after this long without a datagram"),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> AutoRxSource:
    """Factory used by the source registry."""
    return AutoRxSource(name, cfg, ctx)
