"""The serial source end to end: pty -> source -> Pipeline -> RedisStreamsSink -> Redis."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from serial_pty import PtyDevice, wait_for

from daemon.config import parse_config
from daemon.runtime import Runtime, open_runtime
from daemon.sources import build_source
from daemon.supervisor import Supervisor
from hardware.serial import append_checksum

STATION = (52.0, 4.0, 10.0)


def make_config(tmp_path: Path, redis_url: str, port: Path, extra: str) -> str:
    return f"""
[station]
id = "teststation"
lat = {STATION[0]}
lon = {STATION[1]}
alt = {STATION[2]}

[redis]
url = "{redis_url}"

[state]
dir = "{tmp_path / 'state'}"

[pipeline]
batch_latency_ms = 10

[sources.bench]
type = "serial"
port = "{port}"
baud = 115200
settle_s = 0.1
read_timeout_s = 0.05
reconnect_initial_s = 0.02
reconnect_max_s = 0.1
{extra}
"""


@contextmanager
def running_source(rt: Runtime) -> Iterator[Supervisor]:
    """Start the configured source `bench` under the real supervisor."""
    sup = Supervisor(rt.metrics, backoff_initial_s=0.05)
    source = build_source("bench", rt.config.sources["bench"], rt.source_context())
    sup.start(source, rt.pipeline.emitter(source.producer, "bench"))
    try:
        assert wait_for(lambda: rt.metrics.get("serial_connected", source="bench") == 1)
        yield sup
    finally:
        sup.stop()
        assert sup.join(3.0) == []


def entries(url: str, key: str = "geo:src:bench") -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    out = []
    for _, fields in client.xrange(key):
        fields["data"] = json.loads(fields["data"])
        out.append(fields)
    return out


def wait_entries(url: str, n: int) -> list[dict[str, Any]]:
    wait_for(lambda: len(entries(url)) >= n)
    return entries(url)


GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


@pytest.mark.parametrize(("extra", "lines", "expected"), [
    ('protocol = "kv"\nchecksum = "xor"\nunits = { temp = "degC", hum = "%" }',
     [append_checksum("temp=21.5 hum=40 state=ok")],
     {"temp": 21.5, "hum": 40, "state": "ok", "units": {"temp": "degC", "hum": "%"}}),
    ('protocol = "csv"', ["temp,hum", "21.5,40"], {"temp": 21.5, "hum": 40}),
    ('protocol = "csv"\ncolumns = ["temp", "hum"]', ["temp,hum", "22,41"],
     {"temp": 22, "hum": 41}),
    ('protocol = "json"', ['{"temp": 21.5, "hum": 40, "ok": true}'],
     {"temp": 21.5, "hum": 40, "ok": True}),
], ids=["kv", "csv-header", "csv-columns", "json"])
def test_each_protocol_arrives_in_redis_at_the_station(
    tmp_path: Path, redis_server: Any, pty_device: PtyDevice,
    extra: str, lines: list[str], expected: dict[str, Any],
) -> None:
    config = parse_config(make_config(tmp_path, redis_server.url, pty_device.link, extra))
    with open_runtime(config) as rt, running_source(rt):
        pty_device.write("".join(line + "\r\n" for line in lines).encode())
        got = wait_entries(redis_server.url, 1)
    assert len(got) == 1
    entry = got[0]
    assert entry["id"] == "serial:bench:1"
    assert entry["kind"] == "sensor.reading"
    assert (float(entry["lat"]), float(entry["lon"]), float(entry["alt"])) == STATION
    assert entry["station"] == "teststation"
    assert entry["data"] == {"alt_ref": "msl", **expected}


def test_nmea_protocol_publishes_gps_fixes(tmp_path: Path, redis_server: Any,
                                           pty_device: PtyDevice) -> None:
    rmc = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
    config = parse_config(make_config(tmp_path, redis_server.url, pty_device.link,
                                      'protocol = "nmea"'))
    with open_runtime(config) as rt, running_source(rt):
        pty_device.write(f"{rmc}\r\n{GGA}\r\n".encode())
        got = wait_entries(redis_server.url, 1)
    assert len(got) == 1  # RMC + GGA of one second: one reading, at the GGA
    entry = got[0]
    assert float(entry["lat"]) == pytest.approx(48 + 7.038 / 60)
    assert float(entry["alt"]) == 545.4
    assert entry["t"] == str(764426119000)  # 1994-03-23 12:35:19 UTC, dated by the RMC
    fix = entry["data"]["fix"]
    assert fix["quality"] == 1
    assert fix["speed_mps"] == pytest.approx(22.4 * 1852 / 3600)


def test_replug_resumes_reading_without_restarting_the_source(
    tmp_path: Path, redis_server: Any, pty_device: PtyDevice,
) -> None:
    config = parse_config(make_config(tmp_path, redis_server.url, pty_device.link,
                                      'gps = true\ngps_max_age_s = 60.0'))
    with open_runtime(config) as rt, running_source(rt) as sup:
        pty_device.write(f"{GGA}\r\ntemp=1\r\n".encode())
        wait_entries(redis_server.url, 1)
        pty_device.unplug()
        assert wait_for(lambda: rt.metrics.get("serial_disconnects_total", source="bench") == 1)
        assert rt.metrics.get("serial_connected", source="bench") == 0
        pty_device.plug()
        assert wait_for(lambda: rt.metrics.get("serial_connected", source="bench") == 1)
        pty_device.write(b"temp=2\r\n")
        got = wait_entries(redis_server.url, 2)
        assert sup.states["bench"].restarts == 0
        assert sup.states["bench"].failures == 0
    assert [e["id"] for e in got] == ["serial:bench:1", "serial:bench:2"]
    assert [e["data"]["temp"] for e in got] == [1, 2]
    # The last fix survived the replug: the second reading is still located by the GPS.
    assert float(got[1]["lat"]) == pytest.approx(48 + 7.038 / 60)
    assert rt.metrics.get("serial_disconnects_total", source="bench") == 1


def test_sequence_continues_across_restarts_without_duplicate_ids(
    tmp_path: Path, redis_server: Any, pty_device: PtyDevice,
) -> None:
    config = parse_config(make_config(tmp_path, redis_server.url, pty_device.link, ""))
    with open_runtime(config) as rt:
        with running_source(rt):
            pty_device.write(b"temp=1\ntemp=2\ntemp=3\n")
            wait_entries(redis_server.url, 3)
        with running_source(rt):  # a new source object: state loaded from disk/Redis
            pty_device.write(b"temp=4\ntemp=5\n")
            wait_entries(redis_server.url, 5)
    # The state directory is lost: the sequence memo kept in Redis still continues it.
    shutil.rmtree(tmp_path / "state")
    with open_runtime(config) as rt, running_source(rt):
        pty_device.write(b"temp=6\n")
        got = wait_entries(redis_server.url, 6)
    ids = [e["id"] for e in got]
    assert ids == [f"serial:bench:{n}" for n in range(1, 7)]
    assert [e["data"]["temp"] for e in got] == list(range(1, 7))
