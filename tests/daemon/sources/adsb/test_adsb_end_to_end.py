"""`geosensord run --once` with ADS-B sources into a real redis-server: rtl_tcp, file,
Beast and SBS inputs all publish the positions the direct file decode finds."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
from adsb_fixtures import (
    ICAO,
    STATION,
    FileDecode,
    OneShotServer,
    distinct_ms,
    matches_a_fix,
    run_once,
)
from redis_proc import RedisProcess
from source_kit import stream_events

from hardware.iq.rtl_tcp import CMD_FREQUENCY, CMD_SAMPLE_RATE
from hardware.iq.rtl_tcp_server import RtlTcpReplayServer
from hardware.modes.aircraft import AircraftTable
from hardware.modes.beast import encode_beast, signal_byte
from hardware.modes.message import decode
from hardware.modes.sbs import SbsMessage, format_sbs_line

pytestmark = pytest.mark.slow
START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z


def positions(url: str) -> list[dict[str, str]]:
    return [f for f in stream_events(url) if f["kind"] == "aircraft.position"]


def assert_positions_match(found: list[dict[str, str]], ref: FileDecode,
                           tol_deg: float = 1e-7, share: float = 0.9) -> None:
    assert found, "no aircraft.position events"
    for f in found:
        data = json.loads(f["data"])
        assert data["icao"] == ICAO
        assert f["id"] == f"adsb:{ICAO}:{f['t']}"
        assert matches_a_fix(float(f["lat"]), float(f["lon"]), ref.fixes, tol_deg), f
    assert len(found) >= share * distinct_ms(ref.fixes)
    assert len({f["id"] for f in found}) == len(found)


def test_rtl_tcp_input_publishes_the_file_decodes_positions(
        tmp_path: Path, redis_server: RedisProcess, modes1_path: Path,
        modes1_decode: FileDecode) -> None:
    with RtlTcpReplayServer(modes1_path) as server:
        done = run_once(tmp_path, redis_server.url, f"""
            [sources.air]
            type = "adsb"
            input = "{server.url}"
            min_interval_s = 0
            """)
    assert done.returncode == 0, done.stderr
    found = positions(redis_server.url)
    assert_positions_match(found, modes1_decode)
    assert server.commands_of(CMD_FREQUENCY) == [1_090_000_000]
    assert server.commands_of(CMD_SAMPLE_RATE) == [2_000_000]
    first = json.loads(found[0]["data"])
    assert first["category"] == "A0" or first["callsign"] in (None, "AMC421")
    assert 6000 < float(found[0]["alt"]) < 7100  # about 22,800 ft pressure altitude


def test_file_input_is_deterministic_and_a_second_run_publishes_nothing_new(
        tmp_path: Path, redis_server: RedisProcess, modes1_path: Path,
        modes1_decode: FileDecode) -> None:
    block = f"""
        [sources.air]
        type = "adsb"
        input = "file://{modes1_path}"
        start_time = "2024-05-01T00:00:00Z"
        min_interval_s = 0
        """
    done = run_once(tmp_path, redis_server.url, block)
    assert done.returncode == 0, done.stderr
    found = positions(redis_server.url)
    assert_positions_match(found, modes1_decode)
    # t is the start time plus the sample offset: each event sits on a reference fix.
    for f in found:
        t_s = (int(f["t"]) - START_MS) / 1000
        near = [fix for fix in modes1_decode.fixes if abs(fix[0] - t_s) <= 0.0006]
        assert matches_a_fix(float(f["lat"]), float(f["lon"]), near), f
    total = len(stream_events(redis_server.url))
    again = run_once(tmp_path, redis_server.url, block)
    assert again.returncode == 0, again.stderr
    assert len(stream_events(redis_server.url)) == total


def test_beast_feed_publishes_the_file_decodes_positions(
        tmp_path: Path, redis_server: RedisProcess, modes1_decode: FileDecode) -> None:
    wire = b"".join(
        encode_beast(m.msg, timestamp_12mhz=1 + m.sample * 6, signal=signal_byte(m.signal_dbfs))
        for m in modes1_decode.messages
    )
    with OneShotServer(wire) as server:
        done = run_once(tmp_path, redis_server.url, f"""
            [sources.beast]
            type = "beast"
            port = {server.port}
            min_interval_s = 0
            """)
    assert done.returncode == 0, done.stderr
    found = positions(redis_server.url)
    assert_positions_match(found, modes1_decode)
    assert all(json.loads(f["data"])["rssi_db"] is not None for f in found)


def sbs_lines(ref: FileDecode) -> bytes:
    """SBS lines a dump1090 would write while decoding modes1.bin (UTC times)."""
    table = AircraftTable(STATION.lat, STATION.lon, max_range_m=400_000.0)
    out = []
    for m in ref.messages:
        changes = table.update(decode(m.msg, m.icao), m.t_s)
        ac = table[m.icao]
        t_ms = START_MS + round(m.t_s * 1000)
        if "callsign" in changes:
            out.append(SbsMessage(1, ac.icao, t_ms, callsign=ac.callsign))
        if "position" in changes:
            out.append(SbsMessage(3, ac.icao, t_ms, altitude_ft=ac.altitude_ft,
                                  lat_deg=ac.lat_deg, lon_deg=ac.lon_deg, on_ground=False))
        if "velocity" in changes:
            out.append(SbsMessage(4, ac.icao, t_ms, speed_kt=ac.speed_kt,
                                  track_deg=ac.track_deg, vrate_fpm=ac.vrate_fpm))
        if "squawk" in changes:
            out.append(SbsMessage(6, ac.icao, t_ms, squawk=ac.squawk))
    return "".join(format_sbs_line(msg, UTC) for msg in out).encode()


def test_sbs_feed_publishes_the_file_decodes_positions(
        tmp_path: Path, redis_server: RedisProcess, modes1_decode: FileDecode) -> None:
    with OneShotServer(b"CLK,,,,,,2024/05/01,00:00:00.000\r\n" + sbs_lines(modes1_decode)
                       ) as server:
        done = run_once(tmp_path, redis_server.url, f"""
            [sources.sbs]
            type = "sbs"
            port = {server.port}
            time_zone = "utc"
            min_interval_s = 0
            """)
    assert done.returncode == 0, done.stderr
    found = positions(redis_server.url)
    # SBS carries 5 decimals (about 1 m).
    assert_positions_match(found, modes1_decode, tol_deg=6e-6)
    assert {int(f["t"]) for f in found} <= {START_MS + round(t * 1000)
                                            for t, _, _ in modes1_decode.fixes}
    idents = [f for f in stream_events(redis_server.url) if f["kind"] == "aircraft.identity"]
    assert any(json.loads(f["data"])["callsign"] == "AMC421" for f in idents)
