"""What the daemon's GC settings (daemon/gc_settings.py) do for it (issue 8), measured
on the daemon.

    python bench/daemon_gc.py [--events 100000] [--runs 3] [--threshold 700,10,10]

Writes `--events` bench events (daemon.commands.bench.write_events) to a JSON-lines
file, starts a throwaway redis-server, and runs ``geosensord run --once`` over the
file in a child process, alternating: as shipped (gc.collect + gc.freeze once
started, then `GC_THRESHOLDS`), with gc.freeze made a no-op, and with the
thresholds replaced by `--threshold` (default: CPython's own 700,10,10). Each run
prints the child's CPU seconds, the seconds its cyclic GC spent per generation and
how many collections ran (generation 2 includes the one gc.collect() at startup),
the objects frozen and its peak RSS.

Measured on the shared 2-core box, 60 000 events, 2 runs each (issue 8): with
CPython's thresholds the GC took 5-7 µs/event (gen0/gen1 ~4, gen2 1.1-2.4 with the
freeze, up to 2.9 without); with 20000,20,20 about 1.1-1.3 µs/event, the same peak
RSS (79-80 MB), and the daemon's CPU per event 48-52 µs instead of 54-55.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.commands.bench import BenchRedis, write_events

REPO = Path(__file__).resolve().parent.parent

# Runs in the child: optional GC settings, GC timing through gc.callbacks, then the CLI.
CHILD = r"""
import gc, json, os, sys, time
if os.environ.get("GC_THRESHOLD"):
    import daemon.gc_settings
    daemon.gc_settings.GC_THRESHOLDS = tuple(map(int, os.environ["GC_THRESHOLD"].split(",")))
if os.environ.get("GC_NO_FREEZE"):
    gc.freeze = lambda: None
spent_s = [0.0, 0.0, 0.0]
runs = [0, 0, 0]
started = [0.0]
def on_gc(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        spent_s[info["generation"]] += time.perf_counter() - started[0]
        runs[info["generation"]] += 1
gc.callbacks.append(on_gc)
from daemon.cli import main
rc = main(sys.argv[1:])
hwm_kb = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm_kb = int(line.split()[1])
print("GC-FIGURES " + json.dumps({"gc_s": spent_s, "gc_runs": runs, "cpu_s": time.process_time(),
      "frozen": gc.get_freeze_count(), "peak_rss_kb": hwm_kb}), file=sys.stderr)
sys.exit(rc)
"""

CONFIG = """\
[station]
id = "gc-bench-{run}"
lat = 1.0
lon = 2.0

[redis]
url = "{url}"

[streams]
prefix = "gc{run}"

[state]
dir = "{state}"

[http]
listen = ""

[sources.replay]
type = "jsonl"
path = "{events}"
"""


def run_daemon(
    workdir: Path, url: str, events: Path, run: int, env: dict[str, str]
) -> dict[str, Any]:
    """One ``run --once`` over `events`; the child's figures plus wall seconds."""
    config = workdir / f"config{run}.toml"
    config.write_text(CONFIG.format(run=run, url=url, state=workdir / f"state{run}", events=events))
    started_s = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "run", "--once", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=REPO,
        capture_output=True, text=True, check=False,
    )
    wall_s = time.perf_counter() - started_s
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("GC-FIGURES ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"daemon run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(lines[-1].split(" ", 1)[1])
    figures["wall_s"] = wall_s
    return figures


def main() -> int:
    """Parse the options, run the variants alternately, print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant")
    parser.add_argument("--threshold", default="700,10,10",
                        help="the third variant's gc.set_threshold(a,b,c) after startup")
    args = parser.parse_args()
    variants = {
        "as shipped": {},
        "no freeze": {"GC_NO_FREEZE": "1"},
        f"freeze + threshold {args.threshold}": {"GC_THRESHOLD": args.threshold},
    }
    workdir = Path(tempfile.mkdtemp(prefix="geosensord-gc-"))
    events = workdir / "events.jsonl"
    write_events(events, args.events)
    server = BenchRedis(workdir)
    server.start()
    try:
        print(f"daemon run --once over {args.events} events (us = per event)")
        run = 0
        for _ in range(args.runs):
            for name, env in variants.items():
                f = run_daemon(workdir, server.url, events, run, env)
                run += 1
                us = 1e6 / args.events
                gc_s = f["gc_s"]
                print(
                    f"  {name:34s} cpu {f['cpu_s'] * us:6.1f} us  gc {sum(gc_s) * us:5.2f} us "
                    f"(gen0/1/2 {gc_s[0] * us:.2f}/{gc_s[1] * us:.2f}/{gc_s[2] * us:.2f}, "
                    f"runs {'/'.join(map(str, f['gc_runs']))})  frozen {f['frozen']}  "
                    f"peak RSS {f['peak_rss_kb'] / 1024:.0f} MB  wall {f['wall_s']:.1f} s",
                    flush=True,
                )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
