"""A client for the rtl_tcp protocol (osmocom ``rtl_tcp``; not pyrtlsdr's own protocol).

On connect the server sends a 12-byte header, then raw u8 IQ forever::

    offset  size  field
    0       4     magic "RTL0"
    4       4     tuner type, uint32 big-endian (see TUNER_TYPES)
    8       4     number of gain steps the tuner offers, uint32 big-endian

The client sends 5-byte commands at any time::

    0     1  command id
    1..4  4  parameter, uint32 big-endian (signed values two's complement)

    0x01 centre frequency, Hz          0x05 frequency correction, ppm (signed)
    0x02 sample rate, Hz               0x08 RTL2832 digital AGC, 0/1
    0x03 gain mode, 0 auto / 1 manual  0x0e bias tee, 0/1
    0x04 tuner gain, tenths of a dB

The server never answers commands; samples simply continue. There is no framing:
block boundaries here are the client's choice.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hardware.iq.base import DEFAULT_BLOCK_SAMPLES, IqBlock, IqSource, TunerSettings
from hardware.iq.errors import IqConnectionError, IqProtocolError

__all__ = [
    "CMD_AGC",
    "CMD_BIAS_TEE",
    "CMD_FREQUENCY",
    "CMD_GAIN",
    "CMD_GAIN_MODE",
    "CMD_PPM",
    "CMD_SAMPLE_RATE",
    "COMMAND_BYTES",
    "HEADER_BYTES",
    "TUNER_TYPES",
    "RtlTcpClient",
    "RtlTcpHeader",
    "decode_command",
    "decode_header",
    "encode_command",
    "encode_header",
    "tuning_commands",
]

HEADER_BYTES = 12
COMMAND_BYTES = 5
MAGIC = b"RTL0"

CMD_FREQUENCY = 0x01
CMD_SAMPLE_RATE = 0x02
CMD_GAIN_MODE = 0x03
CMD_GAIN = 0x04
CMD_PPM = 0x05
CMD_AGC = 0x08
CMD_BIAS_TEE = 0x0E

TUNER_TYPES = {0: "unknown", 1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T",
               6: "R828D"}


@dataclass(frozen=True, slots=True)
class RtlTcpHeader:
    """The server's greeting: tuner type id and how many gain steps it has."""

    tuner_type: int
    gain_count: int

    @property
    def tuner_name(self) -> str:
        return TUNER_TYPES.get(self.tuner_type, f"type {self.tuner_type}")


def encode_header(tuner_type: int, gain_count: int) -> bytes:
    """The 12-byte greeting a server sends."""
    return MAGIC + struct.pack(">II", tuner_type, gain_count)


def decode_header(raw: bytes) -> RtlTcpHeader:
    """Parse the 12-byte greeting; raises IqProtocolError when it is not rtl_tcp."""
    if len(raw) != HEADER_BYTES:
        raise IqProtocolError("header", f"{len(raw)} bytes, expected {HEADER_BYTES}")
    if raw[:4] != MAGIC:
        raise IqProtocolError(
            "header", f"magic {bytes(raw[:4])!r} is not {MAGIC!r}: not an rtl_tcp server"
        )
    tuner_type, gain_count = struct.unpack(">II", raw[4:])
    return RtlTcpHeader(tuner_type, gain_count)


def encode_command(command: int, value: int) -> bytes:
    """One 5-byte command; negative values (ppm) are sent as two's complement."""
    return struct.pack(">BI", command, value & 0xFFFF_FFFF)


def decode_command(raw: bytes) -> tuple[int, int]:
    """(command id, signed parameter) from a 5-byte command."""
    command, value = struct.unpack(">BI", raw)
    if value >= 0x8000_0000:
        value -= 0x1_0000_0000
    return command, value


def tuning_commands(settings: TunerSettings) -> list[bytes]:
    """The commands that set a server up for `settings`, in the order they are sent."""
    out = [
        encode_command(CMD_SAMPLE_RATE, settings.sample_rate_hz),
        encode_command(CMD_FREQUENCY, settings.frequency_hz),
        encode_command(CMD_PPM, settings.ppm),
    ]
    if settings.gain_db is None:
        out.append(encode_command(CMD_GAIN_MODE, 0))
    else:
        out.append(encode_command(CMD_GAIN_MODE, 1))
        out.append(encode_command(CMD_GAIN, round(settings.gain_db * 10)))
    out.append(encode_command(CMD_AGC, int(settings.rtl_agc)))
    if settings.bias_tee:
        out.append(encode_command(CMD_BIAS_TEE, 1))
    return out


class RtlTcpClient(IqSource):
    """Connects to an rtl_tcp server, tunes it, and reads blocks of samples.

    `timeout_s` bounds the connect and each wait for data: a server that goes silent
    for that long is treated as disconnected. `clock` gives UTC epoch seconds.
    """

    def __init__(
        self,
        host: str,
        port: int,
        settings: TunerSettings | None = None,
        *,
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.settings = settings or TunerSettings()
        self.sample_rate_hz = self.settings.sample_rate_hz
        self.block_bytes = 2 * block_samples
        self.timeout_s = timeout_s
        self.clock = clock
        self.header: RtlTcpHeader | None = None
        self._sock: socket.socket | None = None
        self._next_sample = 0
        self._closed = False

    @property
    def address(self) -> str:
        return f"rtl_tcp://{self.host}:{self.port}"

    def describe(self) -> str:
        return self.address

    def connect(self) -> RtlTcpHeader:
        """Open the connection, read the greeting and send the tuning commands."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise IqConnectionError(self.address, exc.strerror or str(exc)) from None
        self._sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = self._read_exact(HEADER_BYTES)
        if len(raw) < HEADER_BYTES:
            self.close()
            raise IqConnectionError(self.address, "closed before sending the rtl_tcp header")
        try:
            self.header = decode_header(bytes(raw))
        except IqProtocolError:
            self.close()
            raise
        self.send(tuning_commands(self.settings))
        return self.header

    def send(self, commands: list[bytes]) -> None:
        """Send raw 5-byte commands (see `encode_command`)."""
        if self._sock is None:
            raise IqConnectionError(self.address, "not connected")
        try:
            self._sock.sendall(b"".join(commands))
        except OSError as exc:
            raise IqConnectionError(self.address, f"send failed: {exc}") from None

    def _read_exact(self, n: int) -> bytearray:
        """Up to `n` bytes; fewer only when the server closed the connection."""
        assert self._sock is not None
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self._sock.recv_into(view[got:])
            except TimeoutError:
                raise IqConnectionError(
                    self.address, f"no samples for {self.timeout_s:g} s"
                ) from None
            except OSError as exc:
                if self._closed:
                    break
                raise IqConnectionError(self.address, exc.strerror or str(exc)) from None
            if k == 0:
                break
            got += k
        del view
        return buf[:got] if got < n else buf

    def read_block(self) -> IqBlock | None:
        """The next block (the last one may be short), or None once the server closed."""
        if self._sock is None:
            if self._closed:
                return None
            self.connect()
        raw = self._read_exact(self.block_bytes)
        usable = len(raw) - len(raw) % 2
        if usable == 0:
            return None
        n = usable // 2
        iq = np.frombuffer(raw, np.uint8, count=usable)
        block = IqBlock(iq, self._next_sample, self.clock() - n / self.sample_rate_hz)
        self._next_sample += n
        return block

    def close(self) -> None:
        self._closed = True
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
