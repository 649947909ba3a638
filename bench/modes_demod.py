"""Mode S receiver throughput: modes1.bin repeated N times through `Receiver`.

    python bench/modes_demod.py [--repeat 100] [--rate 2000000] [--block-bytes 1048576]
                                [--runs 3]

Prints the samples processed per CPU second (time.process_time, so one core's work)
as a multiple of real time at the sample rate, the messages decoded, and the ratio
to the issue-3 target of 50x real time (antirez dump1090's C speed on this machine).
Each run uses a fresh Receiver; with --runs > 1 the best and the median run are
shown (the CPU time of a loaded machine varies by +-30 % between runs).
modes1.bin has its quiet stretches cut out (see its README), so it is far denser in
replies than live air, which makes it a pessimistic benchmark for the demodulator.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hardware.modes.receiver import Receiver

MODES1 = Path("/work/shared/data/adsb/modes1.bin")
TARGET_X_REALTIME = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rate", type=int, default=2_000_000, choices=(2_000_000, 2_400_000))
    parser.add_argument("--block-bytes", type=int, default=1 << 20)
    parser.add_argument("--file", type=Path, default=MODES1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    one = np.fromfile(args.file, np.uint8)
    data = np.tile(one, args.repeat)
    samples = data.size // 2
    audio_s = samples / args.rate
    cpu: list[float] = []
    messages = 0
    for _ in range(args.runs):
        rx = Receiver(args.rate)
        messages = 0
        t0 = time.process_time()
        for start in range(0, data.size, args.block_bytes):
            messages += len(rx.feed(data[start : start + args.block_bytes]))
        messages += len(rx.flush())
        cpu.append(time.process_time() - t0)
    best_s, median_s = min(cpu), statistics.median(cpu)
    x_realtime = audio_s / best_s
    print(
        f"{args.file.name} x{args.repeat}: {samples} samples = {audio_s:.2f} s at "
        f"{args.rate / 1e6} MS/s, CPU best {best_s:.3f} s, median {median_s:.3f} s "
        f"of {args.runs} runs"
    )
    print(
        f"throughput: {samples / best_s / 1e6:.2f} Msamples/CPU-s = {x_realtime:.1f}x real "
        f"time (median run {audio_s / median_s:.1f}x)"
    )
    print(f"messages: {messages} ({messages / args.repeat:.1f} per copy)")
    print(f"vs target {TARGET_X_REALTIME:.0f}x real time: {x_realtime / TARGET_X_REALTIME:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
