"""Client of the FDSN event web service (USGS ComCat) for backfills.

Endpoints under the base URL (default https://earthquake.usgs.gov/fdsnws/event/1/)::

    count?format=geojson&<query>   ->  {"count": 1234, "maxAllowed": 20000}
                                       (a plain integer when format is not geojson)
    query?format=geojson&<query>&orderby=time-asc&limit=<n>
                                   ->  a FeatureCollection, as in `feed`; deleted events
                                       appear with status "deleted" (includedeleted=true)

    <query> = starttime=2022-09-28T00:00:00.000&endtime=2022-09-29T00:00:00.000
              &includedeleted=true [&updatedafter=…] [&minmagnitude=M]
              [&latitude=LAT&longitude=LON&maxradiuskm=KM]

Times are UTC without a zone suffix, millisecond precision; both ends are
inclusive. The service refuses a query matching more than 20 000 events, so a
window whose count is above `limit` is split in two halves ([s, m] and [m+1 ms, e],
so no instant is in both) until each fits; a page that still comes back full
(events arrived between count and query) is split and fetched again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from daemon.sources.http_poll import FetchError, HttpFetcher

__all__ = ["DEFAULT_BASE_URL", "FDSN_LIMIT", "FdsnClient", "FdsnPage", "FdsnQuery", "format_time"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://earthquake.usgs.gov/fdsnws/event/1/"
FDSN_LIMIT = 20_000


def format_time(t_ms: int) -> str:
    """Epoch milliseconds as the service's UTC time string, e.g. 2022-09-29T03:32:09.000."""
    dt = datetime.fromtimestamp(t_ms / 1000.0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}"


@dataclass(frozen=True)
class FdsnQuery:
    """One query window and its filters (times in epoch ms, both ends inclusive)."""

    start_ms: int
    end_ms: int
    min_magnitude: float | None = None
    region: tuple[float, float, float] | None = None  # lat_deg, lon_deg, radius_km
    updated_after_ms: int | None = None
    include_deleted: bool = True

    def params(self) -> dict[str, str]:
        """The query-string parameters (without format, orderby, limit)."""
        out = {
            "starttime": format_time(self.start_ms),
            "endtime": format_time(self.end_ms),
        }
        if self.include_deleted:
            out["includedeleted"] = "true"
        if self.updated_after_ms is not None:
            out["updatedafter"] = format_time(self.updated_after_ms)
        if self.min_magnitude is not None:
            out["minmagnitude"] = f"{self.min_magnitude:g}"
        if self.region is not None:
            lat, lon, radius_km = self.region
            out.update(latitude=f"{lat:g}", longitude=f"{lon:g}", maxradiuskm=f"{radius_km:g}")
        return out

    def split(self) -> tuple[FdsnQuery, FdsnQuery]:
        """Two halves that together cover this window exactly once."""
        mid = self.start_ms + (self.end_ms - self.start_ms) // 2
        return replace(self, end_ms=mid), replace(self, start_ms=mid + 1)


@dataclass(frozen=True)
class FdsnPage:
    """One fetched window: its query, the count the service gave, and the document."""

    query: FdsnQuery
    count: int
    body: bytes


class FdsnClient:
    """Counts and fetches FDSN windows, splitting them to stay under `limit`."""

    def __init__(self, fetcher: HttpFetcher, base_url: str = DEFAULT_BASE_URL,
                 limit: int = FDSN_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.fetcher = fetcher
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.limit = limit
        self.count_requests = 0
        self.query_requests = 0

    def count(self, query: FdsnQuery) -> int:
        """How many events match `query`; raises FetchError."""
        self.count_requests += 1
        url = self.base_url + "count"
        resp = self.fetcher.get(url, params={"format": "geojson", **query.params()})
        text = resp.text.strip()
        try:
            doc = json.loads(text)
            value = doc["count"] if isinstance(doc, dict) else doc
            return int(value)
        except (ValueError, KeyError, TypeError):
            raise FetchError(f"{url}: not a count: {text[:200]!r}") from None

    def fetch(self, query: FdsnQuery) -> bytes:
        """The GeoJSON document of one window (at most `limit` events)."""
        self.query_requests += 1
        params = {"format": "geojson", **query.params(), "orderby": "time-asc",
                  "limit": str(self.limit)}
        return self.fetcher.get(self.base_url + "query", params=params).content

    def pages(self, query: FdsnQuery, total: int | None = None) -> Iterator[FdsnPage]:
        """Every event of `query`, one window at a time, oldest window first.

        `total` is the count of the whole query when the caller already asked for it.
        """
        pending = [(query, self.count(query) if total is None else total)]
        while pending:
            window, n = pending.pop()
            if n > self.limit and window.end_ms > window.start_ms:
                first, second = window.split()
                # Stack: push the later half first so the earlier one is fetched first.
                pending.append((second, self.count(second)))
                pending.append((first, self.count(first)))
                continue
            if n == 0:
                yield FdsnPage(window, 0, b"")
                continue
            if n > self.limit:
                log.warning("FDSN window %s has %d events in one millisecond; only %d fetched",
                            format_time(window.start_ms), n, self.limit)
            body = self.fetch(window)
            # Only a page whose count was near the limit can have been truncated by
            # late arrivals; skip the extra parse for the others.
            near_limit = n >= self.limit - max(1, self.limit // 10)
            if near_limit and n < self.limit and window.end_ms > window.start_ms \
                    and _feature_count(body) >= self.limit:
                # Events arrived since the count: the page may be truncated, so re-split.
                log.info("FDSN window %s..%s grew past %d; splitting",
                         format_time(window.start_ms), format_time(window.end_ms), self.limit)
                pending.append((window, self.limit + 1))
                continue
            yield FdsnPage(window, n, body)


def _feature_count(body: bytes) -> int:
    """The number of features in a document (0 when unreadable: the parser reports that)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return 0
    features = doc.get("features") if isinstance(doc, dict) else None
    return len(features) if isinstance(features, list) else 0
