"""Real processes for the fault-injection tests: the daemon as a subprocess (`python -m
daemon run`), recordings, and reads over real HTTP and Redis. The durable redis-server
they run against is the `durable_redis` fixture of tests/conftest.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis
from redis_proc import RedisProcess, free_port

REPO = Path(__file__).resolve().parents[2]


def write_recording(path: Path, src: str, n: int, start: int = 0) -> list[str]:
    """A jsonl recording of events `start`..`start+n-1` of `src`; returns their ids in order."""
    ids = []
    with path.open("a") as fh:
        for i in range(start, start + n):
            ids.append(f"{src}:{i}")
            fh.write(json.dumps({
                "id": f"{src}:{i}", "src": src, "kind": "sensor.reading",
                "t": 1_700_000_000_000 + i, "rx": 1_700_000_000_000 + i,
                # Around one station (a few dozen level-8 cells), as a receiver sees them.
                "lat": -30.0 + (i * 0.0137) % 2.0, "lon": -51.0 - (i * 0.0291) % 2.0,
                "alt": None, "data": {"i": i},
            }, separators=(",", ":")) + "\n")
    return ids


def write_config(
    tmp: Path,
    url: str,
    sources: dict[str, dict[str, Any]],
    *,
    http_port: int | None = None,
    extra: str = "",
    state: Path | None = None,
    batch_size: int = 1000,
    name: str = "config.toml",
) -> Path:
    """A daemon config: `sources` maps a name to its table's keys (strings quoted)."""
    lines = [
        "[station]", 'id = "rel"', "lat = -30.0", "lon = -51.0", "",
        "[redis]", f'url = "{url}"', "socket_timeout_s = 1.0", "",
        "[state]", f'dir = "{state or tmp / "state"}"', "",
        "[http]", f'listen = "127.0.0.1:{http_port}"' if http_port else 'listen = ""', "",
        "[pipeline]", f"batch_size = {batch_size}", "batch_latency_ms = 20", "",
        "[spool]", "segment_mb = 1.0", "",
    ]
    for src_name, table in sources.items():
        lines.append(f"[sources.{src_name}]")
        for key, value in table.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path = tmp / name
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def start_daemon(
    config: Path, log: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`geosensord run --config CONFIG` as a subprocess, its output appended to `log`."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(config), *extra],
            stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=config.parent,
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout_s: float = 30.0) -> int:
    """Send `sig` and wait; kill on timeout. Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def kill_redis(server: RedisProcess) -> None:
    """SIGKILL the server (no shutdown, no final AOF rewrite)."""
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.proc = None


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll `condition` until it is true; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.02)


def xlen(port: int, key: str = "geo:events") -> int:
    """Length of a stream, or -1 while Redis does not answer."""
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return int(client.xlen(key))
    except (redis.ConnectionError, redis.TimeoutError):
        return -1
    finally:
        client.close()


def ids_by_src(client: Any, key: str = "geo:events") -> dict[str, list[str]]:
    """The ids in a stream, in stream order, grouped by the entry's src (paged XRANGE)."""
    out: dict[str, list[str]] = {}
    start = "-"
    while True:
        page = client.xrange(key, start, "+", count=20_000)
        for _, fields in page:
            out.setdefault(str(fields["src"]), []).append(str(fields["id"]))
        if len(page) < 20_000:
            return out
        last_id = page[-1][0]
        start = "(" + last_id


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:PORT/PATH: (status, body); (0, "") while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text into {(name, labels): value}; fails the test on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group("labels") or ""))
        out[(m.group("name"), labels)] = float(m.group("value"))
    return out


def metric(port: int, name: str, **labels: str) -> float | None:
    """One sample from the daemon's /metrics (None when absent or not reachable)."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        return None
    return parse_metrics(body).get((f"geosensord_{name}", frozenset(labels.items())))


def new_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


def lines_matching(log: Path, pattern: str) -> list[re.Match[str]]:
    """Regex matches of `pattern` over the lines of a daemon log."""
    rx = re.compile(pattern)
    return [m for line in log.read_text().splitlines() if (m := rx.search(line))]


def all_text(paths: Iterable[Path]) -> str:
    """The concatenated text of several logs."""
    return "".join(p.read_text() for p in paths if p.exists())
