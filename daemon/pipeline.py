"""The pipeline: sources -> one bounded queue -> batches -> S2 + encode -> sinks.

Sources call their `Emit` from their own threads. The queue is bounded: when it
is full the emitting source waits (backpressure). The sink side is two threads,
one after the other, so that encoding batch k+1 overlaps the round trip of batch k
(Redis I/O waits on the socket without the GIL; issue 8)::

    sources ──► queue ──► encoder thread ──► hand-off ──► writer thread ──► Redis
    (emit)     (bounded,  "sink-encode":      (holds ONE   "sink": primary,   (spool,
               queue_size) batch, S2, encode, batch)       spool, mirrors      mirrors)
                          pack (prepare)

The encoder thread takes batches (up to `batch_size` events or `batch_latency_s`
after the first one), encodes them and, when the primary sink is a
`sinks.base.PreparingSink`, has it pack the batch's request (`prepare`); the writer
thread then only sends each batch to the primary sink (Redis) in one round trip,
then to any mirror sinks (e.g. jsonl). Packing in the writer would leave Redis idle
while it runs (issue 8: the Pipeline went from ~0.50 to ~0.60 of the raw XADD rate).
Both are FIFO and there is one of each, so batches reach the sinks in queue order.
When the primary sink fails, the batch goes to the spool when one is configured
(and everything after it, so order per producer is kept until the spool is
replayed), otherwise it is retried with backoff while the hand-off, then the queue,
back up. Mirror sinks receive what Redis took as new, once, in the same order.
An event leaves the queue's count (`wait_idle`) only once the writer has handed
its batch off to Redis or the spool.

Delivery guarantee (design §4), and its limits:

- Exactly once on the streams: every entry carries (producer, seq), seq strictly
  increasing per producer and never reused across restarts (`daemon.sequence`);
  the Redis script writes an entry only above the producer's committed offset and
  advances it in the same atomic step. A retry, a spool replay or a source that
  re-reads its input after a crash therefore writes nothing twice.
- In order per producer: while anything is spooled, new batches queue behind it.
- Nothing handed off is lost: a batch is acknowledged by Redis (durable as far as
  Redis's AOF setting: ``appendfsync everysec`` can lose the last second if the
  Redis host crashes, ``always`` nothing) or appended to the spool (fdatasync'ed
  under ``fsync = "batch"``; see `sinks.spool` for "interval"/"never").
- Not handed off yet: events in the in-memory queue (up to `queue_size`), the
  batch being encoded, the encoded batch waiting in the hand-off and the batch
  being written (so up to `queue_size` + 3 `batch_size`). SIGTERM drains them
  (to Redis or the spool); SIGKILL, the OOM killer or a power cut loses them.
  Sources that can re-read (jsonl by line number, usgs by its memo of published
  versions) publish them again on restart; live radio traffic and serial readings
  are gone.
- Counted losses: a full spool under ``drop_oldest`` drops its oldest segment
  (spool_dropped_events_total); a damaged spool record is skipped at replay
  (spool_corrupt_records_total). Under ``block`` nothing is dropped: sources wait.

Liveness: each sink thread stamps a heartbeat at every step of its loop (the
writer: a batch delivered or spooled, an idle wait for batches, a retry while
neither Redis nor a full ``block`` spool takes a batch; the encoder: a batch
encoded, an idle wait for events, a wait for room in the hand-off).
`seconds_since_progress()` is the age of the older stamp (the encoder's stops
counting once it has drained and ended); the service feeds the systemd watchdog
only while it stays below a deadline, so a thread wedged in one call (a hung disk,
a deadlock) gets the daemon restarted, while an outage that is being spooled does
not. If either thread dies, the other ends too (`sink_thread_alive` turns False)
and the queue backs up instead of being consumed into nowhere.

Metrics (labels ``sink``): sink_batches_total, sink_write_seconds (histogram of
successful primary writes), sink_errors_total, sink_retries_total (attempts after a
failure), events_written_total, events_duplicate_total, spooled_events_total,
replayed_events_total, spool_full_total; collected at export: queue_depth,
spool_depth, spool_bytes, spool_dropped_events_total, spool_corrupt_records_total.
Labels ``source``: events_in_total (counted when the encoder thread takes events
from the queue, one increment per source and batch rather than one per event in
the source's thread), backpressure_waits_total, events_rejected_total.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from daemon.encode import EntryEncoder
from daemon.event import Event
from daemon.metrics import Metrics
from daemon.ratelog import RateLimitedLog
from daemon.sequence import SequenceStore
from sinks.base import PreparingSink, Sink, SinkError
from sinks.entry import StreamEntry

log = logging.getLogger(__name__)


class Emit(Protocol):
    """What a source calls to publish an event.

    `seq` overrides the automatic per-producer sequence (it must increase);
    `memo` is (field, value) recorded atomically with the write;
    `producer` overrides the source's default producer key.
    """

    def __call__(
        self,
        event: Event,
        *,
        seq: int | None = None,
        memo: tuple[str, str] | None = None,
        producer: str | None = None,
    ) -> None: ...


class Spool(Protocol):
    """A disk buffer of encoded batches, replayed in order (see `sinks.spool`)."""

    def append(self, batch: Sequence[StreamEntry]) -> None: ...

    def peek(self) -> list[StreamEntry] | None: ...

    def pop(self) -> None: ...

    def depth(self) -> int: ...

    def close(self) -> None: ...


class PipelineClosed(RuntimeError):
    """Raised in a source that emits after the pipeline stopped accepting events."""


def _ended(thread: threading.Thread | None) -> bool:
    """Whether `thread` was started and has finished (not: not started yet)."""
    return thread is not None and thread.ident is not None and not thread.is_alive()


class _Queued(NamedTuple):
    """An event in the queue: what `daemon.event.Sequenced` carries, plus the
    emitting source's metrics label. A NamedTuple costs a third of the frozen
    dataclass to build, once per event in the source's thread (issue 8)."""

    producer: str
    seq: int
    event: Event
    memo: tuple[str, str] | None
    label: str


