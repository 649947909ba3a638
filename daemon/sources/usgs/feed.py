"""Pure parsing of USGS earthquake GeoJSON into `quake` Events, and the quake filters.

The same format comes from the summary feeds (``…/feed/v1.0/summary/all_hour.geojson``)
and from the FDSN event service (``…/fdsnws/event/1/query?format=geojson``)::

    {"type": "FeatureCollection",
     "metadata": {"generated": <ms>, "url": "…", "title": "…", "status": 200,
                  "api": "1.10.3", "count": <n>, ["limit": <n>, "offset": <n>]},
     "features": [
       {"type": "Feature",
        "id": "us6000ip57",                    preferred event id (= net + code)
        "properties": {
          "mag": 6.8 | null,                   magnitude, of type `magType` (ml, md, mb, mww …)
          "place": "…", "title": "M 6.8 - …",
          "time": <epoch ms>,                  origin time
          "updated": <epoch ms>,               last change; a new version keeps the id
          "tz": <minutes from UTC> | null,
          "url": "…/eventpage/<id>", "detail": "…",
          "felt": int | null,                  DYFI responses
          "cdi": float | null, "mmi": float | null,   intensities (DYFI, ShakeMap)
          "alert": "green" | "yellow" | "orange" | "red" | null,   PAGER
          "status": "automatic" | "reviewed" | "deleted"    (older feeds: "REVIEWED")
          "tsunami": 0 | 1,                    (very old feeds: null)
          "sig": int,                          significance 0..1000+
          "net": "us", "code": "6000ip57",
          "ids": ",pt22272001,at00riyb5m,us6000ip57,",   comma-joined, leading/trailing ","
          "sources": ",pt,at,us,", "types": ",origin,phase-data,…,",
          "nst": int | null, "dmin": <deg> | null, "rms": <s> | null, "gap": <deg> | null,
          "magType": "mww", "type": "earthquake" | "quarry blast" | "explosion" | …},
        "geometry": {"type": "Point", "coordinates": [<lon deg>, <lat deg>, <depth km>]}},
       …],
     "bbox": [minlon, minlat, mindepth, maxlon, maxlat, maxdepth]}

One feature becomes one Event:

    id      ``usgs:<id>:<updated>``        (a new `updated` is a new event)
    kind    ``quake``, or ``quake.deleted`` when status is "deleted" (FDSN includedeleted)
    t       properties.time (epoch ms);  rx: when this station received the document
    lat/lon geometry.coordinates[1], [0]
    alt     -depth_km * 1000 (metres, up positive: 10 km deep is -10000), alt_ref "depth".
            USGS measures depth from a datum that depends on the network (the WGS84
            geoid, mean sea level, or the average station elevation), so it is *not*
            tagged "msl"; `data.depth_km` keeps the value as published. Null depth: alt None.
    data    eventid, mag, mag_type, place, status (lower-case), tsunami (bool | None),
            sig, net, code, ids, sources, types (lists), type, felt, cdi, mmi, alert,
            url, depth_km, updated (epoch ms), title, nst, dmin_deg, rms_s, gap_deg, tz_min.
            Nulls stay null (JSON null).

Error family::

    FeedError(ValueError)          anything this module rejects
    ├── DocumentError              the whole document: not JSON, not a FeatureCollection
    └── FeatureError               one feature; `.reason` (metric label) and `.field`
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from daemon.event import Event
from daemon.s2index import distance_km

__all__ = [
    "DocumentError",
    "FeatureError",
    "FeedError",
    "FeedResult",
    "Quake",
    "QuakeFilter",
    "parse_document",
    "parse_feature",
    "parse_feed",
]

KIND_QUAKE = "quake"
KIND_DELETED = "quake.deleted"
ALT_REF = "depth"


class FeedError(ValueError):
    """Something in a USGS GeoJSON document that cannot be used."""


class DocumentError(FeedError):
    """The document as a whole is unusable (not JSON, not a FeatureCollection)."""


class FeatureError(FeedError):
    """One feature is malformed; `reason` is a short metric label, `field` the culprit."""

    def __init__(self, reason: str, field_name: str, message: str, eventid: str = "") -> None:
        where = f" ({eventid})" if eventid else ""
        super().__init__(f"{field_name}: {message}{where}")
        self.reason = reason
        self.field = field_name
        self.eventid = eventid


@dataclass(frozen=True, slots=True)
class Quake:
    """One parsed feature: its USGS id and version, magnitude and type, and its Event."""

    eventid: str
    updated_ms: int
    mag: float | None
    type: str | None
    event: Event

    @property
    def deleted(self) -> bool:
        """True for an FDSN ``status: deleted`` feature."""
        return self.event.kind == KIND_DELETED


@dataclass
class FeedResult:
    """A parsed document: the good features, the malformed ones, and its metadata."""

    quakes: list[Quake] = field(default_factory=list)
    errors: list[FeatureError] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_document(raw: bytes | str) -> tuple[list[Any], dict[str, Any]]:
    """The features list and metadata of a GeoJSON FeatureCollection; raises DocumentError."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocumentError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise DocumentError(f"not a GeoJSON FeatureCollection (type {found!r})")
    features = doc.get("features")
    if not isinstance(features, list):
        raise DocumentError("FeatureCollection without a 'features' array")
    metadata = doc.get("metadata")
    return features, metadata if isinstance(metadata, dict) else {}


