"""Redis out of memory (`maxmemory` tiny, `noeviction`): the daemon's batches are refused,
spooled, and drained in order once memory is raised (CONFIG SET maxmemory 0)."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_proc import (
    http_get,
    ids_by_src,
    lines_matching,
    metric,
    new_port,
    start_daemon,
    stop_process,
    wait_for,
    write_config,
    write_recording,
)
from redis_proc import RedisProcess

N = 3000


def test_events_spool_while_redis_is_out_of_memory_and_drain_when_it_is_raised(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    admin = redis_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")  # below what an empty server uses: every write is OOM
    ids = write_recording(tmp_path / "events.jsonl", "replay", N)
    port = new_port()
    config = write_config(
        tmp_path, redis_server.url,
        {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}},
        http_port=port, batch_size=200,
    )
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_for(lambda: metric(port, "spool_depth") == N, 30, f"all {N} events spooled")
        assert admin.exists("geo:events") == 0
        assert metric(port, "events_written_total", sink="redis") in (None, 0)
        assert (metric(port, "sink_errors_total", sink="redis") or 0) >= 1
        # Alive and ready: events are safely taken (spooled) although Redis refuses them.
        status, body = http_get(port, "/readyz")
        assert status == 200, body
        health = json.loads(body)
        assert health["redis"] == "down"
        assert "used memory > 'maxmemory'" in health["last_sink_error"]
        oom_lines = lines_matching(log, r"sink redis failing: .*used memory > 'maxmemory'")
        assert len(oom_lines) == 1, log.read_text()

        admin.config_set("maxmemory", "0")
        wait_for(lambda: metric(port, "spool_depth") == 0, 30, "the spool to drain")
        assert ids_by_src(admin) == {"replay": ids}
        assert metric(port, "replayed_events_total", sink="redis") == N
        assert metric(port, "spool_dropped_events_total") == 0
        # Replay attempts while Redis still refused, then the one that succeeded.
        assert (metric(port, "sink_retries_total", sink="redis") or 0) >= 1
        assert http_get(port, "/healthz")[0] == 200
    finally:
        assert stop_process(daemon) == 0, log.read_text()[-3000:]
    assert ids_by_src(admin) == {"replay": ids}
    admin.close()
