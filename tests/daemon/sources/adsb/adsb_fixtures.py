"""Helpers for the adsb source tests: the reference file decode and one-shot feed servers."""

from __future__ import annotations

import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import source_kit

from daemon.event import Event
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station
from hardware.modes.aircraft import AircraftTable
from hardware.modes.message import decode
from hardware.modes.receiver import ModeSMessage, Receiver

REPO = Path(__file__).resolve().parents[4]
STATION = Station("test-station", 37.0, 13.8)  # the aircraft in modes1.bin is here
ICAO = "4d2023"


@dataclass(frozen=True)
class FileDecode:
    """Receiver + AircraftTable run directly on modes1.bin (the oracle)."""

    messages: list[ModeSMessage]
    fixes: list[tuple[float, float, float]]  # (t_s from file start, lat, lon)


def decode_file(path: Path) -> FileDecode:
    iq = np.fromfile(path, np.uint8)
    rx = Receiver(2_000_000)
    messages: list[ModeSMessage] = []
    for i in range(0, iq.size, 262_144):
        messages += rx.feed(iq[i : i + 262_144])
    messages += rx.flush()
    table = AircraftTable(STATION.lat, STATION.lon, max_range_m=400_000.0)
    fixes = []
    for m in messages:
        if "position" in table.update(decode(m.msg, m.icao), m.t_s):
            ac = table[m.icao]
            assert ac.lat_deg is not None and ac.lon_deg is not None
            fixes.append((m.t_s, ac.lat_deg, ac.lon_deg))
    return FileDecode(messages, fixes)


def distinct_ms(fixes: list[tuple[float, float, float]]) -> int:
    """How many fixes fall in distinct milliseconds (the most position events possible)."""
    return len({round(t * 1000) for t, _, _ in fixes})


def matches_a_fix(lat: float, lon: float, fixes: list[tuple[float, float, float]],
                  tol_deg: float = 1e-7) -> bool:
    return any(abs(lat - fl) <= tol_deg and abs(lon - fo) <= tol_deg for _, fl, fo in fixes)


class Collect(source_kit.Collect):
    """source_kit.Collect, and the aircraft positions it saw."""

    def positions(self) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.kind == "aircraft.position"]


def make_ctx(tmp_path: Path) -> SourceContext:
    return SourceContext(station=STATION, metrics=Metrics(), state_dir=tmp_path / "state",
                         config_dir=tmp_path, memo=lambda producer: {})


class OneShotServer:
    """Serves `payload` to each connection, then closes it (like a feed that stops)."""

    def __init__(self, payload: bytes, chunk_bytes: int = 4096) -> None:
        self.payload = payload
        self.chunk_bytes = chunk_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> OneShotServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                for i in range(0, len(self.payload), self.chunk_bytes):
                    conn.sendall(self.payload[i : i + self.chunk_bytes])
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5)
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass


def run_once(tmp_path: Path, redis_url: str, source_block: str) -> subprocess.CompletedProcess[str]:
    """`geosensord run --once` at STATION with one source (source_kit.run_once)."""
    return source_kit.run_once(tmp_path, redis_url, STATION, source_block)