def parse_feed(raw: bytes | str, *, src: str, station: str, rx_ms: int) -> FeedResult:
    """Parse a whole document; malformed features are collected, not raised.

    Raises DocumentError when the document itself is unusable.
    """
    features, metadata = parse_document(raw)
    result = FeedResult(metadata=metadata)
    for feature in features:
        try:
            result.quakes.append(parse_feature(feature, src=src, station=station, rx_ms=rx_ms))
        except FeatureError as exc:
            result.errors.append(exc)
    return result


def parse_feature(feature: Any, *, src: str, station: str, rx_ms: int) -> Quake:
    """One GeoJSON feature as a Quake; raises FeatureError naming the bad field."""
    if not isinstance(feature, dict):
        raise FeatureError("not_a_feature", "feature", f"is a {type(feature).__name__}")
    eventid = feature.get("id")
    if not isinstance(eventid, str) or not eventid.strip():
        raise FeatureError("missing_id", "id", f"missing or not a string: {eventid!r}")
    if any(c.isspace() or c == ":" for c in eventid):
        # The id becomes part of the Event id `usgs:<id>:<updated>` and a memo key.
        raise FeatureError("bad_id", "id", f"{eventid!r} contains ':' or whitespace")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise FeatureError("missing_properties", "properties", "missing or not an object", eventid)
    time_ms = _epoch_ms(props.get("time"))
    if time_ms is None:
        raise FeatureError("bad_time", "properties.time",
                           f"{props.get('time')!r} is not epoch milliseconds", eventid)
    updated_ms = _epoch_ms(props.get("updated"))
    if updated_ms is None:
        raise FeatureError("bad_updated", "properties.updated",
                           f"{props.get('updated')!r} is not epoch milliseconds", eventid)
    lon, lat, depth_km = _coordinates(feature.get("geometry"), eventid)

    status = _text(props.get("status"))
    status = status.lower() if status is not None else None
    tsunami = props.get("tsunami")
    mag = _number(props.get("mag"))
    quake_type = _text(props.get("type"))
    data: dict[str, Any] = {
        "eventid": eventid,
        "mag": mag,
        "mag_type": _text(props.get("magType")),
        "place": _text(props.get("place")),
        "status": status,
        "tsunami": None if tsunami is None else bool(_number(tsunami)),
        "sig": _integer(props.get("sig")),
        "net": _text(props.get("net")),
        "code": _text(props.get("code")),
        "ids": _comma_list(props.get("ids")),
        "sources": _comma_list(props.get("sources")),
        "types": _comma_list(props.get("types")),
        "type": quake_type,
        "felt": _integer(props.get("felt")),
        "cdi": _number(props.get("cdi")),
        "mmi": _number(props.get("mmi")),
        "alert": _text(props.get("alert")),
        "url": _text(props.get("url")),
        "depth_km": depth_km,
        "updated": updated_ms,
        "title": _text(props.get("title")),
        "nst": _integer(props.get("nst")),
        "dmin_deg": _number(props.get("dmin")),
        "rms_s": _number(props.get("rms")),
        "gap_deg": _number(props.get("gap")),
        "tz_min": _integer(props.get("tz")),
    }
    event = Event(
        id=f"usgs:{eventid}:{updated_ms}",
        src=src,
        kind=KIND_DELETED if status == "deleted" else KIND_QUAKE,
        t=time_ms,
        rx=rx_ms,
        lat=lat,
        lon=lon,
        alt=None if depth_km is None else -depth_km * 1000.0,
        station=station,
        data=data,
        alt_ref=ALT_REF,
    )
    return Quake(eventid, updated_ms, mag, quake_type, event)


