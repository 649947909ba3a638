"""USGS earthquakes: the `usgs` source type (see README.md beside this file).

Modules:
    feed      pure parsing of GeoJSON (summary feeds and FDSN pages) into quake Events
    poller    feed polling: conditional GETs, max-age (HTTP GET with retries, backoff and
              Retry-After is daemon.sources.http_poll, shared with sondehub)
    source    the polling source, the dedupe shared with the backfill
    fdsn      the FDSN event-service client used by ``geosensord backfill usgs``

Config (every key, with its default)::

    [sources.quakes]
    type = "usgs"
    url = "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson"
    interval = 60          # s between polls; raised to the feed's Cache-Control max-age
    timeout_s = 10         # per HTTP request
    retries = 3            # extra attempts per poll on errors, timeouts, 5xx, 429
    backoff_max_s = 300    # cap of the retry backoff and of the failed-poll slowdown
    min_magnitude = 2.5    # optional; quakes without a magnitude are then dropped
    radius_km = 500        # 0 = everywhere; else only quakes this close to the centre
    center_lat = -30.03    # optional; both default to the [station] location
    center_lon = -51.23
    include_types = ["earthquake"]   # optional; [] = every type (quarry blast, explosion …)
"""

from __future__ import annotations

from typing import Any

from daemon.config import Field, between, non_empty, positive
from daemon.sources.base import SourceContext
from daemon.sources.usgs.source import UsgsSource

__all__ = ["DEFAULT_URL", "FIELDS", "UsgsSource", "build"]

DEFAULT_URL = "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson"


def _type_names(value: Any) -> str | None:
    """A check for `include_types`: a list of non-empty strings."""
    if not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of non-empty strings, e.g. [\"earthquake\"]"
    return None


FIELDS: dict[str, Field] = {
    "url": Field((str,), default=DEFAULT_URL, check=non_empty,
                 doc="GeoJSON feed: https URL, file:// URL or a path (relative to the config)"),
    "interval": Field((float,), default=60.0, check=positive,
                      doc="seconds between polls; never below the feed's Cache-Control max-age"),
    "timeout_s": Field((float,), default=10.0, check=between(0.1, 600),
                       doc="seconds per HTTP request"),
    "retries": Field((int,), default=3, check=between(0, 20),
                     doc="extra attempts per poll on errors, timeouts, 5xx and 429"),
    "backoff_max_s": Field((float,), default=300.0, check=between(1, 86_400),
                           doc="cap of the retry backoff and of the failed-poll slowdown"),
    "min_magnitude": Field((float,), default=None, check=between(-3, 11),
                           doc="publish only quakes of at least this magnitude"),
    "radius_km": Field((float,), default=0.0, check=between(0, 20_040),
                       doc="publish only quakes within this distance of the centre; 0 = all"),
    "center_lat": Field((float,), default=None, check=between(-90, 90),
                        doc="centre of the radius filter; default the station latitude"),
    "center_lon": Field((float,), default=None, check=between(-180, 180),
                        doc="centre of the radius filter; default the station longitude"),
    "include_types": Field((list,), default=[], check=_type_names,
                           doc="event types to publish (e.g. [\"earthquake\"]); [] = all"),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> UsgsSource:
    """Factory used by the source registry."""
    return UsgsSource(name, cfg, ctx)
