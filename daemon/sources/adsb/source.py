"""The `adsb` source: IQ samples (rtl_tcp, RTL-SDR, file) -> Mode S -> aircraft events.

Threads::

    reader thread (BlockPump)          source thread (run)
    IqSource.read_block ──queue──►  Receiver.feed ─► ModeSTracker ─► Emit

Message times follow the sample clock: at the first block of a connection (or file)
the block's time (host clock for live inputs; start time + offset for files) anchors
absolute sample index n0 to time t0, and a message at absolute index n has
t = t0 + (n - n0) / rate. Network and USB jitter in block arrival thus does not
reorder messages; the anchor is reset when it drifts more than 1 s from the block
times (a dongle's clock error, a server replaying faster than real time). The
receiver's indices count only the samples it was fed; a short table of recent blocks
maps them back to absolute indices across dropped blocks.

Inputs end and fail like this:
- file: end of file ends the pass (the receiver is flushed); with `loop` it never ends.
- rtl_tcp: the server closing the connection ends the pass with ``--once``; otherwise
  the source reconnects with backoff (0.5 s doubling to `backoff_max_s`, reset after a
  connection that delivered samples) and goes on with the same aircraft table.
- rtlsdr: a missing dongle or library raises DeviceUnavailableError, logged with what
  to do and retried with the same backoff (``--once``: the pass fails).

File input with a deterministic start time publishes with sequence numbers derived
from sample indices under a producer key that includes a fingerprint of the file, so
replaying the same recording again publishes nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.pipeline import Emit
from daemon.sources.adsb.tracker import SLOTS, ModeSTracker, source_publisher
from daemon.sources.base import Source, SourceContext
from daemon.sources.iq_input import (
    InputSpec,
    file_fingerprint,
    open_live_input,
    parse_input,
    tuner_settings,
)
from daemon.sources.iq_pump import decode_blocks, run_reconnecting
from hardware.iq.base import IqBlock, IqSource
from hardware.iq.errors import IqSourceError
from hardware.iq.file import IqFileSource
from hardware.modes import native
from hardware.modes.beast import BEAST_CLOCK_HZ
from hardware.modes.demod import Demodulator
from hardware.modes.receiver import ModeSMessage, Receiver

__all__ = ["AdsbSource", "parse_start_time"]

_MAX_DRIFT_S = 1.0


def parse_start_time(value: Any, path: Path) -> float | None:
    """Epoch seconds of a file's first sample: "" = the file's mtime, "now" = None (the
    host clock at open), a number, or ISO 8601 (UTC unless a zone is given)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not text:
        return path.stat().st_mtime
    if text == "now":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def start_time_check(value: Any) -> str | None:
    """Config check for `start_time` (see parse_start_time)."""
    if isinstance(value, int | float) or str(value).strip() in ("", "now"):
        return None
    try:
        parse_start_time(value, Path("."))
    except ValueError:
        return (f"{value!r}: expected \"\" (the file's mtime), \"now\", epoch seconds or "
                "an ISO 8601 time")
    return None


def native_setting(value: Any) -> bool | None:
    """`native_kernels` as `Demodulator(native=...)` takes it: "auto" is None."""
    return None if value == "auto" else bool(value)


def native_check(value: Any) -> str | None:
    """Config check for `native_kernels`: "auto", true or false; true only where the
    compiled kernels are built."""
    if value not in ("auto", True, False):
        return f"{value!r}: expected \"auto\", true or false"
    if value is True and not native.available():
        return f"true, but {native.UNAVAILABLE_REASON}; use \"auto\" to fall back to numpy"
    return None


