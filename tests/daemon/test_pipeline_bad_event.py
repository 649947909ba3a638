"""An event the encoder refuses is dropped alone; the sink thread and the batch live on."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit import nothing_committed, redis_pipeline
from redis_proc import RedisProcess

from daemon.event import Event
from daemon.metrics import Metrics


def event(i: int, data: dict[str, object]) -> Event:
    return Event(id=f"t:{i}", src="t", kind="sensor.reading", t=1_700_000_000_000 + i,
                 rx=1_700_000_000_000 + i, lat=10.0, lon=20.0, alt=None, station="s", data=data)


def test_an_unencodable_event_is_counted_and_the_rest_are_written(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    metrics = Metrics()
    pipeline, _ = redis_pipeline(redis_server.url, tmp_path / "seq.json", metrics,
                                 committed=nothing_committed, batch_latency_s=0.05)
    pipeline.start()
    emit = pipeline.emitter("s:t", "t")
    for i in range(10):
        emit(event(i, {"v": float("nan")} if i == 4 else {"v": i}))
    emit(event(10, {"v": 10}))  # a later batch still flows: the sink thread is alive
    assert pipeline.wait_idle(10)
    assert pipeline.stop()
    ids = [f["id"] for _, f in redis_server.client().xrange("geo:events")]
    assert ids == [f"t:{i}" for i in range(11) if i != 4]
    assert metrics.get("events_rejected_total", source="t") == 1
