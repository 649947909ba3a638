"""SIGTERM while Redis hangs (SIGSTOPped: connections open, replies never come): the
daemon drains into the spool and exits 0 well within the unit's TimeoutStopSec (30 s);
the next run delivers everything exactly once."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from daemon_proc import (
    ids_by_src,
    metric,
    new_port,
    start_daemon,
    wait_for,
    write_config,
    write_recording,
    xlen,
)
from redis_proc import RedisProcess

TIMEOUT_STOP_S = 30.0  # deploy/geosensord.service
STOPPED = re.compile(r"stopped: redis \w+, written (\d+), spool (\d+); replay=(\d+)")


def test_sigterm_with_a_hanging_redis_spools_and_exits_within_timeout_stop_sec(
    durable_redis: RedisProcess, tmp_path: Path
) -> None:
    n = 20_000
    ids = write_recording(tmp_path / "events.jsonl", "replay", n)
    port = new_port()
    config = write_config(tmp_path, durable_redis.url,
                          {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}},
                          http_port=port, batch_size=500)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    assert durable_redis.proc is not None
    redis_pid = durable_redis.proc.pid
    stopped = False
    try:
        wait_for(lambda: xlen(durable_redis.port) > 0, 30, "the first events in redis")
        os.kill(redis_pid, signal.SIGSTOP)
        stopped = True
        wait_for(lambda: (metric(port, "spooled_events_total", sink="redis") or 0) > 0, 30,
                 "the sink to notice the hang and spool")
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(TIMEOUT_STOP_S)
        stop_s = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if stopped:
            os.kill(redis_pid, signal.SIGCONT)
    assert status == 0, log.read_text()[-3000:]
    assert stop_s < TIMEOUT_STOP_S
    m = STOPPED.search(log.read_text())
    assert m is not None, log.read_text()[-3000:]
    written, spooled, emitted = map(int, m.groups())
    assert spooled > 0 and written + spooled >= emitted

    # Redis answers again. A run without sources replays the spool: every event the
    # source had emitted before SIGTERM is there (the drain left nothing in memory).
    spool_only = write_config(tmp_path, durable_redis.url, {}, name="spool_only.toml")
    daemon = start_daemon(spool_only, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-3000:]
    client = durable_redis.client()
    assert ids_by_src(client) == {"replay": ids[:emitted]}
    # The source re-reads its file: the rest arrives, nothing twice.
    daemon = start_daemon(config, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-3000:]
    assert ids_by_src(client) == {"replay": ids}
    client.close()
    print(f"SIGTERM with redis hanging: exit 0 after {stop_s:.1f} s; {emitted} emitted, "
          f"{written} written before the hang, {spooled} spooled")