class AdsbSource(Source):
    """Demodulates IQ from the configured `input` and publishes aircraft events."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext) -> None:
        super().__init__(name, cfg, ctx)
        self.spec: InputSpec = parse_input(str(cfg["input"]))
        self.rate_hz = int(cfg["rate"])
        self.settings = tuner_settings(cfg, int(cfg["frequency_hz"]))
        self.publisher = source_publisher(name, cfg, ctx.station)
        self.tracker = ModeSTracker(name, self.publisher, ctx.metrics,
                                    max_range_m=float(cfg["max_range_km"]) * 1000.0)
        batch = int(cfg["batch_samples"])
        demod = Demodulator(self.rate_hz, native=native_setting(cfg["native_kernels"]))
        self.receiver = Receiver(self.rate_hz, int(cfg["max_fix_bits"]), batch_samples=batch,
                                 demodulator=demod)
        if demod.native:
            self.log.info("Mode S demodulator: compiled kernels (hardware.modes.native)")
        else:
            self.log.info("Mode S demodulator: numpy only (%s)",
                          native.UNAVAILABLE_REASON or "native_kernels = false")
        # (fed index of the block's first sample, absolute index, time of that sample):
        # enough blocks to cover what the receiver may hold back in one batch.
        blocks = batch // int(cfg["block_samples"]) + 4
        self._segments: deque[tuple[int, int, float]] = deque(maxlen=max(16, blocks))
        self._anchor: tuple[int, float] | None = None  # (absolute sample, epoch s)
        self._deterministic = False
        self._file_path: Path | None = None
        self._start_time_s: float | None = None
        if self.spec.kind == "file":
            self._file_path = ctx.resolve(self.spec.path)

    # -- inputs ---------------------------------------------------------------
    def open_input(self) -> IqSource:
        """A fresh IqSource for the configured input (not yet connected)."""
        block = int(self.cfg["block_samples"])
        if self.spec.kind != "file":
            return open_live_input(self.spec, self.settings, block_samples=block,
                                   timeout_s=float(self.cfg["timeout_s"]))
        assert self._file_path is not None
        if self._start_time_s is None:
            self._start_time_s = parse_start_time(self.cfg["start_time"], self._file_path)
            if self._start_time_s is None:
                self._start_time_s = time.time()
            else:
                self._deterministic = True
                fingerprint = file_fingerprint(self._file_path, repr(self._start_time_s),
                                               self.rate_hz)
                self.publisher.producer = f"{self.producer}:{fingerprint}"
        return IqFileSource(self._file_path, self.rate_hz, block_samples=block,
                            realtime=bool(self.cfg["realtime"]), loop=bool(self.cfg["loop"]),
                            start_time_s=self._start_time_s)

    # -- the loop -------------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Decode until `stop`; with `once`, until the input ends (see module doc)."""
        self.publisher.emit = emit

        def open_input() -> IqSource:
            try:
                return self.open_input()
            except OSError as exc:  # a file that cannot be opened: not worth retrying fast
                raise IqSourceError(f"{self.spec.path}: {exc.strerror or exc}") from None

        run_reconnecting(self, open_input, lambda iq: self._pump(iq, stop), stop, once,
                         metric_prefix="adsb", backoff_max_s=float(self.cfg["backoff_max_s"]),
                         reconnect=self.spec.kind != "file")

    def _pump(self, iq: IqSource, stop: threading.Event) -> bool:
        """Decode one connection/open of `iq`; True at its end, False when stopped."""
        def on_block(block: IqBlock, first: bool) -> None:
            if first:
                self._anchor = None
                if self.receiver.samples_fed and not block.discontinuity:
                    block = IqBlock(block.iq, block.first_sample, block.host_time_s, True)
            self.process_block(block)

        return decode_blocks(
            self, iq, stop, metric_prefix="adsb", queue_blocks=int(self.cfg["queue_blocks"]),
            lossless=self.spec.kind == "file" and not self.cfg["realtime"],
            on_block=on_block, on_end=lambda: self._handle(self.receiver.flush()),
        )

    def process_block(self, block: IqBlock) -> None:
        """Demodulate one block and publish what its messages change."""
        metrics, name = self.ctx.metrics, self.name
        if block.discontinuity and self.receiver.samples_fed:
            self._handle(self.receiver.flush())
        anchor = self._anchor
        t0 = block.host_time_s
        if anchor is not None:
            predicted = anchor[1] + (block.first_sample - anchor[0]) / self.rate_hz
            if abs(predicted - t0) <= _MAX_DRIFT_S:
                t0 = predicted
            else:
                anchor = None
        if anchor is None:
            self._anchor = (block.first_sample, block.host_time_s)
        self._segments.append((self.receiver.samples_fed, block.first_sample, t0))
        metrics.inc("adsb_blocks_total", source=name)
        metrics.inc("adsb_samples_total", block.n_samples, source=name)
        self._handle(self.receiver.feed(block.iq))

    def _handle(self, messages: list[ModeSMessage]) -> None:
        rate = self.rate_hz
        ticks_per_sample = BEAST_CLOCK_HZ / rate
        if not self._segments:
            return
        for m in messages:
            fed = m.t_s * rate  # fractional fed-sample index of the preamble
            seg = self._segments[0]
            for candidate in reversed(self._segments):
                if candidate[0] <= m.sample:
                    seg = candidate
                    break
            fed0, abs0, t0 = seg
            t_s = t0 + (fed - fed0) / rate
            abs_sample = abs0 + (m.sample - fed0)
            self.tracker.handle_checked(
                m.msg, m.icao, m.corrected_bits, t_s, m.signal_dbfs,
                seq_base=abs_sample * SLOTS if self._deterministic else None,
                timestamp_12mhz=round(abs_sample * ticks_per_sample),
            )
