"""The adsb source in-process: reconnects, drops, a missing dongle beside a working
source, the publisher's throttling and ids, and the config keys."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from adsb_fixtures import (
    ICAO,
    Collect,
    FileDecode,
    OneShotServer,
    distinct_ms,
    make_ctx,
    matches_a_fix,
)
from native_kernels import require_native
from source_kit import make_cfg

from daemon.config import ConfigErrors, parse_config
from daemon.metrics import Metrics
from daemon.sources import build_source
from daemon.sources.adsb import FIELDS
from daemon.sources.adsb import beast as beast_type
from daemon.sources.adsb.feeds import FeedError, TimestampClock
from daemon.sources.adsb.tracker import AircraftPublisher
from daemon.sources.iq_pump import END, BlockPump
from daemon.supervisor import Supervisor
from hardware.iq.base import IqBlock, IqSource
from hardware.iq.rtl_tcp_server import RtlTcpReplayServer


def wait_for(condition: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_rtl_tcp_disconnect_mid_stream_reconnects_and_resumes(
        tmp_path: Path, modes1_path: Path, modes1_decode: FileDecode) -> None:
    ctx = make_ctx(tmp_path)
    emit = Collect()
    stop = threading.Event()
    # The server drops the first client after 40 % of the file; a live server keeps
    # going, so the second connection continues from there.
    with RtlTcpReplayServer(modes1_path, drop_after_bytes=300_000) as server:
        source = build_source("air", make_cfg(FIELDS, "adsb", min_interval_s=0.0,
                                              input=server.url), ctx)
        thread = threading.Thread(target=source.run, args=(emit, stop, False), daemon=True)
        thread.start()
        # The last fixes of the file (south of 36.98 N) come only after the reconnect.
        resumed = wait_for(lambda: any(e.lat < 36.98 for e in emit.positions()))
        stop.set()
        thread.join(10)
    assert resumed, "no position from after the reconnect"
    assert not thread.is_alive()
    assert server.connections >= 2
    found = emit.positions()
    assert all(matches_a_fix(e.lat, e.lon, modes1_decode.fixes) for e in found)
    assert len(found) >= 0.8 * distinct_ms(modes1_decode.fixes)
    assert ctx.metrics.get("adsb_samples_total", source="air") == pytest.approx(
        modes1_path.stat().st_size / 2)


def test_missing_dongle_is_retried_while_another_source_keeps_publishing(
        tmp_path: Path, modes1_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(tmp_path)
    dongle = build_source("dongle", make_cfg(FIELDS, "adsb", input="rtlsdr://7",
                                             backoff_max_s=0.2), ctx)
    recording = build_source("recording", make_cfg(FIELDS, "adsb", input=str(modes1_path),
                                                   min_interval_s=0.0), ctx)
    sup = Supervisor(ctx.metrics, backoff_initial_s=0.1, backoff_max_s=0.5)
    dongle_events, recording_events = Collect(), Collect()
    with caplog.at_level(logging.WARNING):
        sup.start(dongle, dongle_events)
        sup.start(recording, recording_events)
        retried = wait_for(lambda: ctx.metrics.get("adsb_input_errors_total",
                                                   source="dongle") >= 3, 10)
        published = wait_for(lambda: len(recording_events.positions()) > 20, 10)
        still_running = sup.states["dongle"].running
        sup.stop()
        assert sup.join(10) == []
    assert retried and published and still_running
    assert dongle_events.events == []
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("dongle")]
    assert any("RTL-SDR index 7" in m and ("pip install" in m or "plugged in" in m)
               for m in messages), messages


def test_once_with_an_unreachable_feed_fails_the_pass(tmp_path: Path) -> None:
    with OneShotServer(b"") as server:
        port = server.port
    source = beast_type.build("beast", make_cfg(beast_type.FIELDS, "beast", port=port),
                              make_ctx(tmp_path))
    with pytest.raises(FeedError, match=f"cannot connect to 127.0.0.1:{port}"):
        source.run(Collect(), threading.Event(), once=True)


class BurstSource(IqSource):
    """Returns `n` blocks as fast as asked, then the end."""

    sample_rate_hz = 2_000_000

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0

    def read_block(self) -> IqBlock | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return IqBlock(np.full(2000, 127, np.uint8), (self.i - 1) * 1000, float(self.i))

    def close(self) -> None:
        pass


def drain(pump: BlockPump) -> list[object]:
    items: list[object] = []
    while (item := pump.get(2.0)) is not None:
        items.append(item)
        if item is END:
            break
    return items


def test_a_slow_demodulator_makes_the_reader_drop_blocks_never_wait() -> None:
    pump = BlockPump(BurstSource(10), max_blocks=2).start()
    # Nobody consumes: the reader still reads all ten blocks, dropping what does not fit.
    assert wait_for(lambda: pump.read_blocks == 10, 5)
    assert pump.dropped_blocks == 8
    items = drain(pump)
    pump.stop()
    blocks = [b for b in items if isinstance(b, IqBlock)]
    assert [b.first_sample for b in blocks] == [0, 1000]
    assert items[-1] is END


def test_lossless_pump_delivers_every_block_in_order() -> None:
    pump = BlockPump(BurstSource(10), max_blocks=2, lossless=True).start()
    items = drain(pump)
    pump.stop()
    blocks = [b for b in items if isinstance(b, IqBlock)]
    assert [b.first_sample for b in blocks] == [i * 1000 for i in range(10)]
    assert pump.dropped_blocks == 0


class GatedSource(BurstSource):
    """Three blocks at once, the fourth only when `gate` is set."""

    def __init__(self) -> None:
        super().__init__(4)
        self.gate = threading.Event()

    def read_block(self) -> IqBlock | None:
        if self.i == 3:
            self.gate.wait(5)
        return super().read_block()


def test_block_after_a_drop_is_marked_as_a_discontinuity() -> None:
    source = GatedSource()
    pump = BlockPump(source, max_blocks=1).start()
    assert wait_for(lambda: pump.read_blocks == 3, 5)  # block 0 queued, 1 and 2 dropped
    first = pump.get(1.0)
    source.gate.set()
    after_gap = pump.get(2.0)
    pump.stop()
    assert isinstance(first, IqBlock) and not first.discontinuity
    assert isinstance(after_gap, IqBlock)
    assert (after_gap.first_sample, after_gap.discontinuity) == (3000, True)
    assert pump.dropped_blocks == 2


@dataclass
class FakeAircraft:
    icao: int = 0x4D2023
    last_seen_s: float = 100.0
    messages: int = 1
    signal_level: float | None = -10.0
    callsign: str | None = None
    category: str | None = None
    squawk: str | None = None
    emergency: str | None = None
    altitude_ft: int | None = None
    gnss_height_m: float | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    position_t_s: float | None = None
    track_deg: float | None = None
    speed_mps: float | None = None
    vrate_mps: float | None = None


def test_positions_are_throttled_per_aircraft_and_ids_stay_unique() -> None:
    emit = Collect()
    pub = AircraftPublisher("air", "st", (37.0, 13.8), emit, min_interval_s=1.0)
    ac = FakeAircraft(lat_deg=37.1, lon_deg=13.9, altitude_ft=10_000)
    for t_s in (100.0, 100.4, 100.9995, 101.0, 101.5, 102.2):
        ac.position_t_s = ac.last_seen_s = t_s
        pub.update(ac)
    got = emit.positions()
    assert [e.t for e in got] == [100_000, 101_000, 102_200]
    assert [e.id for e in got] == [f"adsb:{ICAO}:100000", f"adsb:{ICAO}:101000",
                                   f"adsb:{ICAO}:102200"]
    assert got[0].alt == pytest.approx(3048.0) and got[0].alt_ref == "msl"
    assert got[0].data["alt_baro_m"] == pytest.approx(3048.0)


def test_gnss_height_alone_is_published_as_ellipsoidal() -> None:
    emit = Collect()
    pub = AircraftPublisher("air", "st", (37.0, 13.8), emit)
    pub.update(FakeAircraft(lat_deg=37.1, lon_deg=13.9, gnss_height_m=7000.0,
                            position_t_s=100.0))
    (event,) = emit.positions()
    assert (event.alt, event.alt_ref) == (7000.0, "ellipsoid")


def test_identity_is_published_on_change_at_the_station_before_any_fix() -> None:
    emit = Collect()
    pub = AircraftPublisher("air", "st", (37.0, 13.8), emit)
    ac = FakeAircraft(callsign="AMC421")
    pub.update(ac)
    pub.update(ac)  # nothing changed
    ac.last_seen_s, ac.squawk = 101.0, "7700"
    pub.update(ac)
    idents = [e for e in emit.events if e.kind == "aircraft.identity"]
    assert [(e.lat, e.lon, e.data["squawk"]) for e in idents] == [
        (37.0, 13.8, None), (37.0, 13.8, "7700")]
    assert idents[1].id == f"adsb:{ICAO}:101000:identity"


def test_a_non_icao_track_is_a_different_aircraft_from_the_same_24_bits() -> None:
    from daemon.sources.adsb.tracker import ModeSTracker
    from hardware.modes.crc import with_parity
    from hardware.modes.frame_check import AddressBook

    emit = Collect()
    pub = AircraftPublisher("air", "st", (37.0, 13.8), emit)
    tracker = ModeSTracker("air", pub, Metrics(), max_range_m=500_000.0, book=AddressBook())
    ident_me = bytes.fromhex("2015A678D4D220")  # identification EZY85MH
    address = bytes.fromhex(ICAO)
    df17 = with_parity(bytes([0x8D]) + address + ident_me)
    anonymous = with_parity(bytes([0x91]) + address + ident_me)  # DF18 CF 1
    tracker.handle_frame(df17, 100.0, None)
    tracker.handle_frame(anonymous, 101.0, None)
    assert len(tracker.table) == 2
    idents = [e for e in emit.events if e.kind == "aircraft.identity"]
    assert [(e.id, e.data["icao"]) for e in idents] == [
        (f"adsb:{ICAO}:100000:identity", ICAO), (f"adsb:~{ICAO}:101000:identity", f"~{ICAO}")]


def test_beast_timestamps_keep_the_receivers_spacing_until_they_drift() -> None:
    clock = TimestampClock(max_drift_s=2.0)
    assert clock.time_s(12_000_000, 1000.0) == 1000.0
    assert clock.time_s(18_000_000, 1000.01) == pytest.approx(1000.5)
    assert clock.time_s(0, 1000.02) == 1000.02  # no timestamp: host clock
    assert clock.time_s(120_000_000, 1000.03) == 1000.03  # 9 s ahead: re-anchored
    assert clock.reanchors == 1


CONFIG = """
[station]
id = "st"
lat = 37.0
lon = 13.8

