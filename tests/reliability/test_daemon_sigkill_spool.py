"""The daemon SIGKILLed while it spools (Redis down) and again while it replays the spool:
nothing handed to the spool is lost and nothing is written twice (design §4)."""

from __future__ import annotations

import signal
from pathlib import Path

from daemon_proc import (
    ids_by_src,
    metric,
    new_port,
    start_daemon,
    stop_process,
    wait_for,
    write_config,
    write_recording,
    xlen,
)
from redis_proc import RedisProcess

from sinks.spool import DiskSpool

N = 40_000


def test_daemon_sigkilled_while_spooling_and_while_replaying_loses_and_duplicates_nothing(
    durable_redis: RedisProcess, tmp_path: Path
) -> None:
    ids = write_recording(tmp_path / "events.jsonl", "replay", N)
    port = new_port()
    source = {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}}
    with_source = write_config(tmp_path, durable_redis.url, source, http_port=port,
                               name="with_source.toml")
    spool_only = write_config(tmp_path, durable_redis.url, {}, http_port=port,
                              name="spool_only.toml")
    log = tmp_path / "daemon.log"
    durable_redis.stop()

    # 1. Redis is down: everything goes to the spool. Kill the daemon mid-way.
    daemon = start_daemon(with_source, log)
    try:
        wait_for(lambda: (metric(port, "spool_depth") or 0) >= 5000, 60, "5000 events spooled")
    finally:
        assert stop_process(daemon, signal.SIGKILL) == -signal.SIGKILL
    with DiskSpool(tmp_path / "state" / "spool") as spool:
        spooled = spool.depth()
        assert spool.corrupt_records == 0
    assert 5000 <= spooled <= N

    # 2. Redis is back; a daemon without sources replays the spool and is killed mid-way.
    durable_redis.start()
    daemon = start_daemon(spool_only, log)
    try:
        wait_for(lambda: xlen(durable_redis.port) >= spooled // 3, 60, "replay under way")
    finally:
        assert stop_process(daemon, signal.SIGKILL) == -signal.SIGKILL
    replayed_before_kill = xlen(durable_redis.port)

    # 3. The next run finishes the replay: exactly what was spooled, once, in order.
    daemon = start_daemon(spool_only, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-3000:]
    client = durable_redis.client()
    assert ids_by_src(client) == {"replay": ids[:spooled]}

    # 4. The source replays its whole file: only the events never spooled are new.
    daemon = start_daemon(with_source, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-3000:]
    assert ids_by_src(client) == {"replay": ids}
    client.close()
    assert list((tmp_path / "state" / "spool").glob("*.seg")) == []
    print(f"spooled {spooled} of {N} before SIGKILL; {replayed_before_kill} replayed before "
          "the second SIGKILL")
