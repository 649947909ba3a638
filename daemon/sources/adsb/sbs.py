"""`type = "sbs"`: an SBS BaseStation CSV feed (dump1090/readsb port 30003). See feeds.py.

    [sources.sbs]
    type = "sbs"
    host = "127.0.0.1"
    port = 30003
    timeout_s = 60.0
    time_zone = "receive"     # "utc" / "local": use the line's date/time fields
    min_interval_s = 1.0
    max_range_km = 400.0
    backoff_max_s = 30.0

SBS has no raw messages, so there is no raw_stream here.
"""

from __future__ import annotations

from typing import Any

from daemon.config import Field
from daemon.sources.adsb import common_fields
from daemon.sources.adsb.feeds import SbsFeed, feed_fields, time_zone_field
from daemon.sources.base import SourceContext

__all__ = ["FIELDS", "build"]

FIELDS: dict[str, Field] = {
    **feed_fields(30003),
    "time_zone": time_zone_field(),
    **common_fields(),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> SbsFeed:
    """Factory used by the source registry."""
    return SbsFeed(name, cfg, ctx)
