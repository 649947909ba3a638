"""SIGHUP reloads the config: a changed or added source starts, untouched sources keep
running, and an invalid file is reported and ignored (the daemon keeps its config)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis_proc import RedisProcess

REPO = Path(__file__).resolve().parents[2]


def lines(prefix: str, start: int, n: int) -> str:
    return "".join(
        json.dumps({"id": f"{prefix}:{i}", "src": prefix, "kind": "sensor.reading",
                    "t": 1_700_000_000_000 + i, "lat": 1.0, "lon": 2.0, "alt": None,
                    "data": {"i": i}}) + "\n"
        for i in range(start, start + n)
    )


def config_text(tmp: Path, url: str, sources: list[str]) -> str:
    blocks = "".join(
        f'[sources.{name}]\ntype = "jsonl"\npath = "{tmp / (name + ".jsonl")}"\nfollow = true\n\n'
        for name in sources
    )
    return (f'[station]\nid = "st"\nlat = 1.0\nlon = 2.0\n\n[redis]\nurl = "{url}"\n\n'
            f'[state]\ndir = "{tmp / "state"}"\n\n[http]\nlisten = ""\n\n'
            f"[pipeline]\nbatch_latency_ms = 20\n\n{blocks}")


def wait_for(pred: Any, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sighup_adds_a_source_and_survives_a_broken_file(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    (tmp_path / "a.jsonl").write_text(lines("a", 0, 5))
    (tmp_path / "b.jsonl").write_text(lines("b", 0, 5))
    config = tmp_path / "c.toml"
    config.write_text(config_text(tmp_path, redis_server.url, ["a"]))
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(config)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
    )
    c = redis_server.client()

    def ids() -> list[str]:
        return [f["id"] for _, f in c.xrange("geo:events")]

    try:
        wait_for(lambda: len(ids()) == 5, "source a")
        config.write_text(config_text(tmp_path, redis_server.url, ["a", "b"]))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(ids()) == 10, "source b after the reload")
        with (tmp_path / "a.jsonl").open("a") as fh:  # a kept following its file
            fh.write(lines("a", 5, 3))
        wait_for(lambda: len(ids()) == 13, "a's appended lines")

        config.write_text("[station\n")  # broken: reported, the running config stays
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload: keeping the running config" in log.read_text(), "the report")
        with (tmp_path / "b.jsonl").open("a") as fh:
            fh.write(lines("b", 5, 2))
        wait_for(lambda: len(ids()) == 15, "b still running")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    got = ids()
    assert sorted(got) == sorted({*(f"a:{i}" for i in range(8)), *(f"b:{i}" for i in range(7))})
    assert "1 added" in log.read_text()
