"""A small rtl_tcp server that replays a u8 IQ recording (for tests and the offline demo).

It speaks the server side of the protocol in rtl_tcp.py: the 12-byte ``RTL0`` header,
then the recording's bytes, while a per-connection thread parses the client's 5-byte
commands and records them (`commands`, in arrival order, across connections).

Pacing: ``realtime=True`` sends the samples no faster than the sample rate (the
latest 0x02 command from the client, else `sample_rate_hz`); otherwise as fast as the
client reads (TCP flow control paces the server).

Connections are served one at a time. With ``resume=True`` a new connection continues
where the previous one stopped, like a live receiver that kept running; with `loop`
the recording repeats forever, else the server closes the connection at its end.
`drop_after_bytes` makes the server close the first `drops` connections after that
many sample bytes (to test reconnects).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hardware.iq.rtl_tcp import (
    CMD_SAMPLE_RATE,
    COMMAND_BYTES,
    decode_command,
    encode_header,
)

__all__ = ["RtlTcpReplayServer", "ServerCommand"]


@dataclass(frozen=True, slots=True)
class ServerCommand:
    """One command received: which connection (0-based), its id and parameter."""

    connection: int
    command: int
    value: int


class RtlTcpReplayServer:
    """Serves `data` (bytes or a file path) over rtl_tcp on `host:port` (0 = any free port)."""

    def __init__(
        self,
        data: bytes | Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        realtime: bool = False,
        sample_rate_hz: int = 2_000_000,
        loop: bool = False,
        resume: bool = True,
        tuner_type: int = 5,
        gain_count: int = 29,
        chunk_bytes: int = 16_384,
        drop_after_bytes: int | None = None,
        drops: int = 1,
    ) -> None:
        self.data = data if isinstance(data, bytes) else Path(data).read_bytes()
        if len(self.data) < 2:
            raise ValueError("the recording holds no IQ sample")
        self.realtime = realtime
        self.sample_rate_hz = sample_rate_hz
        self.loop = loop
        self.resume = resume
        self.tuner_type = tuner_type
        self.gain_count = gain_count
        self.chunk_bytes = chunk_bytes - chunk_bytes % 2
        self.drop_after_bytes = drop_after_bytes
        self.drops_left = drops if drop_after_bytes is not None else 0
        self.commands: list[ServerCommand] = []
        self.connections = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._offset = 0
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"rtl_tcp://{self.host}:{self.port}"

    def start(self) -> RtlTcpReplayServer:
        """Start serving in a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="rtl_tcp-replay",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._listener.close()

    def __enter__(self) -> RtlTcpReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def commands_since(self, index: int) -> list[ServerCommand]:
        """Commands received after the first `index` (for printing them as they come)."""
        with self._lock:
            return self.commands[index:]

    def commands_of(self, command: int) -> list[int]:
        """Parameters received for one command id, in order."""
        with self._lock:
            return [c.value for c in self.commands if c.command == command]

    def serve_forever(self) -> None:
        """Accept and serve connections one at a time until `stop`."""
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        index = self.connections
        self.connections += 1
        reader = threading.Thread(target=self._read_commands, args=(conn, index),
                                  name=f"rtl_tcp-commands-{index}", daemon=True)
        reader.start()
        drop_at = None
        if self.drops_left > 0 and self.drop_after_bytes is not None:
            self.drops_left -= 1
            drop_at = self.drop_after_bytes
        if not self.resume:
            self._offset = 0
        try:
            conn.sendall(encode_header(self.tuner_type, self.gain_count))
            self._stream(conn, drop_at)
        except OSError:
            pass  # the client went away
        finally:
            # Half-close and let the client close first: closing with its commands
            # still unread would send RST, and the client could lose the last samples.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        reader.join(2.0)

    def _stream(self, conn: socket.socket, drop_at: int | None) -> None:
        sent = 0
        started = time.monotonic()
        data = self.data
        while not self._stop.is_set():
            if self._offset >= len(data):
                if not self.loop:
                    return
                self._offset = 0
            n = min(self.chunk_bytes, len(data) - self._offset)
            if drop_at is not None:
                n = min(n, drop_at - sent)
                if n <= 0:
                    return
            if self.realtime:
                rate = self.current_rate_hz()
                due = started + (sent + n) / 2 / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            conn.sendall(data[self._offset : self._offset + n])
            self._offset += n
            sent += n
            self.bytes_sent += n

    def current_rate_hz(self) -> int:
        """The sample rate the client asked for last (else the configured one)."""
        rates = self.commands_of(CMD_SAMPLE_RATE)
        return rates[-1] if rates and rates[-1] > 0 else self.sample_rate_hz

    def _read_commands(self, conn: socket.socket, index: int) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(256)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            while len(pending) >= COMMAND_BYTES:
                command, value = decode_command(pending[:COMMAND_BYTES])
                pending = pending[COMMAND_BYTES:]
                with self._lock:
                    self.commands.append(ServerCommand(index, command, value))
