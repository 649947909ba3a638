"""The sink lifecycle every output shares, and its error family (see `sinks`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from sinks.entry import StreamEntry


class SinkError(Exception):
    """A sink could not take a batch."""


class SinkUnavailable(SinkError):
    """The backend cannot be reached now; the same batch may be retried later."""


class SinkRejected(SinkError):
    """The backend refused the batch (out of memory, read-only replica, auth)."""


class Sink(Protocol):
    """open -> write batches -> flush -> close (Telegraf's output lifecycle)."""

    name: str

    def open(self) -> None:
        """Connect or open files; may raise SinkUnavailable."""

    def write(self, batch: Sequence[StreamEntry]) -> int:
        """Write one batch atomically where the backend allows; return entries newly written."""

    def flush(self) -> None:
        """Make what was written durable as far as this sink can."""

    def close(self) -> None:
        """Release connections and files."""


@runtime_checkable
class PreparingSink(Sink, Protocol):
    """A sink that can do a batch's client-side work (packing) apart from its round
    trip, so a pipeline prepares batch k+1 in one thread while another waits on
    the backend for batch k."""

    def prepare(self, batch: Sequence[StreamEntry]) -> Any | None:
        """The batch made ready for `write_prepared`, or None: then `write` it."""

    def write_prepared(self, prepared: Any) -> int:
        """`write` of a prepared batch: same result, same side effects."""
