"""The `rs41` source: the bundled recording into a real redis-server, IQ over a real
rtl_tcp replay server, cs16 IQ files tuned off the sonde, and failed frames by reason."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from redis_proc import RedisProcess
from rs41_signal import gfsk_audio, gfsk_iq_bursts, reference_frames
from sonde_fixtures import (
    WAV,
    make_ctx,
    reference,
    reference_utc_ms,
    run_once,
)
from source_kit import Collect, make_cfg, stream_events

from daemon.config import load_config
from daemon.sources.sonde import rs41
from hardware.iq.rtl_tcp import CMD_FREQUENCY, CMD_SAMPLE_RATE
from hardware.iq.rtl_tcp_server import RtlTcpReplayServer
from hardware.rs41.wav import write_wav


def u8_iq(chunks: list[np.ndarray], scale: float = 60.0) -> bytes:
    """Complex chunks as rtl_sdr's interleaved unsigned bytes."""
    v = np.concatenate(chunks).view(np.float32)
    return bytes(np.clip(np.rint(v * scale + 127.5), 0, 255).astype(np.uint8).tobytes())


def run_source(cfg: dict[str, object], tmp_path: Path) -> tuple[Collect, rs41.Rs41Source]:
    source = rs41.build("sonde", dict(cfg), make_ctx(tmp_path))
    collect = Collect()
    source.run(collect, threading.Event(), once=True)
    return collect, source


@pytest.mark.slow
def test_wav_run_once_publishes_the_60_reference_frames_once(
        tmp_path: Path, redis_server: RedisProcess) -> None:
    block = f"""
        [sources.sonde]
        type = "rs41"
        input = "{WAV}"
        format = "wav"
        """
    done = run_once(tmp_path, redis_server.url, block)
    assert done.returncode == 0, done.stderr
    found = stream_events(redis_server.url)
    ref = reference()
    assert len(found) == 60
    for entry, r in zip(found, ref, strict=True):
        data = json.loads(entry["data"])
        assert entry["kind"] == "sonde.telemetry"
        assert entry["id"] == f"sonde:L1830070:{r['frame']}"
        assert (data["serial"], data["frame"], data["type"]) == ("L1830070", r["frame"], "RS41")
        assert int(entry["t"]) == reference_utc_ms(r)  # GPS time - 17 s
        assert float(entry["lat"]) == pytest.approx(r["lat"], abs=1e-5)
        assert float(entry["lon"]) == pytest.approx(r["lon"], abs=1e-5)
        assert float(entry["alt"]) == pytest.approx(r["alt"], abs=0.5)
        assert data["alt_ref"] == "ellipsoid"
        assert data["vel_h_mps"] == pytest.approx(r["vel_h"], abs=0.01)
        assert data["heading_deg"] == pytest.approx(r["heading"], abs=0.01)
        assert data["vel_v_mps"] == pytest.approx(r["vel_v"], abs=0.01)
        assert (data["sats"], data["batt_v"], data["rs_errors"]) == (r["sats"], r["batt"], 0)
        assert data["freq_hz"] is None  # audio: the tuning is unknown
    # Replaying the same recording (here in process) publishes nothing twice.
    from daemon.service import run_service

    assert run_service(load_config(tmp_path / "config.toml"), once=True) == 0
    assert len(stream_events(redis_server.url)) == 60


@pytest.mark.slow
def test_iq_over_rtl_tcp_decodes_at_least_58_of_60_frames(tmp_path: Path) -> None:
    # 240 kS/s (an RTL-SDR rate), the sonde 25 kHz above the tuning, noise as strong
    # as the carrier over the whole 240 kHz.
    rate = 240_000
    frames = reference_frames()
    iq = u8_iq(list(gfsk_iq_bursts(frames, rate, 25_000.0, snr_db=0.0, seed=3)))
    with RtlTcpReplayServer(iq) as server:
        # The server replays as fast as we read: wait for the decoder, drop nothing.
        cfg = make_cfg(rs41.FIELDS, "rs41", input=server.url, rate=rate,
                       frequency_hz=402_700_000, lossless=True)
        collect, source = run_source(cfg, tmp_path)
    assert server.commands_of(CMD_FREQUENCY) == [402_700_000]
    assert server.commands_of(CMD_SAMPLE_RATE) == [rate]
    ref = {r["frame"]: r for r in reference()}
    assert len(collect.events) >= 58
    assert len({e.id for e in collect.events}) == len(collect.events)
    for event in collect.events:
        r = ref[event.data["frame"]]
        assert event.t == reference_utc_ms(r)
        assert event.lat == pytest.approx(r["lat"], abs=1e-5)
        assert event.lon == pytest.approx(r["lon"], abs=1e-5)
        # The carrier offset the FM demodulator tracked, added to the tuning.
        assert event.data["freq_hz"] == pytest.approx(402_725_000, abs=1_500)
    # Live inputs remember the last frame per serial (not a file producer).
    assert collect.calls[-1]["memo"] == ("L1830070", str(collect.events[-1].data["frame"]))
    assert source.ctx.metrics.get("sonde_frames_total", source="sonde") == len(collect.events)