class _EventQueue:
    """The bounded FIFO between the sources and the encoder thread.

    queue.Queue costs a few µs per event on each side (a Condition round per put
    and per get, a lock per task_done); this one hands the encoder a whole batch
    under one lock, wakes it only once enough events are queued (or the first one,
    when it waits for any), and counts finished events per batch. One taker (the
    encoder thread); any number of putters.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[_Queued] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._wake_at = 0  # notify the waiting taker once this many are queued; 0: none waits
        self._putters_waiting = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def unfinished(self) -> int:
        """Events put and not yet marked done (queued, being encoded or written)."""
        return self._unfinished

    def put(self, item: _Queued, timeout_s: float) -> bool:
        """Append `item`, waiting up to `timeout_s` for room; False if it stayed full."""
        with self._lock:
            if len(self._items) >= self.maxsize:
                self._putters_waiting += 1
                try:
                    if not self._not_full.wait_for(
                        lambda: len(self._items) < self.maxsize, timeout_s
                    ):
                        return False
                finally:
                    self._putters_waiting -= 1
            self._items.append(item)
            self._unfinished += 1
            if self._wake_at and len(self._items) >= self._wake_at:
                self._wake_at = 0
                self._not_empty.notify()
        return True

    def take(self, max_n: int, wait_s: float, latency_s: float) -> list[_Queued]:
        """Up to `max_n` items, oldest first: waits up to `wait_s` for the first, then
        up to `latency_s` after it for the batch to fill; [] if none came."""
        items = self._items
        with self._lock:
            if not items:
                self._wake_at = 1
                self._not_empty.wait(wait_s)
                self._wake_at = 0
                if not items:
                    return []
            deadline_s = time.monotonic() + latency_s
            want = min(max_n, self.maxsize)  # a queue smaller than a batch fills up first
            while len(items) < want:
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    break
                self._wake_at = want
                self._not_empty.wait(remaining_s)
                self._wake_at = 0
            if len(items) <= max_n:
                batch = list(items)
                items.clear()
            else:
                popleft = items.popleft
                batch = [popleft() for _ in range(max_n)]
            if self._putters_waiting:
                self._not_full.notify(len(batch))
            return batch

    def done(self, n: int) -> None:
        """Mark `n` taken items finished (handed off to a sink or dropped as unencodable)."""
        with self._lock:
            self._unfinished -= n
            if self._unfinished <= 0:
                self._idle.notify_all()

    def join(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` until every item put is done; True if so."""
        with self._lock:
            return self._idle.wait_for(lambda: self._unfinished <= 0, max(0.0, timeout_s))


