"""The two-stage sink (encoder thread -> hand-off -> writer thread) keeps the
pipeline's guarantees (issue 8): order, the event count of `wait_idle`, the
watchdog's view of a wedged writer, and no silent consumption when a stage dies.

The sinks here are in-process objects that record what they are given; the Redis
path itself is covered by tests/sinks and tests/reliability.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.encode import EntryEncoder
from daemon.event import Event, Sequenced
from daemon.metrics import Metrics
from daemon.pipeline import Pipeline
from daemon.s2index import S2Indexer
from daemon.sequence import SequenceStore
from sinks.entry import StreamEntry
from sinks.jsonl import JsonlSink
from sinks.spool import DiskSpool

ENCODER = EntryEncoder(S2Indexer((6, 10, 14), 8))


class RecordingSink:
    """Takes every batch (after `delay_s`), remembering the entries in write order.

    `gate`, when set, is waited on inside write: a wedged backend.
    """

    def __init__(self, name: str = "mem", delay_s: float = 0.0) -> None:
        self.name = name
        self.delay_s = delay_s
        self.gate: threading.Event | None = None
        self.entries: list[StreamEntry] = []
        self.threads: set[str] = set()
        self.closed = False

    def open(self) -> None:
        pass

    def write(self, batch: Sequence[StreamEntry]) -> int:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        self.entries.extend(batch)
        return len(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def event(i: int, src: str = "t") -> Event:
    return Event(id=f"t:{i}", src=src, kind="sensor.reading", t=1_700_000_000_000 + i,
                 rx=1_700_000_000_000 + i, lat=10.0 + i * 1e-4, lon=20.0, alt=float(i),
                 station="s", data={"v": i})


def pipeline_on(sink: RecordingSink, tmp_path: Path, **options: float) -> Pipeline:
    return Pipeline(ENCODER, sink, SequenceStore(tmp_path / "seq.json", lambda p: 0),
                    Metrics(), batch_size=int(options.pop("batch_size", 7)),
                    batch_latency_s=0.01, **options)  # type: ignore[arg-type]


def test_batches_reach_the_sink_in_emit_order_from_the_writer_thread(tmp_path: Path) -> None:
    sink = RecordingSink(delay_s=0.002)  # slow enough that the encoder runs ahead
    pipeline = pipeline_on(sink, tmp_path)
    pipeline.start()
    emitters = [pipeline.emitter(f"p{k}") for k in range(3)]
    for i in range(500):
        emitters[i % 3](event(i))
    assert pipeline.wait_idle(10)
    assert [e.values[1] for e in sink.entries] == [f"t:{i}" for i in range(500)]
    for k in range(3):
        seqs = [e.seq for e in sink.entries if e.producer == f"p{k}"]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert sink.threads == {"sink"}
    assert pipeline.stop()
    assert sink.closed and not pipeline.sink_thread_alive


def test_wait_idle_holds_until_the_writer_has_handed_the_last_batch_off(
    tmp_path: Path,
) -> None:
    sink = RecordingSink()
    sink.gate = threading.Event()
    pipeline = pipeline_on(sink, tmp_path)
    pipeline.start()
    emit = pipeline.emitter("p")
    for i in range(12):
        emit(event(i))
    # Both batches have left the queue (one is being written, one is in the
    # hand-off or being encoded); neither is written yet.
    deadline = time.monotonic() + 5
    while pipeline.queue_depth() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipeline.queue_depth() == 0
    assert not pipeline.wait_idle(0.3)
    sink.gate.set()
    assert pipeline.wait_idle(5)
    assert len(sink.entries) == 12
    assert pipeline.stop()


def test_a_writer_wedged_in_one_call_stops_the_progress_beat(tmp_path: Path) -> None:
    sink = RecordingSink()
    sink.gate = threading.Event()
    pipeline = pipeline_on(sink, tmp_path)
    pipeline.start()
    emit = pipeline.emitter("p")
    for i in range(40):  # the writer wedges on the first batch; the encoder waits
        emit(event(i))
    time.sleep(0.6)
    assert pipeline.seconds_since_progress() >= 0.5  # the encoder's waiting does not mask it
    assert not pipeline.progressing(0.4)
    sink.gate.set()
    assert pipeline.wait_idle(5)
    assert pipeline.progressing(0.4)
    assert pipeline.stop()


def test_a_long_drain_counts_as_progress_after_the_encoder_has_ended(tmp_path: Path) -> None:
    sink = RecordingSink(delay_s=0.15)
    pipeline = pipeline_on(sink, tmp_path, batch_size=5)
    pipeline.start()
    emit = pipeline.emitter("p")
    for i in range(20):
        emit(event(i))
    done = threading.Event()
    ok: list[bool] = []

    def stop() -> None:
        ok.append(pipeline.stop(10))
        done.set()

    threading.Thread(target=stop).start()
    ages = []
    while not done.wait(0.05):
        ages.append(pipeline.seconds_since_progress())
    assert ok == [True]
    assert len(sink.entries) == 20
    assert max(ages) < 0.5  # a step every 0.15 s, whichever thread is still running


def test_when_the_writer_dies_the_queue_backs_up_instead_of_being_consumed(
    tmp_path: Path,
) -> None:
    class Exploding(RecordingSink):
        def write(self, batch: Sequence[StreamEntry]) -> int:
            raise RuntimeError("a bug in the sink")

    sink = Exploding()
    pipeline = Pipeline(ENCODER, sink, SequenceStore(tmp_path / "seq.json", lambda p: 0),
                        Metrics(), queue_size=50, batch_size=10, batch_latency_s=0.01)
    hook = threading.excepthook
    threading.excepthook = lambda args: None  # the RuntimeError is the point here
    try:
        pipeline.start()
        emit = pipeline.emitter("p")
        for i in range(10):
            emit(event(i))
        deadline = time.monotonic() + 5
        while pipeline.sink_thread_alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pipeline.sink_thread_alive
        time.sleep(0.3)  # let the encoder notice
        for i in range(10, 50):
            emit(event(i))
        time.sleep(0.3)
        # At most two batches left the queue (one into the hand-off, one in the
        # encoder's hand); the rest waits there, so sources would block.
        assert pipeline.queue_depth() >= 40 - 2 * 10
        assert not pipeline.progressing(60.0)
    finally:
        threading.excepthook = hook
        pipeline.stop(0.5)


def test_when_the_encoder_dies_the_writer_ends_and_the_pipeline_reads_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RecordingSink()
    pipeline = pipeline_on(sink, tmp_path)

    def broken(batch: list[Sequenced]) -> list[StreamEntry]:
        raise RuntimeError("a bug in the encoder")

    monkeypatch.setattr(pipeline, "_encode", broken)
    hook = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        pipeline.start()
        pipeline.emitter("p")(event(0))
        deadline = time.monotonic() + 5
        while pipeline.sink_thread_alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pipeline.sink_thread_alive
        assert not pipeline.progressing(60.0)
        assert sink.closed
    finally:
        threading.excepthook = hook


def test_entries_build_their_record_from_the_event_only_when_asked(tmp_path: Path) -> None:
    ev = event(7)
    (entry,) = ENCODER.encode([Sequenced("p", 1, ev)])
    assert entry.record_source is ev  # no dict per event on the Redis path
    assert entry.record == ev.to_record()
    assert entry == StreamEntry(entry.producer, entry.seq, entry.src, entry.cell,
                                entry.values, ev.to_record(), entry.memo)


def test_lazy_records_reach_the_spool_and_the_jsonl_sink_as_the_event_records(
    tmp_path: Path,
) -> None:
    events = [event(i, src=f"s{i % 2}") for i in range(20)]
    entries = ENCODER.encode([Sequenced("p", i + 1, ev) for i, ev in enumerate(events)])
    spool = DiskSpool(tmp_path / "spool")
    spool.append(entries)
    spool.close()
    reopened = DiskSpool(tmp_path / "spool")
    replayed = reopened.peek()
    reopened.close()
    assert replayed == entries
    assert replayed is not None and [e.record for e in replayed] == [
        ev.to_record() for ev in events
    ]
    sink = JsonlSink("rec", tmp_path / "rec.jsonl")
    sink.write(entries)
    sink.close()
    lines = (tmp_path / "rec.jsonl").read_text().splitlines()
    assert [Event.from_record(json.loads(line)) for line in lines] == events


def test_a_queue_smaller_than_a_batch_still_delivers_everything_in_order(
    tmp_path: Path,
) -> None:
    sink = RecordingSink()
    pipeline = Pipeline(ENCODER, sink, SequenceStore(tmp_path / "seq.json", lambda p: 0),
                        Metrics(), queue_size=5, batch_size=100, batch_latency_s=0.01)
    pipeline.start()
    emit = pipeline.emitter("p")
    for i in range(60):  # the emits block on the full queue while the encoder drains it
        emit(event(i))
    assert pipeline.wait_idle(10)
    assert [e.values[1] for e in sink.entries] == [f"t:{i}" for i in range(60)]
    assert pipeline.stop()
