"""`type = "beast"`: a Beast binary feed (dump1090/readsb port 30005). See feeds.py.

    [sources.beast]
    type = "beast"
    host = "127.0.0.1"
    port = 30005
    timeout_s = 60.0          # reconnect when the server is silent this long
    raw_stream = false        # also publish every message as aircraft.raw
    min_interval_s = 1.0
    max_range_km = 400.0
    receiver_lat = …          # default: the [station] location
    receiver_lon = …
    backoff_max_s = 30.0
"""

from __future__ import annotations

from typing import Any

from daemon.config import Field
from daemon.sources.adsb import common_fields
from daemon.sources.adsb.feeds import BeastFeed, feed_fields
from daemon.sources.base import SourceContext

__all__ = ["FIELDS", "build"]

FIELDS: dict[str, Field] = {
    **feed_fields(30005),
    "raw_stream": Field((bool,), default=False),
    **common_fields(),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> BeastFeed:
    """Factory used by the source registry."""
    return BeastFeed(name, cfg, ctx)
