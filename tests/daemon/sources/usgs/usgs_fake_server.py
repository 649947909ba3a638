"""A real HTTP server on 127.0.0.1 that plays the USGS feed and the FDSN event service
(the server itself is tests/fake_http.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeHttpServer, Reply

from daemon.s2index import distance_km


def _fdsn_time_ms(text: str) -> int:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class FdsnCatalog:
    """The FDSN event service over an in-memory list of GeoJSON features."""

    def __init__(self, features: list[dict[str, Any]], max_allowed: int = 20_000) -> None:
        self.features = features
        self.max_allowed = max_allowed

    def matching(self, params: dict[str, str]) -> list[dict[str, Any]]:
        start = _fdsn_time_ms(params["starttime"])
        end = _fdsn_time_ms(params["endtime"])
        out = []
        for f in self.features:
            p = f["properties"]
            if not start <= p["time"] <= end:
                continue
            if p.get("status") == "deleted" and params.get("includedeleted") != "true":
                continue
            if "minmagnitude" in params and (p["mag"] is None
                                             or p["mag"] < float(params["minmagnitude"])):
                continue
            if "updatedafter" in params and p["updated"] <= _fdsn_time_ms(params["updatedafter"]):
                continue
            if "maxradiuskm" in params:
                lon, lat = f["geometry"]["coordinates"][:2]
                d_km = distance_km(float(params["latitude"]), float(params["longitude"]), lat, lon)
                if d_km > float(params["maxradiuskm"]):
                    continue
            out.append(f)
        return sorted(out, key=lambda f: f["properties"]["time"])

    def reply(self, path: str, params: dict[str, str]) -> Reply:
        found = self.matching(params)
        if path.endswith("/count"):
            body = {"count": len(found), "maxAllowed": self.max_allowed}
            return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
        # Like ComCat: a query without `limit` matching too many events is refused;
        # with `limit` (at most maxAllowed) the first `limit` events are returned.
        if len(found) > self.max_allowed and int(params.get("limit", 0)) not in \
                range(1, self.max_allowed + 1):
            msg = f"Error 400: Bad Request\n\n{len(found)} matching events exceeds search limit " \
                  f"of {self.max_allowed}. Modify the search to match fewer events.\n"
            return Reply(400, msg.encode())
        limit = int(params.get("limit", self.max_allowed))
        doc = {"type": "FeatureCollection",
               "metadata": {"generated": 0, "status": 200, "count": min(limit, len(found))},
               "features": found[:limit]}
        return Reply(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})


class FakeUsgsServer(FakeHttpServer):
    """The USGS feeds (routes) and, with `serve_fdsn`, the FDSN event service."""

    def serve_fdsn(self, catalog: FdsnCatalog, prefix: str = "/fdsnws/event/1") -> str:
        self.routes[prefix + "/count"] = catalog.reply
        self.routes[prefix + "/query"] = catalog.reply
        return self.url(prefix + "/")
