"""The Event model (stream contract v1, design §2).

An Event is one located observation. It is immutable; its `id` is deterministic
(the same observation always gets the same id), e.g. ``usgs:us6000ip57:1664420000000``.

Fields and units:
    id       str    deterministic unique id, ``<source kind>:<natural key>[:<version>]``
    src      str    configured source name (``[sources.<name>]``)
    kind     str    ``quake``, ``aircraft.position``, ``sonde.telemetry``, ``sensor.reading`` …
    t        int    event time, UTC epoch milliseconds
    rx       int    receive time at this station, UTC epoch milliseconds
    lat, lon float  WGS84 degrees
    alt      float | None  metres; reference in ``alt_ref`` (``msl``, ``ellipsoid``, ``depth``)
    station  str    configured station id
    data     dict   source-specific fields, SI units, names with units (``speed_mps``)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

ALT_REFS = ("msl", "ellipsoid", "depth", "ground")


class EventError(ValueError):
    """An Event that breaks the contract; `field` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def now_ms() -> int:
    """Current UTC time as epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """One located observation; see the module docstring for fields and units."""

    id: str
    src: str
    kind: str
    t: int
    rx: int
    lat: float
    lon: float
    alt: float | None
    station: str
    data: dict[str, Any] = field(default_factory=dict)
    alt_ref: str = "msl"

    def __post_init__(self) -> None:
        if not self.id:
            raise EventError("id", "must not be empty")
        if not (isinstance(self.lat, int | float) and -90.0 <= self.lat <= 90.0):
            raise EventError("lat", f"{self.lat!r} is not a latitude in [-90, 90]")
        if not (isinstance(self.lon, int | float) and -180.0 <= self.lon <= 180.0):
            raise EventError("lon", f"{self.lon!r} is not a longitude in [-180, 180]")
        if self.alt is not None and not math.isfinite(self.alt):
            raise EventError("alt", f"{self.alt!r} is not finite")
        if self.alt_ref not in ALT_REFS:
            raise EventError("alt_ref", f"{self.alt_ref!r} is not one of {', '.join(ALT_REFS)}")

    def to_record(self) -> dict[str, Any]:
        """The JSON-lines form (what the jsonl sink writes and the jsonl source reads)."""
        return {
            "id": self.id,
            "src": self.src,
            "kind": self.kind,
            "t": self.t,
            "rx": self.rx,
            "lat": self.lat,
            "lon": self.lon,
            "alt": self.alt,
            "alt_ref": self.alt_ref,
            "station": self.station,
            "data": self.data,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Event:
        """Build an Event from its JSON-lines form; raises EventError naming a bad field."""
        try:
            return cls(
                id=str(rec["id"]),
                src=str(rec["src"]),
                kind=str(rec["kind"]),
                t=int(rec["t"]),
                rx=int(rec.get("rx", rec["t"])),
                lat=float(rec["lat"]),
                lon=float(rec["lon"]),
                alt=None if rec.get("alt") is None else float(rec["alt"]),
                station=str(rec.get("station", "")),
                data=dict(rec.get("data") or {}),
                alt_ref=str(rec.get("alt_ref", "msl")),
            )
        except KeyError as exc:
            raise EventError(str(exc.args[0]), "missing") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, EventError):
                raise
            raise EventError("record", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Sequenced:
    """An Event as it travels from a source to the sink.

    `producer` and `seq` make the write idempotent: the sink writes the event only if
    `seq` is above the producer's committed offset, and advances it in the same atomic
    step. `memo` (field, value) is recorded in the producer's memo hash in that same
    step, so a source can remember what it published (e.g. USGS id -> updated).
    """

    producer: str
    seq: int
    event: Event
    memo: tuple[str, str] | None = None
