"""Errors raised by the IQ sample sources.

::

    Exception
     └── IqSourceError               any failure to produce samples
          ├── IqConnectionError      .address: cannot connect, or the connection dropped
          ├── IqProtocolError        .field: the peer does not speak rtl_tcp (bad header)
          └── DeviceUnavailableError .device: no dongle at that index/serial, or
                                     librtlsdr/pyrtlsdr cannot be loaded

End of stream is not an error: `IqSource.read_block` returns None.
"""

from __future__ import annotations

__all__ = ["DeviceUnavailableError", "IqConnectionError", "IqProtocolError", "IqSourceError"]


class IqSourceError(Exception):
    """An IQ source cannot deliver samples."""


class IqConnectionError(IqSourceError):
    """A network IQ source cannot connect, or lost its connection."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: {reason}")


class IqProtocolError(IqSourceError):
    """The peer sent something that is not the expected protocol."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class DeviceUnavailableError(IqSourceError):
    """The RTL-SDR device (or the library to drive it) is not available."""

    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(f"RTL-SDR {device}: {reason}")
