"""The `sondehub` source: polls the SondeHub v2 API, publishes each sonde's newest frame.

Requests (``https://api.v2.sondehub.org``, swagger in projecthorus/sondehub-infra)::

    GET /sondes?lat=LAT&lon=LON&distance=METRES&last=SECONDS
        latest telemetry of every sonde heard within `distance` of (lat, lon) in the
        last `last` seconds (server default 1 day):
        {"S1234567": {telemetry}, "T2345678": {telemetry}, …}
    GET /sondes/telemetry?serial=SERIAL&duration=3h        (one per configured serial)
        {"S1234567": {"2024-05-01T12:00:01.000000Z": {telemetry}, …}}; we take the newest.
        SondeHub asks not to poll this one often (it is rate limited).

Telemetry (SondeHub telemetry format): serial, frame, datetime (ISO, "Z"), lat, lon,
alt (m), vel_h, vel_v (m/s), heading (deg), sats, batt (V), temp (C), humidity (%),
pressure (hPa), frequency (MHz), snr (dB), rssi (dBm), type, subtype, manufacturer,
uploader_callsign, ref_datetime ("GPS" when `datetime` is GPS time, as auto_rx uploads
RS41 frames: converted to UTC here; otherwise UTC) and ref_position.

Polling: every `interval` seconds (default 60, at least 30), never faster than the
response's ``Cache-Control: max-age``; each request retries errors, 5xx and 429 with
exponential backoff and honours ``Retry-After`` (`daemon.sources.http_poll.HttpFetcher`);
after a failed poll the interval doubles per consecutive failure, up to backoff_max_s.

A sonde's frame is published when its number differs from the last one published for
that serial (`FrameMemo`); the last frame per serial is kept in Redis with the event
(``emit(event, memo=(serial, str(frame)))``) and loaded at start, so a restart does
not publish the same frames again.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.config import Field, between, non_empty
from daemon.event import EventError, now_ms
from daemon.pipeline import Emit
from daemon.sources.base import SourceContext
from daemon.sources.http_poll import (
    FetchAborted,
    FetchError,
    HttpFetcher,
    PollingSource,
    Wait,
    parse_max_age,
)
from daemon.sources.sonde.telemetry import (
    FrameMemo,
    SondeFix,
    gps_to_utc_datetime,
    load_frames,
    utc_ms,
)

__all__ = [
    "DEFAULT_URL",
    "FIELDS",
    "SondeHubSource",
    "TelemetryError",
    "build",
    "latest_telemetry",
    "parse_telemetry",
]

DEFAULT_URL = "https://api.v2.sondehub.org"
USER_AGENT = "geosensord (+https://github.com/geosensord; SondeHub poller)"
MIN_INTERVAL_S = 30.0
DURATIONS = ("3h", "6h", "1d", "3d")


class TelemetryError(ValueError):
    """A telemetry object that cannot be a sonde event; `reason` is a metric label
    ("bad_document", "missing_field", "bad_field", "no_fix")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _number(obj: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise TelemetryError("missing_field", f"{key!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TelemetryError("bad_field", f"{key}={value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise TelemetryError("bad_field", f"{key}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise TelemetryError("bad_field", f"{key}={value!r} is not finite")
    return number


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def parse_telemetry(obj: Any) -> SondeFix:
    """One SondeHub telemetry object as a SondeFix; raises TelemetryError."""
    if not isinstance(obj, dict):
        raise TelemetryError("bad_document", f"telemetry is a {type(obj).__name__}")
    serial = obj.get("serial")
    if not isinstance(serial, str) or not serial.strip():
        raise TelemetryError("missing_field", "'serial' is missing")
    frame = _number(obj, "frame", required=True)
    assert frame is not None
    if frame != int(frame) or frame < 0:
        raise TelemetryError("bad_field", f"frame={obj['frame']!r} is not a frame number")
    lat = _number(obj, "lat", required=True)
    lon = _number(obj, "lon", required=True)
    assert lat is not None and lon is not None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TelemetryError("bad_field", f"position {lat}, {lon} is off the globe")
    if lat == 0.0 and lon == 0.0:
        raise TelemetryError("no_fix", "lat and lon are 0 (no GPS fix)")
    text = obj.get("datetime")
    if not isinstance(text, str):
        raise TelemetryError("missing_field", "'datetime' is missing")
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TelemetryError("bad_field", f"datetime={text!r} is not ISO 8601") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if str(obj.get("ref_datetime", "")).upper() == "GPS":
        when = gps_to_utc_datetime(when)
    freq_mhz = _number(obj, "frequency")
    sats = _number(obj, "sats")
    return SondeFix(
        serial=serial.strip(),
        frame=int(frame),
        t_ms=utc_ms(when),
        lat=lat,
        lon=lon,
        alt_m=_number(obj, "alt"),
        sonde_type=_text(obj, "type") or "unknown",
        vel_h_mps=_number(obj, "vel_h"),
        heading_deg=_number(obj, "heading"),
        vel_v_mps=_number(obj, "vel_v"),
        sats=None if sats is None else int(sats),
        batt_v=_number(obj, "batt"),
        freq_hz=None if freq_mhz is None else freq_mhz * 1e6,
        extra={
            "subtype": _text(obj, "subtype"),
            "snr_db": _number(obj, "snr"),
            "rssi_dbm": _number(obj, "rssi"),
            "temp_c": _number(obj, "temp"),
            "humidity_pct": _number(obj, "humidity"),
            "pressure_hpa": _number(obj, "pressure"),
            "uploader": _text(obj, "uploader_callsign"),
        },
    )


def _newest(points: dict[str, Any]) -> Any:
    """The newest telemetry of a ``{datetime: telemetry}`` map (by its datetime)."""

    def key(item: tuple[str, Any]) -> str:
        value = item[1]
        stamp = value.get("datetime") if isinstance(value, dict) else None
        return stamp if isinstance(stamp, str) else item[0]

    return max(points.items(), key=key)[1] if points else None


def latest_telemetry(document: Any) -> list[Any]:
    """The newest telemetry object per serial of a /sondes or /sondes/telemetry answer.

    Raises TelemetryError("bad_document") when the document is not a JSON object.
    """
    if not isinstance(document, dict):
        raise TelemetryError("bad_document", f"the answer is a {type(document).__name__}, "
                             "not an object keyed by serial")
    out: list[Any] = []
    for value in document.values():
        # /sondes maps serial -> telemetry; /sondes/telemetry maps serial -> time -> telemetry.
        if isinstance(value, dict) and "serial" not in value and all(
                isinstance(v, dict) for v in value.values()):
            newest = _newest(value)
            if newest is not None:
                out.append(newest)
        else:
            out.append(value)
    return out


@dataclass
class PollStats:
    """What one poll did, for logs and tests."""

    requests: int = 0
    failed_requests: int = 0
    sondes: int = 0
    published: int = 0
    repeated: int = 0
    bad: dict[str, int] = field(default_factory=dict)


class SondeHubSource(PollingSource):
    """Polls SondeHub (module docstring). `wait` and `fetcher` are injectable for tests."""

    def __init__(
        self,
        name: str,
        cfg: dict[str, Any],
        ctx: SourceContext,
        *,
        wait: Wait | None = None,
        fetcher: HttpFetcher | None = None,
    ) -> None:
        super().__init__(name, cfg, ctx, wait=wait, fetcher=fetcher, user_agent=USER_AGENT)
        self.base_url = str(cfg["url"]).rstrip("/")
        self.radius_km = float(cfg["radius_km"])
        lat, lon = cfg.get("center_lat"), cfg.get("center_lon")
        self.center = (ctx.station.lat if lat is None else float(lat),
                       ctx.station.lon if lon is None else float(lon))
        self.last_s = int(cfg["last_s"])
        self.serials = [str(s) for s in cfg["serials"]]
        self.duration = str(cfg["duration"])
        self.frames: FrameMemo | None = None
        self.last_stats = PollStats()

    # -- timing ---------------------------------------------------------------
    @property
    def effective_interval_s(self) -> float:
        """Seconds between polls: the interval, never below the answers' max-age."""
        return max(self.interval_s, MIN_INTERVAL_S, self.max_age_s or 0.0)

    # -- requests -------------------------------------------------------------
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """The (url, query) pairs of one poll."""
        out: list[tuple[str, dict[str, str]]] = []
        if self.radius_km > 0:
            lat, lon = self.center
            out.append((f"{self.base_url}/sondes", {
                "lat": f"{lat:.5f}", "lon": f"{lon:.5f}",
                "distance": str(round(self.radius_km * 1000)), "last": str(self.last_s),
            }))
        for serial in self.serials:
            out.append((f"{self.base_url}/sondes/telemetry",
                        {"serial": serial, "duration": self.duration}))
        return out

    # -- the loop -------------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Poll until `stop`; with `once`, exactly one poll (with its retries)."""
        self._stop = stop
        if not self.requests():
            raise ValueError(f"{self.name}: radius_km = 0 and no serials: nothing to poll")
        try:
            self.frames = load_frames(self, self._wait, once)
            if self.frames is None:
                return
            self.log.info("%s: %d sondes remembered; polling %s every %.0f s", self.name,
                          len(self.frames), self.base_url, self.effective_interval_s)
            self.poll_until_stopped(emit, once)
        finally:
            self.fetcher.close()

    def poll(self, emit: Emit) -> PollStats:
        """One poll of every request; failures are logged and counted, not raised."""
        assert self.frames is not None, "run() loads the memo first"
        metrics, name = self.ctx.metrics, self.name
        stats = PollStats()
        max_age: float | None = None
        for url, params in self.requests():
            stats.requests += 1
            rx_ms = now_ms()
            try:
                resp = self.fetcher.get(url, params=params)
            except FetchAborted:
                return stats
            except FetchError as exc:
                stats.failed_requests += 1
                metrics.inc("sonde_poll_errors_total", reason="fetch", source=name)
                self.bad_input.warning("fetch", "%s: poll failed: %s", name, exc)
                continue
            age = parse_max_age(resp.headers.get("Cache-Control"))
            if age is not None:
                max_age = max(max_age or 0.0, age)
            try:
                objects = latest_telemetry(json.loads(resp.content))
            except (json.JSONDecodeError, UnicodeDecodeError, TelemetryError) as exc:
                stats.failed_requests += 1
                metrics.inc("sonde_poll_errors_total", reason="document", source=name)
                self.count_bad("bad_document", f"{url}: {exc}")
                continue
            for obj in objects:
                stats.sondes += 1
                self._offer(obj, emit, rx_ms, stats)
        metrics.inc("sonde_polls_total", source=name)
        if max_age != self.max_age_s and max_age is not None:
            if max_age > self.interval_s:
                self.log.info("%s: max-age %.0f s is above the interval; polling every %.0f s",
                              name, max_age, max_age)
            self.max_age_s = max_age
        self.failed_polls = self.failed_polls + 1 if stats.failed_requests else 0
        self.last_stats = stats
        return stats

    def _offer(self, obj: Any, emit: Emit, rx_ms: int, stats: PollStats) -> None:
        assert self.frames is not None
        try:
            fix = parse_telemetry(obj)
            event = fix.to_event(self.name, self.ctx.station.id, rx_ms)
        except (TelemetryError, EventError) as exc:
            reason = exc.reason if isinstance(exc, TelemetryError) else "bad_field"
            stats.bad[reason] = stats.bad.get(reason, 0) + 1
            self.count_bad(reason, f"{exc}: {str(obj)[:200]}")
            return
        if not self.frames.is_new(fix.serial, fix.frame):
            stats.repeated += 1
            return
        emit(event, memo=(fix.serial, str(fix.frame)))
        self.frames.published(fix.serial, fix.frame)
        stats.published += 1
        self.ctx.metrics.inc("sonde_frames_total", source=self.name)


def _serials_check(value: Any) -> str | None:
    if not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of serial numbers, e.g. [\"S1234567\"]"
    return None


def _duration_check(value: Any) -> str | None:
    return None if value in DURATIONS else f"{value!r} is not one of: {', '.join(DURATIONS)}"


FIELDS: dict[str, Field] = {
    "url": Field((str,), default=DEFAULT_URL, check=non_empty,
                 doc="SondeHub API base URL"),
    "interval": Field((float,), default=60.0, check=between(MIN_INTERVAL_S, 86_400),
                      doc="seconds between polls (>= 30); raised to the answers' max-age"),
    "radius_km": Field((float,), default=300.0, check=between(0, 20_040),
                       doc="area query: sondes within this distance of the centre; 0 = off"),
    "center_lat": Field((float,), default=None, check=between(-90, 90),
                        doc="centre of the area query; default the station latitude"),
    "center_lon": Field((float,), default=None, check=between(-180, 180),
                        doc="centre of the area query; default the station longitude"),
    "last_s": Field((int,), default=10_800, check=between(60, 604_800),
                    doc="area query: only sondes heard in the last this many seconds"),
    "serials": Field((list,), default=[], check=_serials_check,
                     doc="also follow these serials via /sondes/telemetry"),
    "duration": Field((str,), default="3h", check=_duration_check,
                      doc="/sondes/telemetry window for the serials"),
    "timeout_s": Field((float,), default=20.0, check=between(0.1, 600),
                       doc="seconds per HTTP request"),
    "retries": Field((int,), default=3, check=between(0, 20),
                     doc="extra attempts per request on errors, timeouts, 5xx and 429"),
    "backoff_max_s": Field((float,), default=600.0, check=between(1, 86_400),
                           doc="cap of the retry backoff and of the failed-poll slowdown"),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> SondeHubSource:
    """Factory used by the source registry."""
    return SondeHubSource(name, cfg, ctx)
