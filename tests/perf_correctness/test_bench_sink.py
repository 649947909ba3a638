"""`geosensord bench sink` measures what it claims to (issue 8).

Only correctness: the replay hands over every recorded event in order through the
real jsonl source, and a small run writes every event in both pipeline modes and
the baseline (the bench raises otherwise) and reports every figure. No speed is
asserted here; the bench prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from redis_proc import find_redis_server

from daemon.commands import bench


def test_replay_hands_over_every_event_in_order_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bench.write_events(path, 2500, seed=3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    chunks = list(bench.replay_chunks(path, 1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    items = [item for chunk in chunks for item in chunk]
    assert [item.seq for item in items] == list(range(1, 2501))
    assert [item.event.id for item in items] == [rec["id"] for rec in lines]
    assert len({item.producer for item in items}) == 1


def test_replay_stops_its_source_when_the_consumer_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bench.write_events(path, 3000)
    for chunk in bench.replay_chunks(path, 500):
        assert len(chunk) == 500
        break  # the generator's cleanup must release and end the source thread


def test_a_small_run_writes_every_event_and_reports_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if find_redis_server() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--events", "3000", "--batch", "250",
                                        "--reference", "200", "--json"])) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["events"] == 3000 and result["batch"] == 250
    assert result["stream_counts"]["per-source"] == 5  # three receivers, weather, quakes
    assert result["stream_counts"]["per-cell"] > 10
    for key in ("sequential_events_per_s", "overlapped_events_per_s", "raw_events_per_s",
                "s2_cpu_us", "encode_cpu_us", "sink_cpu_us", "pipeline_redis_cpu_us",
                "s2sphere_cpu_us", "peak_rss_mb", "redis_peak_rss_mb", "cpu_ratio"):
        assert result[key] > 0, key


def test_bad_sizes_are_refused() -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--events", "0"])) == 2
