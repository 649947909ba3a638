"""From Mode S messages to aircraft events: the part every ADS-B input shares.

    IQ demodulator ─► ModeSMessage ─┐
    Beast / raw feed ─► check_frame ┴► decode ─► AircraftTable ─► AircraftPublisher ─► Emit
    SBS feed ─► SbsAircraft (positions already decoded) ───────────┘

`AircraftPublisher` decides what to publish after each message of an aircraft:

- ``aircraft.position`` when the aircraft has a fix newer than the last one published
  and at least `min_interval_s` (message time) after it. id ``adsb:<icao>:<t_ms>``,
  t = time of the fix. alt = barometric altitude in metres with alt_ref "msl" (it is
  *pressure* altitude: the 1013.25 hPa standard atmosphere, not true height above sea
  level; it can be off by hundreds of metres), or, when an aircraft reports only GNSS
  height, that height with alt_ref "ellipsoid".
- ``aircraft.identity`` when callsign, category or squawk differ from what was last
  published for the aircraft. id ``adsb:<icao>:<t_ms>:identity``, located at the last
  fix, else at the receiver.
- ``aircraft.raw`` (only with ``raw_stream``): every accepted message, id
  ``adsb:<icao>:<t_us>:raw``, located like identity; for MLAT and debugging.

Ids stay unique because a kind is published at most once per aircraft and
millisecond (microsecond for raw).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.event import Event, now_ms
from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.sources.base import Station
from hardware.modes.address import address_hex
from hardware.modes.aircraft import AircraftTable, distance_m
from hardware.modes.errors import DecodeError
from hardware.modes.frame_check import AddressBook, check_frame, downlink_format
from hardware.modes.message import DecodedMessage, decode
from hardware.modes.sbs import SbsMessage
from hardware.modes.units import FT_TO_M, fpm_to_mps, ft_to_m, kt_to_mps

__all__ = [
    "AircraftPublisher",
    "AircraftView",
    "ModeSTracker",
    "SbsAircraft",
    "SbsTracker",
    "source_publisher",
]

# Sequence slots per message: a message yields at most one event of each kind.
SLOT_IDENTITY, SLOT_POSITION, SLOT_RAW, SLOTS = 0, 1, 2, 4
_EXPIRE_EVERY_S = 10.0


class AircraftView(Protocol):
    """What the publisher reads of an aircraft (hardware.modes.aircraft.Aircraft has it)."""

    icao: int
    last_seen_s: float
    messages: int
    signal_level: float | None
    callsign: str | None
    category: str | None
    squawk: str | None
    emergency: str | None
    altitude_ft: int | None
    gnss_height_m: float | None
    lat_deg: float | None
    lon_deg: float | None
    position_t_s: float | None
    track_deg: float | None

    @property
    def speed_mps(self) -> float | None: ...

    @property
    def vrate_mps(self) -> float | None: ...


@dataclass
class _Published:
    position_t_ms: int | None = None
    identity: tuple[str | None, str | None, str | None] = (None, None, None)
    identity_t_ms: int | None = None


def _t_ms(t_s: float) -> int:
    return math.floor(t_s * 1000.0 + 0.5)


def _icao_text(ac: AircraftView) -> str:
    """The address as events carry it: lower-case hex, "~" first when not ICAO."""
    return address_hex(ac.icao).lower()


def _opt(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class AircraftPublisher:
    """Turns aircraft state into events (see the module docstring)."""

    def __init__(
        self,
        src: str,
        station: str,
        receiver: tuple[float, float],
        emit: Emit,
        *,
        min_interval_s: float = 1.0,
        raw_stream: bool = False,
        producer: str | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.src = src
        self.station = station
        self.receiver = receiver
        self.emit = emit
        self.min_interval_ms = round(min_interval_s * 1000)
        self.raw_stream = raw_stream
        self.producer = producer
        self.clock_ms = clock_ms
        self._state: dict[int, _Published] = {}

    def forget(self, icao: int) -> None:
        """Drop what was published for an aircraft that expired."""
        self._state.pop(icao, None)

    def _send(self, event: Event, seq: int | None) -> None:
        if seq is None:
            self.emit(event, producer=self.producer)
        else:
            self.emit(event, seq=seq, producer=self.producer)

    def _where(self, ac: AircraftView) -> tuple[float, float, float | None, str]:
        if ac.lat_deg is not None and ac.lon_deg is not None:
            alt, ref = self._alt(ac)
            return ac.lat_deg, ac.lon_deg, alt, ref
        return self.receiver[0], self.receiver[1], None, "msl"

    @staticmethod
    def _alt(ac: AircraftView) -> tuple[float | None, str]:
        if ac.altitude_ft is not None:
            return round(ac.altitude_ft * FT_TO_M, 1), "msl"
        if ac.gnss_height_m is not None:
            return round(ac.gnss_height_m, 1), "ellipsoid"
        return None, "msl"

    def update(self, ac: AircraftView, seq_base: int | None = None) -> int:
        """Publish what is new about `ac` after one of its messages; returns events sent."""
        st = self._state.get(ac.icao)
        if st is None:
            st = self._state[ac.icao] = _Published()
        sent = 0
        ident = (ac.callsign, ac.category, ac.squawk)
        if ident != st.identity and any(v is not None for v in ident):
            t_ms = _t_ms(ac.last_seen_s)
            if st.identity_t_ms is None or t_ms > st.identity_t_ms:
                icao = _icao_text(ac)
                lat, lon, alt, ref = self._where(ac)
                self._send(
                    Event(
                        id=f"adsb:{icao}:{t_ms}:identity", src=self.src,
                        kind="aircraft.identity", t=t_ms, rx=self.clock_ms(), lat=lat, lon=lon,
                        alt=alt, alt_ref=ref, station=self.station,
                        data={"icao": icao, "callsign": ac.callsign, "category": ac.category,
                              "squawk": ac.squawk, "emergency": ac.emergency},
                    ),
                    None if seq_base is None else seq_base + SLOT_IDENTITY,
                )
                st.identity, st.identity_t_ms = ident, t_ms
                sent += 1
        if ac.position_t_s is not None and ac.lat_deg is not None and ac.lon_deg is not None:
            t_ms = _t_ms(ac.position_t_s)
            last = st.position_t_ms
            if last is None or (t_ms > last and t_ms - last >= self.min_interval_ms):
                icao = _icao_text(ac)
                alt, ref = self._alt(ac)
                self._send(
                    Event(
                        id=f"adsb:{icao}:{t_ms}", src=self.src, kind="aircraft.position",
                        t=t_ms, rx=self.clock_ms(), lat=ac.lat_deg, lon=ac.lon_deg, alt=alt,
                        alt_ref=ref, station=self.station, data=self._position_data(ac, icao),
                    ),
                    None if seq_base is None else seq_base + SLOT_POSITION,
                )
                st.position_t_ms = t_ms
                sent += 1
        return sent

    @staticmethod
    def _position_data(ac: AircraftView, icao: str) -> dict[str, object]:
        return {
            "icao": icao,
            "callsign": ac.callsign,
            "squawk": ac.squawk,
            "alt_baro_m": _opt(ft_to_m(ac.altitude_ft), 1),
            "alt_geom_m": _opt(ac.gnss_height_m, 1),
            "speed_mps": _opt(ac.speed_mps, 2),
            "track_deg": _opt(ac.track_deg, 2),
            "vrate_mps": _opt(ac.vrate_mps, 2),
            "rssi_db": _opt(ac.signal_level, 1),
            "msgs": ac.messages,
            "category": ac.category,
        }

    def raw(self, ac: AircraftView, msg: bytes, t_s: float, timestamp_12mhz: int | None,
            rssi_db: float | None, seq_base: int | None = None) -> None:
        """Publish one accepted message as ``aircraft.raw`` (when `raw_stream` is on)."""
        if not self.raw_stream:
            return
        icao = _icao_text(ac)
        t_us = math.floor(t_s * 1e6 + 0.5)
        lat, lon, alt, ref = self._where(ac)
        self._send(
            Event(
                id=f"adsb:{icao}:{t_us}:raw", src=self.src, kind="aircraft.raw",
                t=t_us // 1000, rx=self.clock_ms(), lat=lat, lon=lon, alt=alt, alt_ref=ref,
                station=self.station,
                data={"icao": icao, "hex": msg.hex(), "df": downlink_format(msg[0]),
                      "t_us": t_us, "timestamp_12mhz": timestamp_12mhz, "rssi_db":
                      _opt(rssi_db, 1)},
            ),
            None if seq_base is None else seq_base + SLOT_RAW,
        )


def source_publisher(name: str, cfg: Mapping[str, Any], station: Station) -> AircraftPublisher:
    """The publisher of an ADS-B source: receiver at `receiver_lat`/`receiver_lon` (default
    the station's), `min_interval_s` and `raw_stream` from its config. Its emitter is
    set by the source's `run` (publishing before that raises RuntimeError)."""
    lat = cfg["receiver_lat"] if cfg["receiver_lat"] is not None else station.lat
    lon = cfg["receiver_lon"] if cfg["receiver_lon"] is not None else station.lon
    return AircraftPublisher(
        name, station.id, (float(lat), float(lon)), _unset_emit,
        min_interval_s=float(cfg["min_interval_s"]),
        raw_stream=bool(cfg.get("raw_stream", False)),
    )


def _unset_emit(event: Event, *, seq: int | None = None, memo: tuple[str, str] | None = None,
                producer: str | None = None) -> None:
    raise RuntimeError(f"{event.src}: the source's run sets the emitter before publishing")


@dataclass
class TrackerStats:
    """Counts since start (also exported as metrics)."""

    messages: int = 0
    repaired: int = 0
    rejected: int = 0
    undecodable: int = 0
    positions: int = 0
    max_range_m: float = 0.0
    by_df: dict[int, int] = field(default_factory=dict)


class ModeSTracker:
    """Mode S messages -> AircraftTable -> AircraftPublisher, with metrics per source.

    Frames from the IQ receiver arrive checked (`handle_checked`); frames from feeds go
    through `check_frame` first with repair off (`handle_frame`): upstream decoders
    already repaired what they trust, and the address policy keeps phantoms out.
    """

    def __init__(
        self,
        name: str,
        publisher: AircraftPublisher,
        metrics: Metrics,
        *,
        max_range_m: float,
        book: AddressBook | None = None,
    ) -> None:
        self.name = name
        self.publisher = publisher
        self.metrics = metrics
        self.receiver = publisher.receiver
        self.table = AircraftTable(*self.receiver, max_range_m=max_range_m)
        self.book = book if book is not None else AddressBook()
        self.stats = TrackerStats()
        self._next_expire_s = -math.inf

    def handle_frame(self, msg: bytes, t_s: float, rssi_db: float | None,
                     timestamp_12mhz: int | None = None) -> None:
        """Check, decode and apply one frame from a feed (2-byte Mode A/C is ignored)."""
        frame = check_frame(msg, self.book, t_s, max_fix_bits=0)
        if frame is None:
            self.stats.rejected += 1
            self.metrics.inc("adsb_frames_rejected_total", source=self.name)
            return
        self.handle_checked(frame.msg, frame.icao, frame.corrected_bits, t_s, rssi_db,
                            timestamp_12mhz=timestamp_12mhz)

    def handle_checked(self, msg: bytes, icao: int, corrected_bits: int, t_s: float,
                       rssi_db: float | None, *, seq_base: int | None = None,
                       timestamp_12mhz: int | None = None) -> None:
        """Decode and apply one trusted frame received at `t_s` (epoch seconds)."""
        try:
            decoded: DecodedMessage = decode(msg, icao)
        except DecodeError:
            self.stats.undecodable += 1
            self.metrics.inc("adsb_undecodable_total", source=self.name)
            return
        st = self.stats
        st.messages += 1
        st.by_df[decoded.df] = st.by_df.get(decoded.df, 0) + 1
        self.metrics.inc("adsb_messages_total", source=self.name, df=str(decoded.df))
        if corrected_bits:
            st.repaired += 1
            self.metrics.inc("adsb_repaired_total", source=self.name)
        changes = self.table.update(decoded, t_s, rssi_db)
        ac = self.table[decoded.address]
        if "position" in changes and ac.lat_deg is not None and ac.lon_deg is not None:
            st.positions += 1
            range_m = distance_m(*self.receiver, ac.lat_deg, ac.lon_deg)
            if range_m > st.max_range_m:
                st.max_range_m = range_m
                self.metrics.set("adsb_max_range_m", round(range_m), source=self.name)
        self.publisher.update(ac, seq_base)
        self.publisher.raw(ac, msg, t_s, timestamp_12mhz, rssi_db, seq_base)
        self.expire(t_s)

    def expire(self, t_s: float) -> None:
        """Drop aircraft not heard for the table's ttl (checked every 10 s of message time)."""
        if t_s < self._next_expire_s:
            return
        self._next_expire_s = t_s + _EXPIRE_EVERY_S
        for icao in self.table.expire(t_s):
            self.publisher.forget(icao)
        self.metrics.set("adsb_aircraft", len(self.table), source=self.name)


@dataclass
class SbsAircraft:
    """Aircraft state built from SBS lines (positions arrive decoded)."""

    icao: int
    last_seen_s: float
    messages: int = 0
    signal_level: float | None = None
    callsign: str | None = None
    category: str | None = None
    squawk: str | None = None
    emergency: str | None = None
    altitude_ft: int | None = None
    gnss_height_m: float | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    position_t_s: float | None = None
    speed_kt: float | None = None
    track_deg: float | None = None
    vrate_fpm: int | None = None

    @property
    def speed_mps(self) -> float | None:
        return kt_to_mps(self.speed_kt)

    @property
    def vrate_mps(self) -> float | None:
        return fpm_to_mps(self.vrate_fpm)


class SbsTracker:
    """SBS messages -> SbsAircraft -> AircraftPublisher; positions beyond
    `max_range_m` of the receiver are dropped and counted."""

    def __init__(self, name: str, publisher: AircraftPublisher, metrics: Metrics, *,
                 max_range_m: float, ttl_s: float = 300.0) -> None:
        self.name = name
        self.publisher = publisher
        self.metrics = metrics
        self.max_range_m = max_range_m
        self.ttl_s = ttl_s
        self.aircraft: dict[int, SbsAircraft] = {}
        self.max_range_seen_m = 0.0
        self._next_expire_s = -math.inf

    def handle(self, msg: SbsMessage, t_s: float) -> None:
        """Apply one MSG line received (or generated) at `t_s` epoch seconds."""
        ac = self.aircraft.get(msg.icao)
        if ac is None:
            ac = self.aircraft[msg.icao] = SbsAircraft(msg.icao, t_s)
        ac.last_seen_s = max(ac.last_seen_s, t_s)
        ac.messages += 1
        self.metrics.inc("adsb_messages_total", source=self.name, df=f"sbs{msg.transmission}")
        for name in ("callsign", "squawk", "altitude_ft", "speed_kt", "track_deg", "vrate_fpm"):
            value = getattr(msg, name)
            if value is not None:
                setattr(ac, name, value)
        if msg.emergency is not None:
            ac.emergency = "emergency" if msg.emergency else None
        if msg.lat_deg is not None and msg.lon_deg is not None:
            range_m = distance_m(*self.publisher.receiver, msg.lat_deg, msg.lon_deg)
            if range_m > self.max_range_m:
                self.metrics.inc("adsb_positions_rejected_total", source=self.name)
            else:
                ac.lat_deg, ac.lon_deg, ac.position_t_s = msg.lat_deg, msg.lon_deg, t_s
                if range_m > self.max_range_seen_m:
                    self.max_range_seen_m = range_m
                    self.metrics.set("adsb_max_range_m", round(range_m), source=self.name)
        self.publisher.update(ac)
        if t_s >= self._next_expire_s:
            self._next_expire_s = t_s + _EXPIRE_EVERY_S
            for icao in [a.icao for a in self.aircraft.values()
                         if t_s - a.last_seen_s > self.ttl_s]:
                del self.aircraft[icao]
                self.publisher.forget(icao)
            self.metrics.set("adsb_aircraft", len(self.aircraft), source=self.name)
