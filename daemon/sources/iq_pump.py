"""The reader thread between an IQ source and its decoder (adsb and rs41 sources).

    IqSource.read_block ──► [ bounded queue of blocks ] ──► decoder (source thread)
         reader thread          max_blocks deep

A live source must never wait for the decoder: an rtl_tcp server would buffer
without bound and a dongle would overrun its USB buffers. So when the queue is full
the reader drops the block, counts it, and marks the next block it queues as a
discontinuity (the decoder must not join a frame across the gap). With
``lossless=True`` (files not paced in real time) the reader waits instead, so the
decode is deterministic.

The end of the stream and source errors travel through the queue behind the blocks
that came before them (`END`, or the exception).

`decode_blocks` reads one connection (or one pass of a file) through a BlockPump and
hands each block to the source's decoder, counting what the pump dropped
(``<prefix>_blocks_dropped_total``, ``<prefix>_samples_dropped_total``).
`run_reconnecting` is the loop around those connections of a live input (adsb and rs41
sources): a failing input (IqSourceError) or a server that closed the connection is
opened again after a backoff (0.5 s doubling to `backoff_max_s`, jittered; reset after
a connection that delivered blocks). With ``--once`` a failure is raised and the end
of the stream ends the pass. Metrics ``<prefix>_input_up`` (0 between connections)
and ``<prefix>_input_errors_total``; progress is read from ``<prefix>_blocks_total``.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable

from daemon.sources.base import Source
from hardware.backoff import Backoff
from hardware.iq.base import IqBlock, IqSource
from hardware.iq.errors import IqSourceError

__all__ = ["END", "BlockPump", "PumpItem", "decode_blocks", "run_reconnecting"]

BACKOFF_INITIAL_S = 0.5


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()
PumpItem = IqBlock | IqSourceError | _End


class BlockPump:
    """Runs `source.read_block` in a thread and hands blocks over a bounded queue."""

    def __init__(
        self,
        source: IqSource,
        max_blocks: int = 8,
        *,
        lossless: bool = False,
        on_drop: Callable[[IqBlock], None] | None = None,
    ) -> None:
        self.source = source
        self.lossless = lossless
        self.on_drop = on_drop
        self.dropped_blocks = 0
        self.read_blocks = 0
        self._queue: queue.Queue[PumpItem] = queue.Queue(maxsize=max_blocks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iq-reader", daemon=True)

    def start(self) -> BlockPump:
        self._thread.start()
        return self

    def get(self, timeout_s: float) -> PumpItem | None:
        """The next item, or None if none came within `timeout_s`."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def stop(self) -> None:
        """Stop the reader (closing the source unblocks a pending read) and wait for it."""
        self._stop.set()
        self.source.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def _put_waiting(self, item: PumpItem) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        gap = False
        while not self._stop.is_set():
            try:
                block = self.source.read_block()
            except IqSourceError as exc:
                if not self._stop.is_set():
                    self._put_waiting(exc)
                return
            if block is None:
                self._put_waiting(END)
                return
            self.read_blocks += 1
            if gap and not block.discontinuity:
                block = dataclasses.replace(block, discontinuity=True)
            if self.lossless:
                if not self._put_waiting(block):
                    return
                continue
            try:
                self._queue.put_nowait(block)
                gap = False
            except queue.Full:
                self.dropped_blocks += 1
                gap = True
                if self.on_drop is not None:
                    self.on_drop(block)


def decode_blocks(
    source: Source,
    iq: IqSource,
    stop: threading.Event,
    *,
    metric_prefix: str,
    queue_blocks: int,
    lossless: bool,
    on_block: Callable[[IqBlock, bool], None],
    on_end: Callable[[], None],
) -> bool:
    """Decode one connection of `iq`: True at its end (after `on_end()`), False when
    stopped; raises the IqSourceError the input failed with.

    `on_block(block, first)` gets every block in order (`first` for the connection's
    first one, when ``<prefix>_input_up`` has just been set to 1).
    """
    metrics, name = source.ctx.metrics, source.name

    def dropped(block: IqBlock) -> None:
        metrics.inc(f"{metric_prefix}_blocks_dropped_total", source=name)
        metrics.inc(f"{metric_prefix}_samples_dropped_total", block.n_samples, source=name)

    pump = BlockPump(iq, queue_blocks, lossless=lossless, on_drop=dropped)
    pump.start()
    first = True
    try:
        while not stop.is_set():
            item = pump.get(0.5)
            if item is None:
                continue
            if item is END:
                on_end()
                return True
            if isinstance(item, IqSourceError):
                raise item
            assert isinstance(item, IqBlock)
            if first:
                metrics.set(f"{metric_prefix}_input_up", 1, source=name)
            on_block(item, first)
            first = False
        return False
    finally:
        pump.stop()


def run_reconnecting(
    source: Source,
    open_input: Callable[[], IqSource],
    decode: Callable[[IqSource], bool],
    stop: threading.Event,
    once: bool,
    *,
    metric_prefix: str,
    backoff_max_s: float,
    reconnect: bool = True,
) -> None:
    """Decode `open_input()` until `stop`, opening it again after failures (module doc).

    `decode(iq)` reads one connection: True at the end of the stream, False when
    stopped; it raises IqSourceError when the input fails. `open_input` is called
    outside the retry (an input that cannot even be built is the caller's error).
    With `reconnect` False (files) the end of the stream ends the run.
    """
    metrics, name, log = source.ctx.metrics, source.name, source.log
    up, blocks = f"{metric_prefix}_input_up", f"{metric_prefix}_blocks_total"
    backoff = Backoff(BACKOFF_INITIAL_S, backoff_max_s)
    failing = False
    while not stop.is_set():
        iq = open_input()
        blocks_before = metrics.get(blocks, source=name)
        try:
            finished = decode(iq)
        except IqSourceError as exc:
            metrics.set(up, 0, source=name)
            metrics.inc(f"{metric_prefix}_input_errors_total", source=name)
            if once:
                raise
            if not failing:
                log.error("%s: %s; retrying with backoff", name, exc)
            else:
                log.warning("%s: still failing: %s", name, exc)
            failing = True
        else:
            metrics.set(up, 0, source=name)
            if failing:
                log.info("%s: input is back", name)
                failing = False
            if not finished or once or not reconnect:
                return
            # The server closed the connection: a live input reconnects.
            log.warning("%s: %s closed the connection; reconnecting", name, iq.describe())
        if metrics.get(blocks, source=name) > blocks_before:
            backoff.reset()
        if stop.wait(backoff.next_wait_s()):
            return
