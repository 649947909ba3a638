"""`geosensord view`: a live web map that consumes the Redis streams.

The first downstream consumer of the stream contract (design §2): a small
Starlette app (served by uvicorn) reads the streams with XREAD and pushes events
to the browser over Server-Sent Events, backfilling the last minutes first.
Regions drawn on the map become S2 coverings whose per-cell streams are read.

Modules:
    app        routes, the `Viewer` state, `create_app`, `ViewerSettings`
    feed       subscriptions, backfill and live reading, the browser's event JSON
    regions    circle/rectangle regions, coverings, true S2 cell corners
    sse        Server-Sent Events framing
    stats      per-source rates, receiver statistics, metrics scraping
    rangeplot  ADS-B range outline (farthest position per 5° of bearing)
    timemap    Watson time maps (time since previous vs. time to next event)
    static/    the page, its JS and CSS, and the Natural Earth world outline

Importing `daemon.viewer.app` needs the optional `view` dependencies
(starlette, uvicorn); the other modules do not.
"""

__all__ = ["app", "feed", "rangeplot", "regions", "sse", "stats", "timemap"]