def test_cs16_file_tuned_off_the_sonde_is_mixed_back_and_decoded(tmp_path: Path) -> None:
    # The recording was tuned 100 kHz above the sonde (tuner_offset_hz), at 2.4 MS/s.
    rate = 2_400_000
    frames = reference_frames()[:3]
    chunks = list(gfsk_iq_bursts(frames, rate, -100_000.0 + 3_000.0, snr_db=0.0, seed=1))
    path = tmp_path / "sonde.cs16"
    v = np.concatenate(chunks).view(np.float32)
    path.write_bytes(np.clip(np.rint(v * 8000), -32768, 32767).astype("<i2").tobytes())
    cfg = make_cfg(rs41.FIELDS, "rs41", input=str(path), iq_format="cs16", rate=rate,
                   frequency_hz=402_700_000, tuner_offset_hz=100_000)
    collect, _ = run_source(cfg, tmp_path)
    assert [e.data["frame"] for e in collect.events] == [3172, 3173, 3174]
    assert all(e.data["freq_hz"] == pytest.approx(402_703_000, abs=1_500)
               for e in collect.events)
    # A file publishes under its fingerprint with sample offsets as sequence numbers.
    producers = {c["producer"] for c in collect.calls}
    assert len(producers) == 1 and producers.pop().startswith("poa:sonde:")
    seqs = [c["seq"] for c in collect.calls]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_failed_frames_are_counted_by_reason_and_not_published(tmp_path: Path) -> None:
    frames = reference_frames()[:3]
    broken = bytearray(frames[1])
    for i in range(13):  # 13 byte errors in codeword 1: more than RS(255,231) corrects
        broken[60 + 2 * i] ^= 0xA5
    path = tmp_path / "broken.wav"
    write_wav(path, gfsk_audio([frames[0], bytes(broken), frames[2]]), 48_000, 2)
    cfg = make_cfg(rs41.FIELDS, "rs41", input=str(path))  # format "auto": a .wav name
    collect, source = run_source(cfg, tmp_path)
    assert [e.data["frame"] for e in collect.events] == [3172, 3174]
    metrics = source.ctx.metrics
    assert metrics.get("sonde_frames_failed_total", source="sonde",
                       reason="rs_uncorrectable") == 1
    assert metrics.get("sonde_frames_total", source="sonde") == 2


def test_a_missing_recording_fails_the_pass(tmp_path: Path) -> None:
    from hardware.iq.errors import IqSourceError

    cfg = make_cfg(rs41.FIELDS, "rs41", input=str(tmp_path / "nope.wav"))
    with pytest.raises(IqSourceError, match=r"nope\.wav"):
        run_source(cfg, tmp_path)


def test_a_live_input_that_falls_behind_drops_and_counts_blocks(tmp_path: Path) -> None:
    # 2 s of 2.4 MS/s noise arrive over loopback far faster than they can be decoded,
    # and the queue holds one block: the reader drops rather than waits.
    rng = np.random.default_rng(0)
    noise = rng.integers(100, 156, 2 * 4_800_000, dtype=np.uint8).tobytes()
    with RtlTcpReplayServer(noise) as server:
        cfg = make_cfg(rs41.FIELDS, "rs41", input=server.url, rate=2_400_000,
                       queue_blocks=1, block_samples=65_536)
        collect, source = run_source(cfg, tmp_path)
    m = source.ctx.metrics
    dropped = m.get("sonde_blocks_dropped_total", source="sonde")
    assert dropped > 0
    assert m.get("sonde_blocks_total", source="sonde") + dropped == -(-4_800_000 // 65_536)
    # Every sample is either decoded or counted as dropped.
    assert (m.get("sonde_samples_total", source="sonde")
            + m.get("sonde_samples_dropped_total", source="sonde")) == 4_800_000
    assert collect.events == []


@pytest.mark.slow
def test_rtl_tcp_reconnects_after_the_server_drops_the_connection(tmp_path: Path) -> None:
    # 960 kS/s, tuned 50 kHz above the sonde, which sits 2 kHz above its nominal frequency.
    rate = 960_000
    frames = reference_frames()[:6]
    iq = u8_iq(list(gfsk_iq_bursts(frames, rate, -50_000.0 + 2_000.0, snr_db=5.0, seed=2)))
    # The first connection ends in the third frame; the next resumes where it stopped.
    with RtlTcpReplayServer(iq, drop_after_bytes=len(iq) * 5 // 12, resume=True) as server:
        cfg = make_cfg(rs41.FIELDS, "rs41", input=server.url, rate=rate, lossless=True,
                       frequency_hz=402_700_000, tuner_offset_hz=50_000)
        source = rs41.build("sonde", cfg, make_ctx(tmp_path))
        collect = Collect()
        stop = threading.Event()
        thread = threading.Thread(target=source.run, args=(collect, stop, False), daemon=True)
        thread.start()
        for _ in range(200):
            if any(e.data["frame"] == 3177 for e in collect.events):
                break
            thread.join(0.1)
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    published = [e.data["frame"] for e in collect.events]
    assert server.connections >= 2, published
    assert published[:2] == [3172, 3173] and published[-2:] == [3176, 3177]
    assert len(published) >= 5  # at most the frame cut by the drop is lost
    # Each connection tuned the dongle 50 kHz above the sonde.
    assert server.commands_of(CMD_FREQUENCY)[:2] == [402_750_000, 402_750_000]
    assert all(e.data["freq_hz"] == pytest.approx(402_702_000, abs=1_500)
               for e in collect.events)


@pytest.mark.parametrize("shift_hz", [100_000.0, -37_500.0, 12_345.5])
def test_tuner_offset_mixer_is_phase_continuous_across_blocks(shift_hz: float) -> None:
    # 100 kHz and -37.5 kHz at 2.4 MS/s repeat within a short table; 12 345.5 Hz does not
    # (computed with trigonometry): both must be the same continuous oscillator.
    chain = rs41.Rs41Chain(2_400_000, shift_hz=shift_hz)
    lo = np.concatenate([chain.oscillator(n) for n in (1_000, 77, 50_000, 3)])
    expected = np.exp(2j * np.pi * shift_hz * np.arange(lo.size) / 2_400_000)
    np.testing.assert_allclose(lo, expected, atol=2e-4)
