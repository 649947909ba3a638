"""Mode S receiver soak: hours of signal through the receiver, the frame checks, the
decoder and the aircraft table, with the process's memory and the receiver's state
sampled as it goes.

    python bench/modes_soak.py [--minutes 60] [--air-fraction 0.2] [--block-bytes 262144]
                               [--report-every 300] [--warmup 120] [--tolerance-mib 4]

The signal is modes1.bin followed by Gaussian noise at the recording's own floor (as
`bench/modes_demod.py --air-fraction`), repeated; each copy is one of `_VARIANTS`
drawn beforehand with different noise (seeded), picked at random, so the quiet air
does not repeat in step with the recording. Blocks are 2^17 samples, what the ADS-B
source reads. Each accepted message is decoded and applied to an
`AircraftTable` with expiry, as the source's tracker does. The process is set up as the
daemon sets itself up (GC and malloc settings).

Every `--report-every` seconds of signal it prints: signal time, CPU seconds and the
speed as a multiple of real time, messages, the resident set (MiB, /proc/self/statm),
and the sizes of what the receiver keeps between blocks (sample buffer, noise floors
by segment, confirmed addresses) and of the aircraft table. At the end it compares the
resident set after `--warmup` seconds of signal with the last one: growth beyond
`--tolerance-mib` exits with status 1 (a leak), so the soak can gate a release.

One hour of signal takes about two minutes on the development machine. It is not
part of the test suite (tests assert correctness, not endurance).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from modes_demod import MODES1, apply_daemon_settings, with_quiet_air

from hardware.modes.aircraft import AircraftTable
from hardware.modes.errors import DecodeError
from hardware.modes.message import decode
from hardware.modes.receiver import Receiver

RATE_HZ = 2_000_000
_VARIANTS = 8


def resident_mib() -> float:
    """Resident set size of this process in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="signal time")
    parser.add_argument("--air-fraction", type=float, default=0.2)
    parser.add_argument("--block-bytes", type=int, default=1 << 18)
    parser.add_argument("--report-every", type=float, default=300.0, help="seconds of signal")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds of signal")
    parser.add_argument("--tolerance-mib", type=float, default=4.0)
    args = parser.parse_args()
    if not 0.0 < args.air_fraction <= 1.0:
        parser.error("--air-fraction must be in (0, 1]")
    if args.warmup >= args.minutes * 60.0:
        parser.error("--warmup must be shorter than the soak")

    recording = np.fromfile(MODES1, np.uint8)
    rng = np.random.default_rng(1090)
    copies = [with_quiet_air(recording, args.air_fraction, rng) for _ in range(_VARIANTS)]
    print(apply_daemon_settings(plain=False))
    rx = Receiver(RATE_HZ)
    table = AircraftTable()
    end_samples = int(args.minutes * 60.0 * RATE_HZ)
    report_samples = int(args.report_every * RATE_HZ)
    next_report = report_samples
    messages = undecodable = 0
    cpu_s = 0.0
    warm_mib: float | None = None
    last_mib = resident_mib()
    print(
        f"{'signal s':>9} {'CPU s':>7} {'x real':>7} {'messages':>9} {'RSS MiB':>8} "
        f"{'buffer':>8} {'floors':>6} {'book':>5} {'aircraft':>8}"
    )
    while rx.samples_fed < end_samples:
        copy = copies[rng.integers(_VARIANTS)]
        t0 = time.process_time()
        for start in range(0, copy.size, args.block_bytes):
            for m in rx.feed(copy[start : start + args.block_bytes]):
                messages += 1
                try:
                    table.update(decode(m.msg, m.icao), m.t_s, m.signal_dbfs)
                except DecodeError:
                    undecodable += 1
            table.expire(rx.samples_fed / RATE_HZ)
        cpu_s += time.process_time() - t0
        signal_s = rx.samples_fed / RATE_HZ
        if warm_mib is None and signal_s >= args.warmup:
            warm_mib = resident_mib()
        if rx.samples_fed >= next_report or rx.samples_fed >= end_samples:
            next_report += report_samples
            last_mib = resident_mib()
            print(
                f"{signal_s:9.0f} {cpu_s:7.1f} {signal_s / cpu_s:7.1f} {messages:9d} "
                f"{last_mib:8.1f} {rx._buf.size:8d} {len(rx._noise._floors):6d} "
                f"{len(rx.book):5d} {len(table):8d}",
                flush=True,
            )
    print(f"undecodable messages: {undecodable}")
    assert warm_mib is not None
    growth = last_mib - warm_mib
    print(
        f"resident set after {args.warmup:.0f} s of signal {warm_mib:.1f} MiB, at the end "
        f"{last_mib:.1f} MiB: {growth:+.1f} MiB (tolerance {args.tolerance_mib} MiB)"
    )
    return 1 if growth > args.tolerance_mib else 0


if __name__ == "__main__":
    sys.exit(main())
