"""The viewer's web application (Starlette, served by uvicorn).

Routes::

    GET /                      the page (static/index.html)
    GET /static/…              JS, CSS, the world outline (no CDN: all served here)
    GET /api/config            station, receivers, sources, cell level, tiles, backfill
    GET /api/stream            Server-Sent Events: `subscription`, `backfill`…, `ready`,
                               then `events` batches (see feed.py); query:
                               region=circle:LAT,LON,KM | rect:S,W,N,E, minutes=N
    GET /api/cells?tokens=a,b  true S2 corners of cells: {token: [[lat, lon] x4]}
    GET /api/stats             per-source rates, receiver statistics, daemon metrics
    GET /api/range             range outlines of every ADS-B receiver (24 h, all time)
    GET /api/timemap?src=NAME  time-map points of a source (kind=…, count=…)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from daemon.viewer.cluster import ClusterStreams, StreamsClient
from daemon.viewer.feed import StreamFeed, Subscription, ViewEvent
from daemon.viewer.regions import RegionError, cell_vertices, parse_region
from daemon.viewer.sse import sse_comment, sse_frame, sse_retry
from daemon.viewer.stats import StatsBook, follow_stats, scrape_metrics
from daemon.viewer.timemap import time_map
from sinks.redis_connection import RedisOptions
from sinks.redis_streams import StreamKeys

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
ADSB_TYPES = frozenset({"adsb", "beast", "raw", "sbs"})
BACKFILL_CHUNK = 500


@dataclass
class ViewerSettings:
    """What the viewer needs from the daemon's config, and its own knobs."""

    prefix: str = "geo"
    cell_stream_level: int = 8
    global_stream: bool = True
    source_streams: bool = True
    station: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> type
    receivers: dict[str, tuple[float, float]] = field(default_factory=dict)
    metrics_url: str | None = None
    state_dir: Path | None = None
    backfill_min: float = 60.0
    max_backfill: int = 20_000
    max_cells: int = 1000
    block_ms: int = 2000
    stats_history_s: int = 3600
    stats_discover_s: float = 10.0
    tiles_url: str = ""
    timemap_max_points: int = 20_000

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> ViewerSettings:
        """Settings from a validated daemon `Config` (see daemon/config.py)."""
        st = config.station
        sources = {name: str(cfg.get("type", "?")) for name, cfg in config.sources.items()}
        receivers: dict[str, tuple[float, float]] = {}
        for name, cfg in config.sources.items():
            if cfg.get("type") in ADSB_TYPES:
                lat = cfg.get("receiver_lat")
                lon = cfg.get("receiver_lon")
                receivers[name] = (
                    float(st["lat"] if lat is None else lat),
                    float(st["lon"] if lon is None else lon),
                )
        listen = str(config.http.get("listen", "") or "")
        metrics_url = None
        if listen:
            host, _, port = listen.rpartition(":")
            host = host.strip("[]")
            if host in ("", "0.0.0.0", "::"):
                host = "127.0.0.1"
            metrics_url = f"http://{host}:{port}/metrics"
        streams = config.streams
        settings = cls(
            prefix=str(streams["prefix"]),
            cell_stream_level=int(streams["cell_stream_level"]),
            global_stream=bool(streams["global_stream"]),
            source_streams=bool(streams["source_streams"]),
            station={"id": st["id"], "lat": float(st["lat"]), "lon": float(st["lon"])},
            sources=sources,
            receivers=receivers,
            metrics_url=metrics_url,
            state_dir=Path(config.state_dir) / "viewer",
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        return settings


def async_client(options: RedisOptions) -> StreamsClient:
    """An asyncio redis client with the same connection options as the daemon's sync one
    (for a ``redis+cluster://`` URL, a cluster client reading every shard).

    The socket timeout must outlast the XREAD BLOCK time, so it is at least 10 s here.
    """
    kwargs = options.client_kwargs(socket_timeout_s=max(options.socket_timeout_s, 10.0))
    if options.is_cluster:
        return ClusterStreams.from_options(options, **kwargs)
    client: aioredis.Redis = aioredis.Redis.from_url(options.url, **kwargs)
    return client


class Viewer:
    """The application state: one Redis client, the stream feed, the statistics."""

    def __init__(self, settings: ViewerSettings, client: StreamsClient) -> None:
        self.settings = settings
        self.client = client
        self.feed = StreamFeed(
            client,
            settings.prefix,
            settings.cell_stream_level,
            settings.max_cells,
            settings.global_stream,
        )
        self.keys = StreamKeys(settings.prefix)
        self.book = StatsBook(settings.receivers, settings.state_dir)
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics_cache: tuple[float, dict[str, Any] | None, str | None] = (0.0, None, None)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the statistics follower and the periodic save of range outlines."""
        self._tasks.append(
            asyncio.create_task(
                follow_stats(
                    self.client,
                    self.book,
                    await self._stats_keys(),
                    discover=self._stats_keys,
                    discover_every_s=self.settings.stats_discover_s,
                )
            )
        )
        self._tasks.append(asyncio.create_task(self._save_periodically()))

    async def _stats_keys(self) -> dict[str, int]:
        """The streams the statistics read, with the entry time to start at (epoch ms)."""
        now_ms = await self._now_ms()
        history_ms = now_ms - self.settings.stats_history_s * 1000
        if not self.settings.source_streams:
            return {self.keys.events: 0 if self.settings.receivers else history_ms}
        names = set(self.settings.sources) | await self._stream_sources()
        # Receivers read their whole stream: the all-time range outline needs it.
        return {
            self.keys.source(name): 0 if name in self.settings.receivers else history_ms
            for name in sorted(names)
        }

    async def stop(self) -> None:
        """Stop the background tasks, save the outlines, close Redis."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.book.save()
        await self.client.aclose()

    async def _save_periodically(self, every_s: float = 60.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await asyncio.to_thread(self.book.save)

    async def _stream_sources(self) -> set[str]:
        """Source names that have a stream in Redis (also those no longer configured)."""
        prefix = self.keys.source("")
        names: set[str] = set()
        try:
            async for key in self.client.scan_iter(match=f"{prefix}*", count=1000, _type="stream"):
                text = key.decode() if isinstance(key, bytes) else str(key)
                names.add(text.removeprefix(prefix))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("cannot list source streams: %s", exc)
        return names

    async def _now_ms(self) -> int:
        try:
            return await self.feed.server_time_ms()
        except (aioredis.RedisError, OSError):
            return int(time.time() * 1000)

    # -- routes ----------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        """The single page."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def favicon(self, request: Request) -> Response:
        """No icon (saves the browser a 404 in its console)."""
        return Response(status_code=204)

    async def config(self, request: Request) -> Response:
        """What the page needs to know to draw itself."""
        s = self.settings
        return JSONResponse(
            {
                "station": s.station,
                "sources": s.sources,
                "receivers": {k: list(v) for k, v in s.receivers.items()},
                "cell_stream_level": s.cell_stream_level,
                "backfill_min": s.backfill_min,
                "tiles_url": s.tiles_url,
                "metrics": s.metrics_url is not None,
            }
        )

    async def cells(self, request: Request) -> Response:
        """True S2 corners of up to 5000 cells."""
        tokens = [t for t in request.query_params.get("tokens", "").split(",") if t][:5000]
        try:
            return JSONResponse({t: cell_vertices(t) for t in tokens})
        except (ValueError, IndexError):
            return JSONResponse({"error": "bad cell token"}, status_code=400)

    async def stats(self, request: Request) -> Response:
        """Rates and receiver statistics from the streams, plus daemon metrics if configured."""
        out = self.book.snapshot(await self._now_ms())
        out["metrics"], out["metrics_error"] = await self._metrics()
        return JSONResponse(out)

    async def _metrics(self) -> tuple[dict[str, Any] | None, str | None]:
        url = self.settings.metrics_url
        if url is None:
            return None, None
        when, cached, error = self._metrics_cache
        if time.monotonic() - when < 2.0:
            return cached, error
        try:
            cached, error = await asyncio.to_thread(scrape_metrics, url), None
        except (OSError, ValueError) as exc:
            cached, error = None, f"{url}: {exc}"
        self._metrics_cache = (time.monotonic(), cached, error)
        return cached, error

    async def range_outline(self, request: Request) -> Response:
        """Range outlines of every receiver."""
        now_ms = await self._now_ms()
        return JSONResponse(
            {name: rx.outline.snapshot(now_ms) for name, rx in self.book.receivers.items()}
        )

    async def timemap(self, request: Request) -> Response:
        """Time-map points (seconds before/after each event) of one source's newest events."""
        src = request.query_params.get("src", "")
        kind = request.query_params.get("kind", "")
        try:
            count = min(
                int(request.query_params.get("count", "5000")), self.settings.timemap_max_points
            )
        except ValueError:
            return JSONResponse({"error": "count must be an integer"}, status_code=400)
        if not src:
            return JSONResponse({"error": "src is required"}, status_code=400)
        key = self.keys.source(src) if self.settings.source_streams else self.keys.events
        rows: Any = await self.client.xrevrange(key, count=count * 4 if kind else count)
        t_ms: list[int] = []
        for _, raw in rows:
            fields = {_s(k): _s(v) for k, v in raw.items()}
            if fields.get("src") != src or (kind and fields.get("kind") != kind):
                continue
            with contextlib.suppress(KeyError, ValueError):
                t_ms.append(int(fields["t"]))
            if len(t_ms) >= count:
                break
        before_s, after_s = time_map(t_ms)
        return JSONResponse(
            {
                "src": src,
                "kind": kind or None,
                "events": len(t_ms),
                "before_s": before_s.round(3).tolist(),
                "after_s": after_s.round(3).tolist(),
            }
        )

    async def stream(self, request: Request) -> Response:
        """The SSE stream of one subscription: backfill, then live events."""
        q = request.query_params
        try:
            region = parse_region(q["region"]) if q.get("region") else None
            minutes = float(q.get("minutes", self.settings.backfill_min))
            sub = self.feed.subscribe(region)
        except (RegionError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        resume = request.headers.get("last-event-id") or q.get("after") or ""
        return StreamingResponse(
            self._events(request, sub, minutes, resume),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(
        self, request: Request, sub: Subscription, minutes: float, resume: str
    ) -> AsyncIterator[bytes]:
        yield sse_retry(2000)
        yield sse_frame(_dumps(sub.describe()), "subscription")
        cursor = resume
        while not cursor:
            try:
                now_ms = await self.feed.server_time_ms()
                since_ms = max(0, now_ms - int(minutes * 60_000))
                events, cursor = await self.feed.backfill(sub, since_ms, self.settings.max_backfill)
            except (aioredis.RedisError, OSError) as exc:
                yield sse_frame(_dumps({"error": str(exc)}), "problem")
                await asyncio.sleep(2.0)
                continue
            for i in range(0, len(events), BACKFILL_CHUNK):
                chunk = events[i : i + BACKFILL_CHUNK]
                yield sse_frame(_dumps(chunk), "backfill")
            yield sse_frame(_dumps({"backfilled": len(events)}), "ready", cursor)
        while not await request.is_disconnected():
            try:
                batch, cursor = await self.feed.read_new(sub, cursor, self.settings.block_ms)
            except (aioredis.RedisError, OSError) as exc:
                yield sse_frame(_dumps({"error": str(exc)}), "problem")
                await asyncio.sleep(2.0)
                continue
            yield sse_frame(_dumps(batch), "events", cursor) if batch else sse_comment("ka")


def _dumps(value: list[ViewEvent] | dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def create_app(settings: ViewerSettings, options: RedisOptions) -> Starlette:
    """The Starlette app; Redis is connected and the statistics start with its lifespan."""
    viewer = Viewer(settings, async_client(options))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await viewer.start()
        try:
            yield
        finally:
            await viewer.stop()

    def route(path: str, fn: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, fn, methods=["GET"])

    app = Starlette(
        routes=[
            route("/", viewer.page),
            route("/favicon.ico", viewer.favicon),
            route("/api/config", viewer.config),
            route("/api/stream", viewer.stream),
            route("/api/cells", viewer.cells),
            route("/api/stats", viewer.stats),
            route("/api/range", viewer.range_outline),
            route("/api/timemap", viewer.timemap),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.viewer = viewer
    return app
