"""Supervision seen from outside: a source that raises on every run is restarted with
growing delays while another keeps publishing, and a quiet source past its
`stall_timeout_s` is restarted; /metrics and /healthz (real HTTP) show both."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon_proc import (
    http_get,
    ids_by_src,
    lines_matching,
    metric,
    new_port,
    parse_metrics,
    start_daemon,
    stop_process,
    wait_for,
    write_config,
    write_recording,
)
from redis_proc import RedisProcess

SUPERVISOR = """
[supervisor]
restart_initial_s = 0.1
restart_max_s = 2.0
"""


def test_failing_source_restarts_with_growing_delays_while_another_publishes(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    live = tmp_path / "live.jsonl"
    ids = write_recording(live, "live", 100)
    port = new_port()
    config = write_config(tmp_path, redis_server.url, {
        "broken": {"type": "jsonl", "path": str(tmp_path / "missing.jsonl")},
        "live": {"type": "jsonl", "path": str(live), "follow": True},
    }, http_port=port, extra=SUPERVISOR)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    client = redis_server.client()
    try:
        wait_for(lambda: (metric(port, "source_restarts_total", source="broken") or 0) >= 4, 30,
                 "four restarts of the broken source")
        # The live source keeps publishing while the broken one is restarted.
        for start in range(100, 400, 100):
            ids += write_recording(live, "live", 100, start=start)
            want = len(ids)
            wait_for(lambda n=want: client.xlen("geo:events") == n,  # type: ignore[misc]
                     20, "appended lines published")
            time.sleep(0.3)

        status, body = http_get(port, "/metrics")
        assert status == 200
        samples = parse_metrics(body)
        broken = frozenset({("source", "broken")})
        live_label = frozenset({("source", "live")})
        restarts = samples[("geosensord_source_restarts_total", broken)]
        assert samples[("geosensord_source_failures_total", broken)] >= restarts >= 4
        assert samples[("geosensord_events_in_total", live_label)] == len(ids)
        assert samples[("geosensord_source_up", live_label)] == 1
        assert samples[("geosensord_source_last_event_age_seconds", live_label)] < 5
        assert ("geosensord_source_last_event_age_seconds", broken) not in samples
        assert samples[("geosensord_queue_depth", frozenset())] == 0
        assert samples[("geosensord_sink_batches_total", frozenset({("sink", "redis")}))] >= 4
        assert samples[("geosensord_sink_write_seconds_count",
                        frozenset({("sink", "redis")}))] >= 4

        status, body = http_get(port, "/healthz")
        assert status == 503  # a source that keeps failing is not healthy
        state = json.loads(body)["sources"]["broken"]
        assert "FileNotFoundError" in state["last_error"]
        assert "missing.jsonl" in state["last_error"]
        assert http_get(port, "/readyz")[0] == 200  # but events are still taken
    finally:
        assert stop_process(daemon) == 0, log.read_text()[-3000:]
    assert ids_by_src(client) == {"live": ids}
    client.close()

    # Delays are d * U(0.5, 1.5) with d = 0.1, 0.2, 0.4, 0.8, 1.6, 2.0 …: the delay range
    # of the fourth restart lies wholly above that of the first.
    delays = [float(m.group(1)) for m in
              lines_matching(log, r"restarting source broken in ([0-9.]+) s")]
    assert len(delays) >= 5
    assert delays[0] < 0.15 + 1e-9
    assert min(delays[3:]) >= 0.4
    assert max(delays) <= 3.0 + 1e-9  # capped at restart_max_s (times 1.5 jitter)


def test_a_source_without_progress_past_its_stall_timeout_is_restarted(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    quiet = tmp_path / "quiet.jsonl"
    ids = write_recording(quiet, "quiet", 50)
    port = new_port()
    # A follower that reached the end of its file publishes nothing more: past
    # stall_timeout_s the supervisor stops that run and starts a new one.
    config = write_config(tmp_path, redis_server.url, {
        "quiet": {"type": "jsonl", "path": str(quiet), "follow": True, "stall_timeout_s": 1.0},
    }, http_port=port, extra=SUPERVISOR)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    client = redis_server.client()
    try:
        wait_for(lambda: (metric(port, "source_stalls_total", source="quiet") or 0) >= 2, 30,
                 "two stalls")
        wait_for(lambda: (metric(port, "source_restarts_total", source="quiet") or 0) >= 2, 10,
                 "two restarts")
        state = json.loads(http_get(port, "/healthz")[1])["sources"]["quiet"]
        assert state["last_error"].startswith("stalled: no progress for ")
        assert state["failures"] == 0
        # A restarted follower reads its file again; the sink skips what it already wrote.
        ids += write_recording(quiet, "quiet", 10, start=50)
        wait_for(lambda: client.xlen("geo:events") == 60, 20, "the appended lines")
    finally:
        assert stop_process(daemon) == 0, log.read_text()[-3000:]
    assert ids_by_src(client) == {"quiet": ids}
    assert lines_matching(log, r"source quiet stalled: no progress for [0-9.]+ s; restarting it")
    client.close()
