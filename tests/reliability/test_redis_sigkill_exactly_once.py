"""100 000 events from two replay sources while redis-server is SIGKILLed and restarted
twice on the same port (AOF, appendfsync always): every event lands exactly once, in
per-source order (design §4). The daemon runs as `geosensord run --once`."""

from __future__ import annotations

import time
from pathlib import Path

from daemon_proc import (
    ids_by_src,
    kill_redis,
    lines_matching,
    start_daemon,
    wait_for,
    write_config,
    write_recording,
    xlen,
)
from redis_proc import RedisProcess

N_PER_SOURCE = 50_000


def test_100k_events_survive_two_redis_sigkills_exactly_once_in_order(
    durable_redis: RedisProcess, tmp_path: Path
) -> None:
    expected = {
        src: write_recording(tmp_path / f"{src}.jsonl", src, N_PER_SOURCE)
        for src in ("north", "south")
    }
    config = write_config(tmp_path, durable_redis.url, {
        src: {"type": "jsonl", "path": str(tmp_path / f"{src}.jsonl")} for src in expected
    })
    log = tmp_path / "daemon.log"
    started = time.monotonic()
    daemon = start_daemon(config, log, "--once")
    kills = []
    try:
        for threshold in (15_000, 55_000):
            wait_for(lambda t=threshold: xlen(durable_redis.port) >= t, 60,  # type: ignore[misc]
                     f"{threshold} events in redis")
            kill_redis(durable_redis)
            kills.append(time.monotonic() - started)
            time.sleep(0.5)  # the daemon sees the outage and spools
            durable_redis.start()  # same port, same AOF
        assert daemon.wait(90) == 0, log.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    elapsed_s = time.monotonic() - started

    client = durable_redis.client()
    assert ids_by_src(client) == expected
    for src, ids in expected.items():
        assert ids_by_src(client, f"geo:src:{src}") == {src: ids}
    client.close()
    # Both outages were noticed and went through the spool, which is empty at the end.
    assert len(lines_matching(log, r"sink redis failing")) >= 2, log.read_text()[-3000:]
    assert len(lines_matching(log, r"sink redis recovered")) >= 2
    assert list((tmp_path / "state" / "spool").glob("*.seg")) == []
    print(f"100k events, redis SIGKILLed at {kills[0]:.1f} s and {kills[1]:.1f} s, "
          f"done in {elapsed_s:.1f} s")
