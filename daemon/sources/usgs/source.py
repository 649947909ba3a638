"""The `usgs` source: polls a summary feed and publishes each new quake version once.

Poll loop (``run``)::

    load memo (eventid -> updated) from Redis ──► poll ──► parse ──► filter ──► dedupe ──► emit
                                                   ▲                                        │
                                                   └── wait max(interval, max-age) ◄────────┘
                                                       (failed polls: doubled, up to backoff_max_s)

Dedupe: a quake is published when its `updated` is newer than the one remembered
for its id (a first sighting included). The remembered version is written to the
producer's memo hash in Redis in the same atomic step as the stream entries
(``emit(event, memo=(eventid, str(updated)))``), so after a restart nothing is
published twice. An *older* `updated` than the remembered one (a stale CDN copy
of the feed) is ignored and counted, so versions never go backwards.

Backfills (`geosensord backfill usgs`) publish under the producer
``<station>:<source>:backfill`` (their own sequence, so a backfill running beside
the daemon cannot advance the live producer's offset) and both sides load both
memo hashes at start, so neither republishes what the other already published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.event import now_ms
from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.sources.base import SourceContext
from daemon.sources.http_poll import FetchAborted, FetchError, HttpFetcher, PollingSource, Wait
from daemon.sources.usgs.feed import DocumentError, FeatureError, Quake, QuakeFilter, parse_feed
from daemon.sources.usgs.poller import USER_AGENT, FeedPoller

BACKFILL_SUFFIX = ":backfill"


def backfill_producer(live_producer: str) -> str:
    """The producer key a backfill for the live producer `live_producer` publishes under."""
    return live_producer + BACKFILL_SUFFIX


def load_known(memo: Callable[[str], dict[str, str]], producers: list[str]) -> dict[str, int]:
    """Merge the memo hashes of `producers` into eventid -> newest updated (epoch ms)."""
    known: dict[str, int] = {}
    for producer in producers:
        for eventid, value in memo(producer).items():
            try:
                updated_ms = int(value)
            except ValueError:
                continue
            if updated_ms > known.get(eventid, -1):
                known[eventid] = updated_ms
    return known


def quake_filter(cfg: Mapping[str, Any], station_lat: float, station_lon: float) -> QuakeFilter:
    """The filter a usgs source config describes (centre defaults to the station)."""
    lat, lon = cfg.get("center_lat"), cfg.get("center_lon")
    if (lat is None) != (lon is None):
        raise ValueError("center_lat and center_lon must be given together")
    return QuakeFilter(
        min_magnitude=cfg.get("min_magnitude"),
        radius_km=float(cfg.get("radius_km") or 0.0),
        center_lat=station_lat if lat is None else float(lat),
        center_lon=station_lon if lon is None else float(lon),
        include_types=frozenset(cfg.get("include_types") or ()),
    )


@dataclass
class PublishStats:
    """What one document (or one backfill page) did, for logs and tests."""

    features: int = 0
    published: int = 0
    known: int = 0
    stale: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    bad: int = 0

    def add(self, other: PublishStats) -> None:
        """Accumulate `other` into this one."""
        self.features += other.features
        self.published += other.published
        self.known += other.known
        self.stale += other.stale
        self.bad += other.bad
        for reason, n in other.filtered.items():
            self.filtered[reason] = self.filtered.get(reason, 0) + n


class QuakePublisher:
    """Filter + dedupe + emit, shared by the live source and the backfill command."""

    def __init__(
        self,
        name: str,
        qfilter: QuakeFilter,
        known: dict[str, int],
        metrics: Metrics,
        count_bad: Callable[[str, str], None],
    ) -> None:
        self.name = name
        self.filter = qfilter
        self.known = known
        self.metrics = metrics
        self.count_bad = count_bad

    def publish(self, raw: bytes, emit: Emit, *, station: str, rx_ms: int) -> PublishStats:
        """Parse a document and emit every new quake version; raises DocumentError."""
        result = parse_feed(raw, src=self.name, station=station, rx_ms=rx_ms)
        stats = PublishStats(features=len(result.quakes) + len(result.errors))
        for err in result.errors:
            self._bad(err)
            stats.bad += 1
        for quake in result.quakes:
            self.offer(quake, emit, stats)
        return stats

    def offer(self, quake: Quake, emit: Emit, stats: PublishStats) -> None:
        """Emit `quake` unless filtered out or already published in this or a newer version."""
        reason = self.filter.rejects(quake)
        if reason is not None:
            stats.filtered[reason] = stats.filtered.get(reason, 0) + 1
            self.metrics.inc("usgs_filtered_total", source=self.name, reason=reason)
            return
        previous = self.known.get(quake.eventid)
        if previous is not None and quake.updated_ms <= previous:
            if quake.updated_ms < previous:
                stats.stale += 1
                self.metrics.inc("usgs_stale_versions_total", source=self.name)
            else:
                stats.known += 1
            return
        emit(quake.event, memo=(quake.eventid, str(quake.updated_ms)))
        self.known[quake.eventid] = quake.updated_ms
        stats.published += 1

    def _bad(self, err: FeatureError) -> None:
        self.count_bad(err.reason, str(err))


class UsgsSource(PollingSource):
    """Polls a USGS GeoJSON summary feed; see the module docstring."""

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
        self.filter = quake_filter(cfg, ctx.station.lat, ctx.station.lon)
        self.poller = FeedPoller(str(cfg["url"]), self.fetcher, lambda p: ctx.resolve(p))
        self.publisher: QuakePublisher | None = None
        self.last_stats = PublishStats()

    # -- timing -------------------------------------------------------------
    @property
    def effective_interval_s(self) -> float:
        """Seconds between polls: the configured interval, never below the feed's max-age."""
        return max(self.interval_s, self.max_age_s or 0.0)

    # -- the loop -----------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Poll until `stop` is set; with `once`, exactly one poll (with its retries)."""
        self._stop = stop
        try:
            producers = [self.producer, backfill_producer(self.producer)]
            known = self.load_memo(lambda: load_known(self.ctx.memo, producers), self._wait,
                                   once, "what was published")
            if known is None:
                return
            self.publisher = QuakePublisher(self.name, self.filter, known, self.ctx.metrics,
                                            self.count_bad)
            self.log.info("%s: %d quake versions remembered; polling %s every %.0f s",
                          self.name, len(known), self.poller.url, self.effective_interval_s)
            self.poll_until_stopped(emit, once)
        finally:
            self.fetcher.close()

    def poll(self, emit: Emit) -> PublishStats:
        """One poll: fetch, parse and publish. Failures are logged and counted, not raised."""
        assert self.publisher is not None, "run() loads the memo first"
        metrics, name = self.ctx.metrics, self.name
        rx_ms = now_ms()
        started = time.monotonic()
        try:
            resp = self.poller.fetch()
        except FetchAborted:
            return PublishStats()
        except FetchError as exc:
            self.failed_polls += 1
            metrics.inc("usgs_poll_errors_total", reason="fetch", source=name)
            self.bad_input.warning("fetch", "%s: poll failed: %s", self.name, exc)
            return PublishStats()
        if resp.max_age_s is not None and resp.max_age_s != self.max_age_s:
            if resp.max_age_s > self.interval_s:
                self.log.info("%s: feed max-age %.0f s is above interval %.0f s; "
                              "polling every %.0f s",
                              self.name, resp.max_age_s, self.interval_s, resp.max_age_s)
            self.max_age_s = resp.max_age_s
        metrics.inc("usgs_polls_total", source=name)
        if resp.body is None:
            self.failed_polls = 0
            metrics.inc("usgs_not_modified_total", source=name)
            return PublishStats()
        try:
            stats = self.publisher.publish(resp.body, emit, station=self.ctx.station.id,
                                           rx_ms=rx_ms)
        except DocumentError as exc:
            self.failed_polls += 1
            # Re-fetch the whole document next time rather than a 304 for the bad one.
            self.poller.forget_validators()
            metrics.inc("usgs_poll_errors_total", reason="document", source=name)
            self.count_bad("malformed_document", f"{self.poller.url}: {exc}")
            return PublishStats()
        self.failed_polls = 0
        self.last_stats = stats
        metrics.set("usgs_last_poll_features", stats.features, source=name)
        self.log.debug("%s: %d features, %d published, %d known, %d filtered, %d bad in %.2f s",
                       self.name, stats.features, stats.published, stats.known,
                       sum(stats.filtered.values()), stats.bad, time.monotonic() - started)
        return stats