@dataclass(frozen=True)
class QuakeFilter:
    """Which quakes a source publishes.

    `min_magnitude`: quakes below it, or without a magnitude, are rejected (None: all).
    `radius_km` > 0: only quakes within that great-circle distance of
    (`center_lat`, `center_lon`) in degrees. `include_types`: when not empty, only
    these `type` values (e.g. "earthquake", leaving out "quarry blast").
    Deleted events pass the type and magnitude tests (a deletion must reach
    consumers that saw the event) but not the radius test.
    """

    min_magnitude: float | None = None
    radius_km: float = 0.0
    center_lat: float = 0.0
    center_lon: float = 0.0
    include_types: frozenset[str] = frozenset()

    def rejects(self, quake: Quake) -> str | None:
        """Why `quake` is filtered out (a metric label), or None when it passes."""
        if self.radius_km > 0:
            d_km = distance_km(self.center_lat, self.center_lon, quake.event.lat, quake.event.lon)
            if d_km > self.radius_km:
                return "radius"
        if quake.deleted:
            return None
        if self.min_magnitude is not None and (quake.mag is None or quake.mag < self.min_magnitude):
            return "magnitude"
        if self.include_types and quake.type not in self.include_types:
            return "type"
        return None


# -- value coercion: the feeds are loose about types, so are we (within reason) -----
def _number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for null or junk."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _integer(value: Any) -> int | None:
    """An int from an integral number or numeric string ("449" in old feeds); else None."""
    num = _number(value)
    return int(num) if num is not None and num == int(num) else None


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from an integral JSON number (not bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value == int(value)):
        return None
    return int(value)


def _text(value: Any) -> str | None:
    """A string, or None for null; other JSON types become their text."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _comma_list(value: Any) -> list[str]:
    """",a,b," -> ["a", "b"] (null -> [])."""
    if not isinstance(value, str):
        return []
    return [part for part in value.split(",") if part]


def _coordinates(geometry: Any, eventid: str) -> tuple[float, float, float | None]:
    """(lon_deg, lat_deg, depth_km or None) from a GeoJSON Point; raises FeatureError."""
    if not isinstance(geometry, dict):
        raise FeatureError("missing_geometry", "geometry", "missing or not an object", eventid)
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise FeatureError("bad_coordinates", "geometry.coordinates",
                           f"{coords!r} is not [lon, lat, depth]", eventid)
    lon, lat = _number(coords[0]), _number(coords[1])
    if lon is None or lat is None or isinstance(coords[0], str) or isinstance(coords[1], str):
        raise FeatureError("bad_coordinates", "geometry.coordinates",
                           f"{coords[:2]!r} are not numbers", eventid)
    if not -90.0 <= lat <= 90.0:
        raise FeatureError("lat_out_of_range", "geometry.coordinates[1]",
                           f"latitude {lat!r} outside [-90, 90]", eventid)
    if not -180.0 <= lon <= 180.0:
        raise FeatureError("lon_out_of_range", "geometry.coordinates[0]",
                           f"longitude {lon!r} outside [-180, 180]", eventid)
    depth_km = None
    if len(coords) >= 3 and coords[2] is not None:
        depth_km = _number(coords[2])
        if depth_km is None or isinstance(coords[2], str):
            raise FeatureError("bad_coordinates", "geometry.coordinates[2]",
                               f"depth {coords[2]!r} is not a number", eventid)
    return lon, lat, depth_km
