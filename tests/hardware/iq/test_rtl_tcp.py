"""rtl_tcp client against the replay server on loopback: header, commands, samples, drops."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hardware.iq.base import TunerSettings
from hardware.iq.errors import IqConnectionError, IqProtocolError
from hardware.iq.rtl_tcp import (
    CMD_AGC,
    CMD_BIAS_TEE,
    CMD_FREQUENCY,
    CMD_GAIN,
    CMD_GAIN_MODE,
    CMD_PPM,
    CMD_SAMPLE_RATE,
    RtlTcpClient,
    decode_command,
    decode_header,
    encode_command,
    encode_header,
)
from hardware.iq.rtl_tcp_server import RtlTcpReplayServer


@pytest.fixture
def modes1(shared_data: Path) -> bytes:
    return (shared_data / "adsb" / "modes1.bin").read_bytes()


def read_all(client: RtlTcpClient) -> bytes:
    out = []
    expected_first = 0
    while (block := client.read_block()) is not None:
        assert block.first_sample == expected_first
        expected_first += block.n_samples
        out.append(block.iq.tobytes())
    return b"".join(out)


def test_header_and_commands_round_trip() -> None:
    header = decode_header(encode_header(5, 29))
    assert (header.tuner_type, header.gain_count, header.tuner_name) == (5, 29, "R820T")
    assert encode_command(CMD_FREQUENCY, 1_090_000_000) == b"\x01\x40\xf8\x14\x80"
    assert decode_command(encode_command(CMD_PPM, -42)) == (CMD_PPM, -42)


def test_a_server_that_is_not_rtl_tcp_is_refused() -> None:
    with pytest.raises(IqProtocolError) as err:
        decode_header(b"HTTP/1.1 200")
    assert err.value.field == "header"


def test_client_receives_the_whole_recording_and_tunes_the_server(modes1: bytes) -> None:
    settings = TunerSettings(frequency_hz=1_090_000_000, sample_rate_hz=2_400_000,
                             gain_db=49.6, ppm=-3, rtl_agc=True, bias_tee=True)
    with RtlTcpReplayServer(modes1) as server:
        client = RtlTcpClient(server.host, server.port, settings, block_samples=50_000)
        header = client.connect()
        got = read_all(client)
        client.close()
    assert header.tuner_name == "R820T"
    assert got == modes1
    assert server.commands_of(CMD_FREQUENCY) == [1_090_000_000]
    assert server.commands_of(CMD_SAMPLE_RATE) == [2_400_000]
    assert server.commands_of(CMD_GAIN_MODE) == [1]
    assert server.commands_of(CMD_GAIN) == [496]
    assert server.commands_of(CMD_PPM) == [-3]
    assert server.commands_of(CMD_AGC) == [1]
    assert server.commands_of(CMD_BIAS_TEE) == [1]


def test_automatic_gain_sends_gain_mode_zero_and_no_gain() -> None:
    with RtlTcpReplayServer(b"\x7f" * 1000) as server:
        client = RtlTcpClient(server.host, server.port, TunerSettings())
        read_all(client)
        client.close()
    assert server.commands_of(CMD_GAIN_MODE) == [0]
    assert server.commands_of(CMD_GAIN) == []


def test_server_dropping_the_connection_then_resuming_loses_no_sample(modes1: bytes) -> None:
    with RtlTcpReplayServer(modes1, drop_after_bytes=300_000) as server:
        first = RtlTcpClient(server.host, server.port)
        part1 = read_all(first)
        first.close()
        second = RtlTcpClient(server.host, server.port)
        part2 = read_all(second)
        second.close()
    assert len(part1) == 300_000
    assert part1 + part2 == modes1
    assert server.connections == 2


def test_realtime_pacing_follows_the_requested_sample_rate() -> None:
    data = b"\x7f" * 2 * 100_000  # 0.1 s at 1 MS/s
    with RtlTcpReplayServer(data, realtime=True, sample_rate_hz=2_000_000) as server:
        client = RtlTcpClient(server.host, server.port,
                              TunerSettings(sample_rate_hz=1_000_000), block_samples=10_000)
        started = time.monotonic()
        got = read_all(client)
        elapsed = time.monotonic() - started
        client.close()
    assert len(got) == len(data)
    assert elapsed >= 0.09  # paced by the 1 MS/s the client asked for, not 2 MS/s


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(IqConnectionError) as err:
        RtlTcpClient("127.0.0.1", port, timeout_s=2.0).connect()
    assert err.value.address == f"rtl_tcp://127.0.0.1:{port}"


def test_a_silent_server_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    conns: list[socket.socket] = []

    def accept() -> None:
        conn, _ = listener.accept()
        conn.sendall(encode_header(5, 29))
        conns.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    client = RtlTcpClient("127.0.0.1", port, timeout_s=0.3)
    client.connect()
    with pytest.raises(IqConnectionError, match="no samples"):
        client.read_block()
    client.close()
    thread.join(1)
    for conn in conns:
        conn.close()
    listener.close()


def test_blocks_are_numpy_u8_views_of_the_stream(modes1: bytes) -> None:
    with RtlTcpReplayServer(modes1[:10_000]) as server:
        client = RtlTcpClient(server.host, server.port, block_samples=1_000)
        block = client.read_block()
        client.close()
    assert block is not None
    assert block.iq.dtype == np.uint8
    assert block.n_samples == 1_000
