"""A real HTTP server on 127.0.0.1 that answers from canned replies and records hits.

    routes[path] = [Reply, Reply, …]   served in turn, the last one repeats
    routes[path] = callable(path, params) -> Reply
    any other path                     404

Used by the USGS (feed and FDSN) and SondeHub tests instead of mocking `requests`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


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


class FakeHttpServer:
    """Routes: path -> list of Replies (served in turn, the last one repeats) or a callable.

    `default_headers` go out before each reply's own headers.
    """

    def __init__(self, default_headers: Mapping[str, str] | None = None) -> None:
        self.routes: dict[str, list[Reply] | Callable[[str, dict[str, str]], Reply]] = {}
        self.hits: list[Hit] = []
        self.default_headers = dict(default_headers or {})
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
                for k, v in {**server.default_headers, **reply.headers}.items():
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

    def serve(self, path: str, *replies: Reply) -> None:
        """Answer `path` with `replies` in turn (the last one repeats)."""
        with self._lock:
            self.routes[path] = list(replies)

    def hits_on(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]


@contextmanager
def serving(server: FakeHttpServer) -> Iterator[FakeHttpServer]:
    """`server` listening until the block ends (then shut down and closed)."""
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
