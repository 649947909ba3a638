"""``geosensord backfill usgs``: publish past quakes from the FDSN event service.

    geosensord backfill usgs --since DATE [--until DATE] [--updated-after DATE]
                             [--min-magnitude M] [--region LAT,LON,RADIUS_KM]
                             [--config PATH] [--source NAME] [--url BASE]

DATE is ISO 8601 (``2024-05-01``, ``2024-05-01T12:00``, ``…Z``, ``…+02:00``; no zone
means UTC) or an age before now (``90m``, ``36h``, ``7d``, ``2w``).

Events go through the same pipeline as the daemon's (`daemon.runtime.open_runtime`:
S2 index, Redis Streams sink, spool) with the same dedupe as the live `usgs`
source: the memo hashes of the live source and of its backfill are both loaded,
so a quake version the daemon already published is not published again, and
running the same backfill twice publishes nothing the second time. Filters
default to the ones of the configured source (``--source``, or the only usgs
source in the config) and are overridden by the flags. Deleted events
(``includedeleted=true``) are published as kind ``quake.deleted``.

Exit status: 0 done, 1 the service or Redis failed (rerun: nothing is duplicated),
2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from daemon.config import Config
from daemon.event import now_ms
from daemon.ratelog import RateLimitedLog
from daemon.sources.http_poll import FetchError, HttpFetcher
from daemon.sources.usgs import FIELDS
from daemon.sources.usgs.fdsn import DEFAULT_BASE_URL, FDSN_LIMIT, FdsnClient, FdsnQuery
from daemon.sources.usgs.feed import DocumentError, QuakeFilter
from daemon.sources.usgs.poller import USER_AGENT
from daemon.sources.usgs.source import (
    PublishStats,
    QuakePublisher,
    backfill_producer,
    load_known,
    quake_filter,
)

__all__ = ["add_arguments", "parse_region", "parse_when", "run"]

log = logging.getLogger("geosensord.backfill.usgs")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_when(text: str, now: datetime | None = None) -> int:
    """Epoch ms of an ISO 8601 date/time (UTC unless a zone is given) or an age like 7d."""
    m = _AGE.match(text)
    if m:
        base = now or datetime.now(tz=UTC)
        age = timedelta(seconds=float(m.group(1)) * _AGE_UNITS[m.group(2)])
        return int((base - age).timestamp() * 1000)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2024-05-01, 2024-05-01T12:00Z) "
                         "or an age (36h, 7d)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_region(text: str) -> tuple[float, float, float]:
    """LAT,LON,RADIUS_KM as floats, range-checked; raises ValueError."""
    parts = text.split(",")
    if len(parts) != 3:
        raise ValueError(f"{text!r}: expected LAT,LON,RADIUS_KM")
    try:
        lat, lon, radius_km = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r}: LAT,LON,RADIUS_KM must be numbers") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius_km <= 20_040):
        raise ValueError(f"{text!r}: latitude in [-90, 90], longitude in [-180, 180], "
                         "radius in (0, 20040] km")
    return lat, lon, radius_km


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (wired by daemon.cli)."""
    from daemon.cli import default_config_path

    parser.add_argument("--since", required=True, metavar="DATE",
                        help="start of the origin-time window (ISO 8601, or an age: 7d, 36h)")
    parser.add_argument("--until", metavar="DATE", help="end of the window (default: now)")
    parser.add_argument("--updated-after", metavar="DATE",
                        help="only events updated after DATE (FDSN updatedafter)")
    parser.add_argument("--min-magnitude", type=float, metavar="M",
                        help="minimum magnitude (default: the source's min_magnitude)")
    parser.add_argument("--region", metavar="LAT,LON,RADIUS_KM",
                        help="only events within RADIUS_KM of LAT,LON "
                             "(default: the source's radius filter)")
    parser.add_argument("--config", default=default_config_path(), help="config file (TOML)")
    parser.add_argument("--source", metavar="NAME",
                        help="the usgs source whose dedupe and filters to share "
                             "(default: the only one in the config)")
    parser.add_argument("--url", default=DEFAULT_BASE_URL, metavar="BASE",
                        help=f"FDSN event service base URL (default {DEFAULT_BASE_URL})")
    parser.add_argument("--limit", type=int, default=FDSN_LIMIT,
                        help=f"events per request; windows are split to fit (default {FDSN_LIMIT})")
    parser.add_argument("--timeout-s", type=float, default=60.0,
                        help="seconds per HTTP request (default 60)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is only drawn on a terminal anyway)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


class Progress:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO, enabled: bool, width: int = 30) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.width = width

    def advance(self, n: int, published: int, up_to_ms: int) -> None:
        """Account for `n` more events seen (`published` in total so far)."""
        self.done += n
        if not self.enabled:
            return
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        day = datetime.fromtimestamp(up_to_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        self.stream.write(f"\r[{bar}] {frac:4.0%} {self.done}/{self.total} events, "
                          f"{published} published, up to {day}   ")
        self.stream.flush()

    def finish(self) -> None:
        """End the progress line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _pick_source(config: Config, wanted: str | None) -> tuple[str, dict[str, Any]]:
    """The usgs source to share dedupe and filters with; raises ValueError."""
    usgs = {n: c for n, c in config.sources.items() if c.get("type") == "usgs"}
    if wanted:
        if wanted not in usgs:
            names = ", ".join(sorted(usgs)) or "none"
            raise ValueError(f"no usgs source {wanted!r} in {config.path} (usgs sources: {names})")
        return wanted, usgs[wanted]
    if len(usgs) == 1:
        return next(iter(usgs.items()))
    if len(usgs) > 1:
        raise ValueError(f"{config.path} has several usgs sources ({', '.join(sorted(usgs))}); "
                         "choose one with --source")
    defaults = {k: (list(f.default) if isinstance(f.default, list) else f.default)
                for k, f in FIELDS.items()}
    return "usgs", {"type": "usgs", **defaults}


def run(args: argparse.Namespace) -> int:
    """Run the backfill; see the module docstring for exit codes."""
    from daemon.cli import load_or_report, setup_logging

    config = load_or_report(args.config)
    if config is None:
        return EXIT_USAGE
    if not logging.getLogger().handlers:
        setup_logging(args.log_level or str(config.log["level"]))
    try:
        since_ms = parse_when(args.since)
        until_ms = parse_when(args.until) if args.until else now_ms()
        updated_after_ms = parse_when(args.updated_after) if args.updated_after else None
        region = parse_region(args.region) if args.region else None
        if until_ms < since_ms:
            raise ValueError("--until is before --since")
        if args.limit < 1:
            raise ValueError("--limit must be >= 1")
        name, cfg = _pick_source(config, args.source)
        st = config.station
        qfilter = quake_filter(cfg, float(st["lat"]), float(st["lon"]))
    except ValueError as exc:
        print(f"backfill usgs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    qfilter = _override(qfilter, args.min_magnitude, region)
    query = FdsnQuery(
        start_ms=since_ms,
        end_ms=until_ms,
        min_magnitude=qfilter.min_magnitude,
        region=(qfilter.center_lat, qfilter.center_lon, qfilter.radius_km)
        if qfilter.radius_km > 0 else None,
        updated_after_ms=updated_after_ms,
    )
    fetcher = HttpFetcher(timeout_s=args.timeout_s, retries=int(cfg["retries"]),
                          backoff_max_s=float(cfg["backoff_max_s"]), user_agent=USER_AGENT)
    client = FdsnClient(fetcher, args.url, limit=args.limit)
    try:
        return _backfill(config, name, qfilter, query, client, not args.no_progress)
    finally:
        fetcher.close()


def _override(qfilter: QuakeFilter, min_magnitude: float | None,
              region: tuple[float, float, float] | None) -> QuakeFilter:
    """The source's filter with the command-line flags applied."""
    from dataclasses import replace

    if min_magnitude is not None:
        qfilter = replace(qfilter, min_magnitude=min_magnitude)
    if region is not None:
        qfilter = replace(qfilter, center_lat=region[0], center_lon=region[1],
                          radius_km=region[2])
    return qfilter


def _backfill(config: Config, name: str, qfilter: QuakeFilter, query: FdsnQuery,
              client: FdsnClient, progress_wanted: bool) -> int:
    """Count, page and publish; the pipeline is drained before returning."""
    from daemon.runtime import open_runtime

    bad_log = RateLimitedLog(log)
    totals = PublishStats()
    with open_runtime(config, role="backfill") as rt:
        ctx = rt.source_context()
        live = f"{ctx.station.id}:{name}"
        producer = backfill_producer(live)

        def count_bad(reason: str, detail: str) -> None:
            rt.metrics.inc("bad_input_total", source=name, reason=reason)
            bad_log.warning(reason, "%s backfill: skipped %s: %s", name, reason, detail)

        try:
            known = load_known(ctx.memo, [live, producer])
            total = client.count(query)
        except FetchError as exc:
            print(f"backfill usgs: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except Exception as exc:  # the sink's errors: Redis unreachable at start
            print(f"backfill usgs: cannot read what was published: {exc}", file=sys.stderr)
            return EXIT_FAILED
        log.info("backfill %s..%s: %d events at the service, %d versions already published",
                 query.params()["starttime"], query.params()["endtime"], total, len(known))
        publisher = QuakePublisher(name, qfilter, known, rt.metrics, count_bad)
        emit = rt.pipeline.emitter(producer, name)
        progress = Progress(total, sys.stderr, progress_wanted)
        try:
            for page in client.pages(query, total=total):
                if page.count:
                    totals.add(publisher.publish(page.body, emit, station=ctx.station.id,
                                                 rx_ms=now_ms()))
                progress.advance(page.count, totals.published, page.query.end_ms)
        except (FetchError, DocumentError) as exc:
            progress.finish()
            print(f"backfill usgs: {exc} (rerun to continue: nothing is published twice)",
                  file=sys.stderr)
            rt.pipeline.wait_idle()
            return EXIT_FAILED
        progress.finish()
        drained = rt.pipeline.wait_idle(timeout_s=300.0)
    filtered = sum(totals.filtered.values())
    print(f"backfill usgs: {totals.features} events fetched, {totals.published} published, "
          f"{totals.known} already published, {filtered} filtered out, {totals.bad} malformed",
          file=sys.stderr)
    return EXIT_OK if drained else EXIT_FAILED
