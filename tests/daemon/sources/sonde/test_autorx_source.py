"""The `autorx` source: PAYLOAD_SUMMARY datagrams as auto_rx builds them (autorx/ozimux.py),
sent over real UDP sockets; malformed ones counted; into a real redis-server."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis_proc import RedisProcess
from sonde_fixtures import (
    MemoStore,
    make_ctx,
    reference,
    reference_utc_ms,
    write_config,
)
from source_kit import Collect, make_cfg, stream_events

from daemon.config import load_config
from daemon.runtime import open_runtime
from daemon.sources import build_source
from daemon.sources.sonde import autorx
from daemon.sources.sonde.autorx import PayloadError, parse_payload_summary

RX_MS = 1_438_517_000_000  # 2015-08-02T12:03:20Z, shortly after the reference frames


def summary(ref: dict[str, Any], *, with_datetime: bool = True, **changes: Any) -> dict[str, Any]:
    """The PAYLOAD_SUMMARY auto_rx sends for a frame rs41mod decoded (ozimux.py)."""
    gps = datetime.fromisoformat(ref["datetime"].replace("Z", "+00:00"))
    packet: dict[str, Any] = {
        "type": "PAYLOAD_SUMMARY", "station": "PY3ABC", "callsign": ref["id"],
        "latitude": ref["lat"], "longitude": ref["lon"], "altitude": ref["alt"],
        "speed": ref["vel_h"] * 3.6, "heading": ref["heading"],
        "time": gps.strftime("%H:%M:%S"), "comment": "Radiosonde", "model": "RS41-SG",
        "freq": "402.0000 MHz", "temp": -273.0, "frame": ref["frame"], "bt": 65535,
        "humidity": -1.0, "sats": ref["sats"], "batt": ref["batt"], "snr": 14.2,
        "fest": [-2250.0, 2625.0], "f_centre": 402_000_187.5, "ppm": 3.1,
        "subtype": "RS41-SG", "sdr_device_idx": "0", "vel_v": ref["vel_v"],
    }
    if with_datetime:  # newer auto_rx: the full time, isoformat() of an aware datetime
        packet["datetime"] = gps.isoformat()
    packet.update(changes)
    return packet


def encode(packet: Any) -> bytes:
    return json.dumps(packet).encode("ascii")


@pytest.mark.parametrize("with_datetime", [True, False])
def test_payload_summary_maps_to_the_rs41_sources_fields(with_datetime: bool) -> None:
    ref = reference()[0]
    fix = parse_payload_summary(encode(summary(ref, with_datetime=with_datetime)), RX_MS)
    event = fix.to_event("autorx", "poa", RX_MS)
    assert event.id == "sonde:L1830070:3172"  # the id the rs41 source gives this frame
    assert event.t == reference_utc_ms(ref)  # RS41 time is GPS: 17 s taken off
    assert (event.lat, event.lon, event.alt, event.alt_ref) == (
        ref["lat"], ref["lon"], ref["alt"], "ellipsoid")
    d = event.data
    assert d["vel_h_mps"] == pytest.approx(ref["vel_h"], abs=1e-3)  # from km/h
    assert d["heading_deg"] == pytest.approx(ref["heading"], abs=1e-3)
    assert d["vel_v_mps"] == pytest.approx(ref["vel_v"], abs=1e-3)
    assert (d["type"], d["subtype"], d["sats"], d["batt_v"]) == ("RS41", "RS41-SG", 8, 2.7)
    assert (d["freq_hz"], d["snr_db"], d["uploader"]) == (402_000_188, 14.2, "PY3ABC")
    # auto_rx's "unknown" markers are left out, not published as -273 C or -1 %.
    assert "temp_c" not in d and "humidity_pct" not in d


def test_unknown_speed_and_heading_are_null_and_other_models_keep_utc() -> None:
    packet = {"type": "PAYLOAD_SUMMARY", "callsign": "DFM-19012345", "latitude": -30.1,
              "longitude": -51.0, "altitude": 1200.0, "speed": -1, "heading": -1,
              "time": "23:59:58", "model": "DFM17", "freq": "403.0100 MHz", "temp": 21.5,
              "frame": 1_714_608_000}
    rx_ms = round(datetime(2024, 5, 2, 0, 0, 1, tzinfo=UTC).timestamp() * 1000)
    fix = parse_payload_summary(encode(packet), rx_ms)
    assert fix.serial == "19012345"  # as auto_rx uploads it to SondeHub
    assert fix.vel_h_mps is None and fix.heading_deg is None
    assert fix.freq_hz == pytest.approx(403_010_000)
    # HH:MM:SS only, just before midnight, received just after it: the day before.
    assert fix.t_ms == round(datetime(2024, 5, 1, 23, 59, 58, tzinfo=UTC).timestamp() * 1000)
    assert fix.extra["temp_c"] == 21.5


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe not json", "json"),
    (b"[1, 2, 3]", "not_object"),
    (b'{"type": "GPS", "latitude": 1, "longitude": 2}', "other_type"),
    (encode({**summary(reference()[0]), "callsign": ""}), "missing_field"),
    (encode({**summary(reference()[0]), "latitude": 123.0}), "bad_field"),
    (encode({**summary(reference()[0]), "frame": "x"}), "bad_field"),
    (encode({**summary(reference()[0]), "datetime": "yesterday"}), "bad_field"),
    (encode({**summary(reference()[0]), "latitude": 0.0, "longitude": 0.0}), "no_fix"),
])
def test_malformed_datagrams_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload_summary(raw, RX_MS)
    assert info.value.reason == reason


def start(source: autorx.AutoRxSource, emit: Any) -> threading.Thread:
    thread = threading.Thread(target=source.run, args=(emit, threading.Event(), True),
                              daemon=True)
    thread.start()
    assert source.bound.wait(5), "the source did not bind"
    return thread


def send(port: int, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
            time.sleep(0.01)  # keep them in order through the loopback


def test_udp_datagrams_publish_new_frames_and_count_malformed_ones(tmp_path: Path) -> None:
    refs = reference()[:3]
    memo = MemoStore()
    ctx = make_ctx(tmp_path, memo)
    cfg = make_cfg(autorx.FIELDS, "autorx", port=0, once_timeout_s=0.5)
    source = autorx.build("autorx", cfg, ctx)
    assert source.bind_host == "127.0.0.1"  # loopback unless configured
    collect = Collect()
    thread = start(source, collect)
    send(source.bound_port, [
        encode(summary(refs[0])),
        b"{not json",
        encode(summary(refs[1])),
        encode(summary(refs[1])),  # the same frame again: published once
        b'{"type": "GPS", "latitude": -30.0, "longitude": -51.0}',  # a chase car
        encode({**summary(refs[2]), "latitude": "north"}),
        encode(summary(refs[2])),
    ])
    thread.join(10)
    assert not thread.is_alive(), "--once did not end after the silence"
    assert [e.data["frame"] for e in collect.events] == [3172, 3173, 3174]
    assert [c["memo"] for c in collect.calls] == [("L1830070", "3172"), ("L1830070", "3173"),
                                                  ("L1830070", "3174")]
    m = ctx.metrics
    assert m.get("bad_input_total", source="autorx", reason="json") == 1
    assert m.get("bad_input_total", source="autorx", reason="bad_field") == 1
    assert m.get("sonde_datagrams_ignored_total", source="autorx") == 1
    assert m.get("sonde_frames_repeated_total", source="autorx") == 1
    assert m.get("sonde_datagrams_total", source="autorx") == 7

    # After a restart the last frame published is remembered (memo), a new one is not.
    memo.record(source.producer, collect)
    again = autorx.build("autorx", cfg, make_ctx(tmp_path, memo))
    collect2 = Collect()
    thread = start(again, collect2)
    send(again.bound_port, [encode(summary(refs[2])), encode(summary(reference()[3]))])
    thread.join(10)
    assert [e.data["frame"] for e in collect2.events] == [3175]


@pytest.mark.slow
def test_datagrams_reach_redis_through_the_pipeline(
        tmp_path: Path, redis_server: RedisProcess) -> None:
    config = load_config(write_config(tmp_path, redis_server.url, """
        [sources.autorx]
        type = "autorx"
        port = 0
        once_timeout_s = 0.5
        """))
    refs = reference()[:5]
    with open_runtime(config) as rt:
        source = build_source("autorx", config.sources["autorx"], rt.source_context())
        assert isinstance(source, autorx.AutoRxSource)
        thread = start(source, rt.pipeline.emitter(source.producer, "autorx"))
        send(source.bound_port, [encode(summary(r)) for r in refs] + [b"garbage"])
        thread.join(10)
        assert rt.pipeline.wait_idle(10)
        assert rt.sink.memo(source.producer) == {"L1830070": "3176"}
    entries = stream_events(redis_server.url)
    assert [e["id"] for e in entries] == [f"sonde:L1830070:{r['frame']}" for r in refs]
    assert [int(e["t"]) for e in entries] == [reference_utc_ms(r) for r in refs]
    assert len(stream_events(redis_server.url, "geo:src:autorx")) == 5