[sources.dongle]
type = "adsb"
input = "rtlsdr://0"
gain = 49.6

[sources.tcp]
type = "adsb"
input = "rtl_tcp://192.168.1.20:1234"
rate = 2400000

[sources.beast]
type = "beast"
host = "piaware.local"

[sources.sbs]
type = "sbs"
time_zone = "local"
"""


def test_sample_config_blocks_validate_with_their_defaults() -> None:
    config = parse_config(CONFIG, "config.toml")
    assert config.sources["beast"]["port"] == 30005
    assert config.sources["sbs"]["port"] == 30003
    assert config.sources["dongle"]["frequency_hz"] == 1_090_000_000


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('input = "http://x"', "sources.tcp.input", "unknown scheme"),
        ("rate = 3200000", "sources.tcp.rate", "2400000"),
        ('gain = "loud"', "sources.tcp.gain", "auto"),
        ("min_intervall_s = 2", "sources.tcp.min_intervall_s", 'did you mean "min_interval_s"'),
        ('native_kernels = "fast"', "sources.tcp.native_kernels", '"auto", true or false'),
    ],
)
def test_bad_keys_are_reported_with_the_key(line: str, key: str, words: str) -> None:
    text = CONFIG.replace('rate = 2400000', line) if "input" not in line else CONFIG.replace(
        'input = "rtl_tcp://192.168.1.20:1234"', line)
    with pytest.raises(ConfigErrors) as err:
        parse_config(text, "config.toml")
    (problem,) = err.value.errors
    assert problem.key == key
    assert words in problem.message


def test_metrics_count_messages_by_df_and_repairs(tmp_path: Path, modes1_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    build_source("air", make_cfg(FIELDS, "adsb", input=str(modes1_path)), ctx).run(
        Collect(), threading.Event(), once=True)
    m: Metrics = ctx.metrics
    assert m.get("adsb_messages_total", source="air", df="17") > 150
    assert m.get("adsb_repaired_total", source="air") >= 1
    assert m.get("adsb_samples_total", source="air") == modes1_path.stat().st_size // 2
    assert 0 < m.get("adsb_max_range_m", source="air") < 20_000
    assert m.get("adsb_aircraft", source="air") == 1


def test_batch_samples_trades_latency_only_the_events_are_the_same(
        tmp_path: Path, modes1_path: Path) -> None:
    def events(**cfg: object) -> list[tuple[str, int, float | None, float | None]]:
        emit = Collect()
        source = build_source("air", make_cfg(FIELDS, "adsb", input=str(modes1_path),
                                              start_time="2024-05-01T00:00:00Z",
                                              min_interval_s=0, **cfg),
                              make_ctx(tmp_path))
        source.run(emit, threading.Event(), once=True)
        assert source.receiver.batch_samples == cfg.get("batch_samples", 1_048_576)
        return [(e.id, e.t, e.lat, e.lon) for e in emit.events]

    batched = events()
    assert len([e for e in batched if e[0].startswith("adsb:")]) > 20
    # Every block demodulated as it comes, and tiny blocks gathered into big batches
    # (more blocks per batch than the source's minimum table of recent blocks).
    assert events(batch_samples=0) == batched
    assert events(block_samples=4096, batch_samples=262_144) == batched


def test_native_kernels_change_the_cpu_not_the_events(tmp_path: Path, modes1_path: Path) -> None:
    require_native()

    def events(setting: object) -> list[tuple[str, int, float | None, float | None]]:
        emit = Collect()
        source = build_source("air", make_cfg(FIELDS, "adsb", input=str(modes1_path),
                                              start_time="2024-05-01T00:00:00Z",
                                              min_interval_s=0, native_kernels=setting),
                              make_ctx(tmp_path))
        assert source.receiver.demod.native is (setting is not False)
        source.run(emit, threading.Event(), once=True)
        return [(e.id, e.t, e.lat, e.lon) for e in emit.events]

    compiled = events("auto")
    assert len(compiled) > 20
    assert events(False) == compiled
    assert events(True) == compiled
