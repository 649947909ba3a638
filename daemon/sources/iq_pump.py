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
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable

from hardware.iq.base import IqBlock, IqSource
from hardware.iq.errors import IqSourceError

__all__ = ["END", "BlockPump", "PumpItem"]


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
