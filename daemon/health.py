"""The health and metrics HTTP endpoint (`[http] listen`, 127.0.0.1 by default).

    GET /healthz   200 when the pipeline delivers (Redis up, or events safely
                   spooled), its sink thread progresses and no source is failing
                   or wedged; 503 otherwise. JSON body with per-source state,
                   queue and spool depth, last error.
    GET /readyz    200 when events can be taken: Redis reachable, or the spool
                   accepting; 503 otherwise (same JSON body).
    GET /metrics   Prometheus text exposition of every counter, gauge and histogram.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from daemon.metrics import Metrics

log = logging.getLogger(__name__)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6); raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class HealthServer:
    """Serves /healthz and /metrics from a background thread."""

    def __init__(self, listen: str, metrics: Metrics, health: Callable[[], dict[str, Any]]) -> None:
        host, port = parse_listen(listen)
        self.metrics = metrics
        self.health = health
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = server.metrics.prometheus().encode()
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)
                elif path in ("/healthz", "/health", "/readyz"):
                    state = server.health()
                    good = state.get("ready" if path == "/readyz" else "ok")
                    self._send(200 if good else 503, "application/json",
                               json.dumps(state).encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        return Handler
