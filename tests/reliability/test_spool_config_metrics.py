"""The `[spool]` table reaches the DiskSpool, its bounds and drops show in /metrics, and
the new config keys are validated at load time like every other key."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_proc import metric, new_port, start_daemon, stop_process, wait_for, write_config
from daemon_proc import write_recording as record
from redis_proc import RedisProcess

from daemon.config import ConfigErrors, parse_config
from daemon.metrics import Metrics
from daemon.runtime import make_spool
from sinks.spool import DiskSpool, MiB

BASE = '[station]\nid = "s"\nlat = 0.0\nlon = 0.0\n'


def test_spool_table_configures_the_disk_spool(tmp_path: Path) -> None:
    config = parse_config(BASE + '[spool]\nmax_mb = 2\nsegment_mb = 0.5\npolicy = "block"\n'
                          'fsync = "interval"\nfsync_interval_s = 3\n')
    spool = make_spool(tmp_path, config.spool)
    try:
        assert isinstance(spool, DiskSpool)
        assert (spool.max_bytes, spool.segment_bytes) == (2 * MiB, MiB // 2)
        assert (spool.policy, spool.fsync, spool.fsync_interval_s) == ("block", "interval", 3.0)
    finally:
        spool.close()


@pytest.mark.parametrize(("table", "key"), [
    ('[spool]\npolicy = "drop_newest"', "spool.policy"),
    ('[spool]\nfsync = "always"', "spool.fsync"),
    ("[spool]\nmax_mb = 1\nsegment_mb = 4", "spool.max_mb"),
    ("[spool]\nmax_mb = -1", "spool.max_mb"),
    ("[spool]\nmax_size = 1", "spool.max_size"),
    ("[supervisor]\nrestart_initial_s = 0", "supervisor.restart_initial_s"),
    ('[sources.r]\ntype = "jsonl"\npath = "x"\nstall_timeout_s = -1', "sources.r.stall_timeout_s"),
    ('[sources.r]\ntype = "jsonl"\npath = "x"\nstall_timeout = 5', "sources.r.stall_timeout"),
])
def test_new_keys_are_validated_naming_the_key(table: str, key: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        parse_config(BASE + table + "\n", "geosensord.toml")
    assert [e.key for e in err.value.errors] == [key]
    assert err.value.errors[0].line is not None


def test_stall_timeout_appears_only_when_written() -> None:
    config = parse_config(BASE + '[sources.a]\ntype = "jsonl"\npath = "x"\n'
                          '[sources.b]\ntype = "jsonl"\npath = "y"\nstall_timeout_s = 30\n')
    assert "stall_timeout_s" not in config.sources["a"]
    assert config.sources["b"]["stall_timeout_s"] == 30.0


def test_a_full_drop_oldest_spool_counts_its_drops_in_metrics(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    tmp = tmp_path
    n = 20_000
    record(tmp / "events.jsonl", "replay", n)
    port = new_port()
    source = {"replay": {"type": "jsonl", "path": str(tmp / "events.jsonl")}}
    config = write_config(tmp, redis_server.url, source, http_port=port)
    # A spool of two 0.1 MiB segments holds a few thousand events: the rest is dropped.
    config.write_text(config.read_text().replace("segment_mb = 1.0",
                                                 "segment_mb = 0.1\nmax_mb = 0.2"))
    redis_server.stop()
    log = tmp / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        # Every event is either kept or counted as dropped.
        wait_for(lambda: (metric(port, "spool_depth") or 0)
                 + (metric(port, "spool_dropped_events_total") or 0) == n, 60,
                 "every event kept or counted")
        depth = metric(port, "spool_depth")
        dropped = metric(port, "spool_dropped_events_total")
        on_disk = metric(port, "spool_bytes")
        assert depth is not None and dropped is not None and on_disk is not None
        assert dropped > 0
        assert 0 < on_disk <= 0.2 * 1024 * 1024
        assert metric(port, "spool_corrupt_records_total") == 0
    finally:
        assert stop_process(daemon) == 0
    print(f"spool kept {depth:.0f}, dropped {dropped:.0f} events in {on_disk:.0f} bytes")


def test_metrics_exposition_is_well_formed_with_histograms() -> None:
    metrics = Metrics()
    metrics.inc("events_in_total", 3, source='we"ird\\name')
    metrics.observe("sink_write_seconds", 0.004, sink="redis")
    metrics.observe("sink_write_seconds", 30.0, sink="redis")
    metrics.add_collector(lambda m: m.set("queue_depth", 7))
    text = metrics.prometheus()
    assert 'geosensord_events_in_total{source="we\\"ird\\\\name"} 3' in text
    assert "# TYPE geosensord_sink_write_seconds histogram" in text
    assert 'geosensord_sink_write_seconds_bucket{sink="redis",le="0.005"} 1' in text
    assert 'geosensord_sink_write_seconds_bucket{sink="redis",le="10"} 1' in text
    assert 'geosensord_sink_write_seconds_bucket{sink="redis",le="+Inf"} 2' in text
    assert 'geosensord_sink_write_seconds_count{sink="redis"} 2' in text
    assert "geosensord_queue_depth 7" in text
    assert metrics.observations("sink_write_seconds", sink="redis") == (2, 30.004)
