"""End to end: the daemon on the offline demo recordings, the viewer, headless Chromium.

The daemon (`geosensord run --once`, a real process) publishes the recorded USGS feed
and the ADS-B IQ recording (modes1.bin, one aircraft near Sicily) into a real
redis-server; `geosensord view` (a real process) serves the page; Playwright drives
Debian's /usr/bin/chromium. Checked: one marker per quake and per aircraft with the
ids in the streams; drawing a circle and a rectangle subscribes to just that region;
the range plot and the time map render. Screenshots are saved in the test's tmp dir
(and in $VIEWER_SCREENSHOTS when set, as CI artifacts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_proc import RedisProcess, free_port

from daemon.config import load_config
from daemon.event import Event, now_ms
from daemon.runtime import open_runtime
from daemon.viewer.regions import Rect

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
RX = (37.0, 13.8)

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
pytest.importorskip("uvicorn", reason="viewer deps missing: pip install starlette uvicorn")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)"),
]

VIEW_SCRIPT = """
import argparse, sys
from daemon.commands import view
parser = argparse.ArgumentParser(prog="geosensord view")
view.add_arguments(parser)
sys.exit(view.run(parser.parse_args(sys.argv[1:])))
"""


@pytest.fixture
def demo(redis_server: RedisProcess, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The daemon's pass over the recordings, then the viewer serving them."""
    rec = REPO / "recordings"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""\
[station]
id = "e2e"
lat = {RX[0]}
lon = {RX[1]}

[redis]
url = "{redis_server.url}"

[state]
dir = "{tmp_path / "state"}"

[http]
listen = ""

[sources.quakes]
type = "usgs"
url = "{rec / "usgs" / "all_day_2022-09-29.geojson"}"
interval = 3600

