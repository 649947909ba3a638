"""`type = "raw"`: a raw hex (AVR) feed (dump1090/readsb port 30002). See feeds.py.

    [sources.raw]
    type = "raw"
    host = "127.0.0.1"
    port = 30002
    timeout_s = 60.0
    raw_stream = false
    min_interval_s = 1.0
    max_range_km = 400.0
    backoff_max_s = 30.0

Lines without a timestamp (``*HEX;``) are timed by the host clock on arrival.
"""

from __future__ import annotations

from typing import Any

from daemon.config import Field
from daemon.sources.adsb import common_fields
from daemon.sources.adsb.feeds import RawFeed, feed_fields
from daemon.sources.base import SourceContext

__all__ = ["FIELDS", "build"]

FIELDS: dict[str, Field] = {
    **feed_fields(30002),
    "raw_stream": Field((bool,), default=False),
    **common_fields(),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> RawFeed:
    """Factory used by the source registry."""
    return RawFeed(name, cfg, ctx)
