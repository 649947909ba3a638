"""A real HTTP server on 127.0.0.1 that plays the USGS feed and the FDSN event service."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from daemon.s2index import distance_km


@dataclass
class Reply:
    """One canned HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hit:
    """One request the server saw."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


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


class FakeUsgsServer:
    """Routes: path -> list of Replies (served in turn, the last one repeats) or a callable."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply] | Callable[[str, dict[str, str]], Reply]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with server._lock:
                    server.hits.append(Hit(url.path, params, dict(self.headers.items())))
                    route = server.routes.get(url.path)
                    if route is None:
                        reply = Reply(404, b"not found")
                    elif not callable(route):
                        reply = route.pop(0) if len(route) > 1 else route[0]
                if callable(route):
                    reply = route(url.path, params)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out on purpose close early: not a test failure

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits_on(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def serve_fdsn(self, catalog: FdsnCatalog, prefix: str = "/fdsnws/event/1") -> str:
        self.routes[prefix + "/count"] = catalog.reply
        self.routes[prefix + "/query"] = catalog.reply
        return self.url(prefix + "/")