[sources.adsb]
type = "adsb"
input = "{rec / "adsb" / "modes1.bin"}"
realtime = false
loop = false
start_time = "now"
min_interval_s = 0.0
receiver_lat = {RX[0]}
receiver_lon = {RX[1]}
"""
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    port = free_port()
    viewer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            VIEW_SCRIPT,
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--minutes",
            "30",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    import urllib.request

    while True:
        try:
            urllib.request.urlopen(url + "api/config", timeout=1).close()
            break
        except OSError:
            assert viewer.poll() is None, viewer.communicate()[0]
            assert time.monotonic() < deadline, "viewer did not answer"
            time.sleep(0.1)
    client: Any = redis_server.client()
    quakes = {}
    for _, f in client.xrange("geo:src:quakes"):
        fields = {_s(k): _s(v) for k, v in f.items()}
        data = json.loads(fields["data"])
        quakes[data["eventid"]] = (float(fields["lat"]), float(fields["lon"]))
    aircraft = set()
    for _, f in client.xrange("geo:src:adsb"):
        fields = {_s(k): _s(v) for k, v in f.items()}
        if fields["kind"] == "aircraft.position":
            aircraft.add(json.loads(fields["data"])["icao"])
    shots = Path(os.environ.get("VIEWER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield {
            "url": url,
            "quakes": quakes,
            "aircraft": aircraft,
            "shots": shots,
            "config": config,
        }
    finally:
        viewer.terminate()
        try:
            viewer.wait(10)
        except subprocess.TimeoutExpired:
            viewer.kill()


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def marker_ids(page: Any, layer: str, attr: str = "id") -> set[str]:
    return {m[attr] for m in page.evaluate(f"geoview.markers('{layer}')")}


def drag(page: Any, a: tuple[float, float], b: tuple[float, float]) -> None:
    """Press at lat/lon `a`, move to lat/lon `b`, release (map coordinates → screen)."""
    ax, ay = page.evaluate(f"geoview.project({a[0]}, {a[1]})")
    bx, by = page.evaluate(f"geoview.project({b[0]}, {b[1]})")
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move(bx, by, steps=8)
    page.mouse.up()


def publish_live(config: Path) -> None:
    """A radiosonde climbing near the receiver and a sensor reading, published while the
    page is open (through the daemon's pipeline, as their sources would)."""
    t0 = now_ms()
    events = [
        Event(
            id=f"sonde:S1234567:{frame}",
            src="sonde",
            kind="sonde.telemetry",
            t=t0 + frame,
            rx=t0 + frame,
            lat=RX[0] + 0.01 * frame,
            lon=RX[1] + 0.02 * frame,
            alt=1000.0 + 5.0 * frame,
            station="e2e",
            alt_ref="ellipsoid",
            data={
                "serial": "S1234567",
                "frame": frame,
                "vel_h_mps": 8.0,
                "heading_deg": 60.0,
                "vel_v_mps": 5.0,
            },
        )
        for frame in range(1, 6)
    ]
    events.append(
        Event(
            id="serial:bench:1",
            src="bench",
            kind="sensor.reading",
            t=t0,
            rx=t0,
            lat=RX[0] - 0.1,
            lon=RX[1] - 0.1,
            alt=None,
            station="e2e",
            data={"temp": 21.5, "hum": 40.0, "units": {"temp": "degC", "hum": "%"}},
        )
    )
    with open_runtime(load_config(config), role="e2e") as rt:
        emit = {src: rt.pipeline.emitter(f"e2e:{src}", src) for src in ("sonde", "bench")}
        for ev in events:
            emit[ev.src](ev)
        assert rt.pipeline.wait_idle(10)


def wait_ready(page: Any) -> None:
    page.wait_for_function("geoview.state.ready && geoview.state.subscription", timeout=15000)


def test_map_shows_the_streams_and_filters_by_drawn_regions(demo: dict[str, Any]) -> None:
    quakes: dict[str, tuple[float, float]] = demo["quakes"]
    assert len(quakes) > 200 and demo["aircraft"] == {"4d2023"}
    shots: Path = demo["shots"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1300, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(demo["url"])
        wait_ready(page)
        # everything: one marker per quake (by USGS event id) and per aircraft (ICAO)
        page.wait_for_function(f"geoview.markers('quake').length === {len(quakes)}")
        assert marker_ids(page, "quake", "key") == set(quakes)
        assert marker_ids(page, "aircraft") == {"4d2023"}
        page.wait_for_function("document.querySelector('#sources tbody tr') !== null")
        page.screenshot(path=str(shots / "world.png"))

        # live: events published after the page loaded appear without a reload
        publish_live(demo["config"])
        page.wait_for_function("geoview.markers('sonde').length === 1")
        assert marker_ids(page, "sonde") == {"S1234567"}
        assert marker_ids(page, "sensor") == {"bench"}
        assert page.evaluate("geoview.state.sondes.get('S1234567').pts.length") == 5

        # range plot (the aircraft's positions) and the time map of the quakes
        page.wait_for_function("+document.getElementById('range-plot').dataset.sectors > 0")
        page.select_option("#timemap-src", "quakes")
        page.wait_for_function(
            "document.getElementById('timemap-plot').dataset.src === 'quakes'"
            f" && +document.getElementById('timemap-plot').dataset.points === {len(quakes) - 2}"
        )
        page.locator("#range-plot").screenshot(path=str(shots / "range.png"))
        page.locator("#timemap-plot").screenshot(path=str(shots / "timemap.png"))

        # a circle around the receiver: the aircraft stays, every quake goes
        page.evaluate(f"geoview.setView({RX[0]}, {RX[1]}, 256 * 2 ** 9)")
        page.click("#btn-circle")
        drag(page, RX, (RX[0], RX[1] + 0.6))  # ~53 km
        wait_ready(page)
        sub = page.evaluate("geoview.state.subscription")
        assert sub["via"] == "cells" and sub["region"]["type"] == "circle"
        assert 40 < sub["region"]["radius_km"] < 65
        page.wait_for_function("geoview.markers('aircraft').length === 1")
        assert marker_ids(page, "quake") == set()
        page.screenshot(path=str(shots / "circle.png"))

        # a rectangle over northern California: exactly the quakes inside it
        page.evaluate("geoview.setView(38.5, -122.5, 256 * 2 ** 7)")
        page.click("#btn-rect")
        drag(page, (39.6, -124.0), (37.4, -121.0))
        wait_ready(page)
        sub = page.evaluate("geoview.state.subscription")
        r = sub["region"]
        rect = Rect(r["south"], r["west"], r["north"], r["east"])
        inside = {k for k, (lat, lon) in quakes.items() if rect.contains(lat, lon)}
        assert 3 <= len(inside) < len(quakes)
        page.wait_for_function(f"geoview.markers('quake').length === {len(inside)}")
        assert marker_ids(page, "quake", "key") == inside
        assert marker_ids(page, "aircraft") == set()
        page.screenshot(path=str(shots / "rectangle.png"))

        # clearing the region brings everything back
        page.click("#btn-clear")
        wait_ready(page)
        page.wait_for_function(f"geoview.markers('quake').length === {len(quakes)}")
        browser.close()
    assert errors == []
