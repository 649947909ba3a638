"""Viewer test harness: events published through the real pipeline into a real
redis-server, the viewer app served by a real uvicorn on a loopback port, and an
SSE client over a plain HTTP connection."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis_proc import free_port

from daemon.event import Event
from daemon.runtime import Runtime
from sinks.redis_connection import RedisOptions

try:
    import uvicorn

    from daemon.viewer.app import ViewerSettings, create_app
except ImportError:  # the optional `view` extra is not installed
    uvicorn = None

NO_VIEW_DEPS = "viewer deps missing: pip install starlette uvicorn (the `view` extra)"


def write_config(tmp: Path, redis_url: str, extra: str = "") -> Path:
    """A daemon config for `redis_url` without sources (tests publish directly)."""
    path = tmp / "config.toml"
    path.write_text(
        f"""\
[station]
id = "viewer-test"
lat = 37.0
lon = 13.8

[redis]
url = "{redis_url}"

[state]
dir = "{tmp / "state"}"

[http]
listen = ""

[pipeline]
batch_latency_ms = 10
{extra}
"""
    )
    return path


@dataclass
class Publisher:
    """Publishes Events through the daemon's pipeline (the real sink and script)."""

    runtime: Runtime
    emitters: dict[str, Callable[[Event], None]] = field(default_factory=dict)
    n: int = 0

    def publish(
        self,
        src: str,
        lat: float,
        lon: float,
        kind: str = "test.point",
        t_ms: int | None = None,
        data: dict[str, Any] | None = None,
        alt: float | None = None,
    ) -> Event:
        """Publish one event and wait until it is in Redis."""
        ev = self.make(src, lat, lon, kind, t_ms, data, alt)
        self.emit(ev)
        assert self.runtime.pipeline.wait_idle(10)
        return ev

    def make(
        self,
        src: str,
        lat: float,
        lon: float,
        kind: str = "test.point",
        t_ms: int | None = None,
        data: dict[str, Any] | None = None,
        alt: float | None = None,
    ) -> Event:
        """An event with a fresh id."""
        self.n += 1
        t = t_ms if t_ms is not None else 1_700_000_000_000 + self.n
        return Event(
            id=f"{src}:{self.n}",
            src=src,
            kind=kind,
            t=t,
            rx=t,
            lat=lat,
            lon=lon,
            alt=alt,
            station="viewer-test",
            data=data if data is not None else {"n": self.n},
        )

    def emit(self, ev: Event) -> None:
        """Hand an event to the pipeline (no wait)."""
        if ev.src not in self.emitters:
            self.emitters[ev.src] = self.runtime.pipeline.emitter(f"viewer-test:{ev.src}", ev.src)
        self.emitters[ev.src](ev)

    def flush(self) -> None:
        assert self.runtime.pipeline.wait_idle(30)


@dataclass
class ViewerServer:
    """The viewer app under uvicorn in a thread; `url` points at it."""

    settings: ViewerSettings
    options: RedisOptions
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.app = create_app(self.settings, self.options)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "viewer did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get_json(self, path: str) -> Any:
        """GET a JSON endpoint; returns (decoded body) and asserts 200."""
        status, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def stream(self, path: str, headers: dict[str, str] | None = None) -> SSEClient:
        return SSEClient(self.port, path, headers or {})


class SSEClient:
    """Reads SSE messages from one GET (a test-side parser of the event-stream format)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.buffer = b""

    def next(self, timeout_s: float = 10.0) -> dict[str, str]:
        """The next message (comments skipped): {"event", "data", "id"?}."""
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\n\n" in self.buffer:
                block, self.buffer = self.buffer.split(b"\n\n", 1)
                msg: dict[str, list[str]] = {}
                for line in block.decode().split("\n"):
                    if not line or line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    msg.setdefault(name, []).append(value.removeprefix(" "))
                if "data" in msg:
                    out = {k: "\n".join(v) for k, v in msg.items()}
                    out.setdefault("event", "message")
                    return out
            if time.monotonic() > deadline:
                raise TimeoutError("no SSE message in time")
            try:
                chunk = self.resp.read1(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise EOFError("stream closed")
            self.buffer += chunk

    def until(
        self, event: str, timeout_s: float = 10.0
    ) -> tuple[list[dict[str, str]], dict[str, str]]:
        """Messages before the first `event` message, and that message."""
        before: list[dict[str, str]] = []
        while True:
            msg = self.next(timeout_s)
            if msg["event"] == event:
                return before, msg
            before.append(msg)

    def close(self) -> None:
        self.conn.close()