class _Encoded(NamedTuple):
    """A batch on its way from the encoder thread to the writer thread."""

    entries: list[StreamEntry]
    n_items: int  # queue items it came from (rejected events included), for task_done
    prepared: Any  # the primary's `prepare` of it (None: the writer writes `entries`)


class Pipeline:
    """Bounded queue plus the sink thread (design §4)."""

    def __init__(
        self,
        encoder: EntryEncoder,
        primary: Sink,
        seqs: SequenceStore,
        metrics: Metrics,
        mirrors: Sequence[Sink] = (),
        spool: Spool | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        batch_latency_s: float = 0.1,
        retry_max_s: float = 5.0,
    ) -> None:
        self.encoder = encoder
        self.primary = primary
        # The primary again when it can pack batches apart from sending them (checked
        # once: a runtime Protocol check walks the attributes).
        self._preparing = primary if isinstance(primary, PreparingSink) else None
        self.mirrors = list(mirrors)
        self.spool = spool
        self.seqs = seqs
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_latency_s = batch_latency_s
        self.retry_max_s = retry_max_s
        self._queue = _EventQueue(queue_size)
        # One encoded batch waits here while the writer writes the one before it:
        # enough to overlap the two stages, and backpressure reaches the queue at once.
        # None is the encoder's "no more batches".
        self._handoff: queue.Queue[_Encoded | None] = queue.Queue(maxsize=1)
        self._bad = RateLimitedLog(log)
        self._accepting = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # the writer ("sink")
        self._encoder_thread: threading.Thread | None = None
        self._primary_ok = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._beat_s = time.monotonic()  # the writer's heartbeat
        self._encode_beat_s = time.monotonic()  # the encoder's; inf once it has ended
        self._spool_refused = False
        self.last_error = ""
        metrics.add_collector(self._collect)

    # -- the source side ----------------------------------------------------
    def emitter(self, default_producer: str, source_name: str = "") -> Emit:
        """An Emit for one source; its events are counted under `source_name`."""
        label = source_name or default_producer
        # Runs once per event in the source's thread: names bound here, and the item
        # built by tuple.__new__ (what _Queued() does, minus a Python-level call).
        next_seq, observe, put = self.seqs.next, self.seqs.observe, self._queue.put
        new_item = tuple.__new__

        def emit(
            event: Event,
            *,
            seq: int | None = None,
            memo: tuple[str, str] | None = None,
            producer: str | None = None,
        ) -> None:
            prod = producer or default_producer
            if seq is None:
                seq = next_seq(prod)
            else:
                observe(prod, seq)
            item = new_item(_Queued, (prod, seq, event, memo, label))
            while True:
                if not self._accepting:
                    raise PipelineClosed("pipeline is stopping")
                if put(item, 0.2):
                    break
                self.metrics.inc("backpressure_waits_total", source=label)
            # events_in_total is counted by the encoder thread, per batch and source.

        return emit

    def queue_depth(self) -> int:
        """Events waiting for the sink."""
        return len(self._queue)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        """Start the sink threads (the writer, then the encoder that feeds it)."""
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)
        self._encoder_thread = threading.Thread(
            target=self._run_encoder, name="sink-encode", daemon=True
        )
        self._thread.start()
        self._encoder_thread.start()

    @property
    def sink_thread_alive(self) -> bool:
        """Whether the writer thread still runs (it may touch the spool); it ends once
        the encoder has drained and ended, or soon after the encoder died."""
        return self._thread is not None and self._thread.is_alive()

    def seconds_since_progress(self) -> float:
        """Seconds since the less recent of the sink threads' last steps (see the
        module docstring)."""
        return time.monotonic() - min(self._beat_s, self._encode_beat_s)

    def progressing(self, deadline_s: float) -> bool:
        """Whether the sink thread runs and made a step within `deadline_s` seconds."""
        return self.sink_thread_alive and self.seconds_since_progress() <= deadline_s

    def stop(
        self,
        timeout_s: float = 20.0,
        on_wait: Callable[[], None] | None = None,
        wait_step_s: float = 1.0,
    ) -> bool:
        """Stop accepting events, drain the queue and flush; True if all was handed off.

        `on_wait` is called every `wait_step_s` seconds while the drain goes on (the
        service uses it to ask systemd for more time while the drain progresses).
        """
        self._accepting = False
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + timeout_s
            while self._thread.is_alive():
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    break
                self._thread.join(min(wait_step_s, remaining_s))
                if self._thread.is_alive() and on_wait is not None:
                    on_wait()
            if self._thread.is_alive():
                log.error(
                    "sink thread did not drain within %.0f s; %d events left in memory",
                    timeout_s,
                    self._queue.unfinished,
                )
                return False
        return not self._queue

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the queue is empty and nothing is spooled (for --once runs and tests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._queue.join(deadline - time.monotonic()) and (
                self.spool is None or self.spool.depth() == 0
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    @property
    def spool_accepting(self) -> bool:
        """Whether a spool exists and took the last batch offered to it."""
        return self.spool is not None and not self._spool_refused

    @property
    def primary_ok(self) -> bool:
        """Whether the last write to the primary sink succeeded."""
        return self._primary_ok

    # -- the sink thread ----------------------------------------------------
    def _next_batch(self) -> list[_Queued]:
        """Up to batch_size events, within batch_latency_s of the first ([] after
        0.1 s without any), counted into events_in_total per source."""
        batch = self._queue.take(self.batch_size, 0.1, self.batch_latency_s)
        if batch:
            labels = Counter([item.label for item in batch])
            for label, n in labels.items():
                self.metrics.inc("events_in_total", n, source=label)
        return batch

    def _run_encoder(self) -> None:
        """The encoder thread: batches from the queue, encoded, into the hand-off."""
        while True:
            self._encode_beat_s = time.monotonic()
            batch = self._next_batch()
            if not batch:
                if self._stop.is_set() and not self._queue:
                    break
                continue
            entries = self._encode(batch)
            encoded = _Encoded(entries, len(batch), self._prepare(entries))
            if not self._hand_off(encoded):
                return  # the writer is gone: leave the rest queued (see _hand_off)
        self._hand_off(None)
        self._encode_beat_s = math.inf  # drained: only the writer's progress counts now

    def _hand_off(self, item: _Encoded | None) -> bool:
        """Put `item` in the hand-off, waiting while the writer is busy; False if the
        writer thread has died (then nothing will take it: the queue must back up so
        sources block and the watchdog sees the pipeline stuck)."""
        while True:
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                # Waiting for the writer is progress here; its own beat tells its health.
                self._encode_beat_s = time.monotonic()
                if _ended(self._thread):
                    return False

    def _run(self) -> None:
        """The writer thread: opens the sinks, writes the encoded batches in order,
        replays the spool while idle, and flushes and closes the sinks at the end."""
        for sink in (self.primary, *self.mirrors):
            try:
                sink.open()
            except SinkError as exc:
                log.warning("sink %s not available yet: %s", sink.name, exc)
        while True:
            self._beat_s = time.monotonic()
            try:
                item = self._handoff.get(timeout=0.1)
            except queue.Empty:
                if not _ended(self._encoder_thread):
                    if self.spool is not None and self.spool.depth() and self._may_try_primary():
                        self._replay_spool()
                    continue
                # The encoder died without its end marker: stop, so the pipeline reads
                # as dead (sink_thread_alive) rather than idle.
                log.error("encoder thread ended unexpectedly; sink thread stops")
                break
            if item is None:  # the encoder drained the queue and ended
                if self.spool is not None and self.spool.depth() and self._may_try_primary():
                    self._replay_spool()
                break
            entries = item.entries
            while entries and not self._deliver(entries, item.prepared):
                # Neither Redis nor the spool took it: the hand-off, then the queue,
                # back up (backpressure) until one does or the caller's stop timeout
                # abandons us.
                time.sleep(max(0.05, self._retry_at - time.monotonic()))
                self._beat_s = time.monotonic()
            self._queue.done(item.n_items)
        for sink in (self.primary, *self.mirrors):
            try:
                sink.flush()
                sink.close()
            except SinkError as exc:
                log.warning("closing sink %s: %s", sink.name, exc)

    def _encode(self, batch: list[_Queued]) -> list[StreamEntry]:
        """Encode a batch; an event that cannot be encoded (e.g. NaN in its data) is
        counted and dropped alone, never taking the batch or the sink thread with it."""
        try:
            return self.encoder.encode(batch)
        except (ValueError, TypeError, OverflowError):
            pass
        entries: list[StreamEntry] = []
        for item in batch:
            try:
                entries.extend(self.encoder.encode([item]))
            except (ValueError, TypeError, OverflowError) as exc:
                self.metrics.inc("events_rejected_total", source=item.event.src)
                self._bad.warning(
                    item.event.src, "dropped event %s: cannot encode it: %s", item.event.id, exc
                )
        return entries

    def _prepare(self, entries: list[StreamEntry]) -> Any:
        """The primary sink's client-side work on a batch (packing), done in the
        encoder thread so the writer thread only sends it (issue 8); None when the
        sink does not prepare or failed to (the writer then writes the entries)."""
        if not entries or self._preparing is None:
            return None
        try:
            return self._preparing.prepare(entries)
        except (ValueError, TypeError, OverflowError) as exc:
            name = self.primary.name
            self._bad.warning("prepare", "sink %s: cannot prepare a batch: %s", name, exc)
            return None

    def _write_primary(self, entries: list[StreamEntry], prepared: Any = None) -> None:
        """Write to the primary sink (`prepared` by `_prepare`, if not None), then mirror
        what it took as new (not duplicates), so a mirror records each event once
        however often it is replayed."""
        if not self._primary_ok and self.last_error:
            self.metrics.inc("sink_retries_total", sink=self.primary.name)
        started_s = time.monotonic()
        if prepared is not None and self._preparing is not None:
            written = self._preparing.write_prepared(prepared)
        else:
            written = self.primary.write(entries)
        self.metrics.observe(
            "sink_write_seconds", time.monotonic() - started_s, sink=self.primary.name
        )
        self.metrics.inc("sink_batches_total", sink=self.primary.name)
        self._primary_succeeded(written, len(entries))
        if self.mirrors:
            mask: list[bool] | None = getattr(self.primary, "last_written", None)
            if mask is not None and len(mask) == len(entries):
                entries = [e for e, new in zip(entries, mask, strict=True) if new]
            if entries:
                self._write_mirrors(entries)

    def _write_mirrors(self, entries: list[StreamEntry]) -> None:
        for mirror in self.mirrors:
            try:
                mirror.write(entries)
            except SinkError as exc:
                self.metrics.inc("sink_errors_total", sink=mirror.name)
                log.warning("mirror sink %s: %s", mirror.name, exc)

    def _may_try_primary(self) -> bool:
        """False while backing off after a failure: a hanging Redis costs a socket
        timeout per attempt, so batches go straight to the spool until then."""
        return time.monotonic() >= self._retry_at

    def _deliver(self, entries: list[StreamEntry], prepared: Any = None) -> bool:
        """Hand a batch (`prepared` by `_prepare`, or None) to the primary sink, or
        the spool; False means retry later."""
        spooled = self.spool is not None and self.spool.depth() > 0
        if spooled and self._may_try_primary():
            spooled = not self._replay_spool()
        if not spooled and self._may_try_primary():
            try:
                self._write_primary(entries, prepared)
            except SinkError as exc:
                self._primary_failed(exc)
            else:
                return True
        # Redis is down, or older batches are still spooled (order per producer
        # must hold): queue this batch behind them.
        return self._spool(entries)

    def _spool(self, entries: list[StreamEntry]) -> bool:
        if self.spool is None:
            return False
        try:
            self.spool.append(entries)
        except SinkError as exc:  # SpoolFull under the "block" policy, or a disk error
            self.metrics.inc("spool_full_total", sink=self.primary.name)
            if not self._spool_refused:
                log.warning("spool refused a batch: %s", exc)
            self._spool_refused = True
            return False
        self._spool_refused = False
        self.metrics.inc("spooled_events_total", len(entries), sink=self.primary.name)
        self.metrics.set("spool_depth", self.spool.depth())
        return True

    def _collect(self, metrics: Metrics) -> None:
        """Export-time gauges: queue and spool state owned by this pipeline."""
        metrics.set("queue_depth", self.queue_depth())
        if self.spool is None:
            return
        metrics.set("spool_depth", self.spool.depth())
        # DiskSpool extras; another Spool implementation may not have them.
        on_disk = getattr(self.spool, "bytes_on_disk", None)
        if on_disk is not None:
            metrics.set("spool_bytes", on_disk())
        for attr, name in (
            ("dropped_events", "spool_dropped_events_total"),
            ("corrupt_records", "spool_corrupt_records_total"),
        ):
            value = getattr(self.spool, attr, None)
            if value is not None:
                metrics.set_total(name, value)

    def _replay_spool(self) -> bool:
        """Write spooled batches oldest first; True when the spool is empty."""
        assert self.spool is not None
        while True:
            batch = self.spool.peek()
            if batch is None:
                self.metrics.set("spool_depth", 0)
                return True
            try:
                self._write_primary(batch)
            except SinkError as exc:
                self._primary_failed(exc)
                return False
            self.spool.pop()
            self.metrics.inc("replayed_events_total", len(batch), sink=self.primary.name)
            self.metrics.set("spool_depth", self.spool.depth())

    def _primary_failed(self, exc: SinkError) -> None:
        if self._primary_ok or not self.last_error:
            log.warning("sink %s failing: %s", self.primary.name, exc)
        self._backoff_s = min(self._backoff_s * 2, self.retry_max_s) if self._backoff_s else 0.1
        self._retry_at = time.monotonic() + self._backoff_s * (0.5 + random.random())
        self._primary_ok = False
        self.last_error = str(exc)
        self.metrics.inc("sink_errors_total", sink=self.primary.name)

    def _primary_succeeded(self, written: int, offered: int) -> None:
        if not self._primary_ok and self.last_error:
            log.info("sink %s recovered", self.primary.name)
        self._backoff_s = 0.0
        self._primary_ok = True
        self.metrics.inc("events_written_total", written, sink=self.primary.name)
        self.metrics.inc("events_duplicate_total", offered - written, sink=self.primary.name)
