"""Mode S receiver throughput: modes1.bin repeated N times through `Receiver`.

    python bench/modes_demod.py [--repeat 100] [--rate 2000000] [--block-bytes 1048576]
                                [--runs 5] [--stages] [--batch-samples 524288] [--plain]
                                [--noise SIGMA] [--air-fraction F] [--fields] [--numpy]

Prints the samples processed per CPU second (time.process_time, so one core's work)
as a multiple of real time at the sample rate, the messages decoded, and the ratio
to the issue-3 target of 50x real time (antirez dump1090's C speed on this machine).
Each run uses a fresh Receiver; with --runs > 1 the best and the median run are
shown (the CPU time of a shared machine varies by +-30 % between runs, by more
when other jobs start). --stages adds one run under cProfile and prints the CPU
per demodulator stage (cumulative, so the profiler's own cost is in it too).
--noise SIGMA replaces the recording by as many samples of Gaussian noise (SIGMA ADC
units per I and Q, seeded): sparse air is mostly noise, and the preamble search's
thresholds set what noise alone costs (it decodes nothing; modes1.bin's floor is
about sigma 1, a dongle at high gain sits at 3-10).
modes1.bin has its quiet stretches cut out (see its README), so it is far denser in
replies than live air, which makes it a pessimistic benchmark for the demodulator:
~1900 messages a second, where a home station hears a few hundred. --air-fraction F
puts them back: each copy of the recording is followed by Gaussian noise at the
recording's own noise floor, as much as makes the recording F of the samples (0.2:
~380 messages a second; the C reference gets the same samples).
By default it times the receiver: demodulation and the parity checks, up to the
checked frames (`ModeSMessage`). --fields also decodes every message's fields and
applies it to an `AircraftTable` (what the ADS-B source does next, and what the C
reference does with its own decoder and aircraft list, --quiet or not): 5-15 us a
message in Python (less for a frame repeated bit for bit, which `decode` remembers;
the memo is cleared at each copy of the recording), which on modes1.bin's ~1900
messages a second is about half as much CPU as the receiver itself, and on air with a
few hundred a second a few per cent.
The default 1 MiB blocks are 2^19 samples, half a receiver batch; the ADS-B source
reads 2^17-sample blocks (--block-bytes 262144), which the receiver batches.
--batch-samples overrides the receiver's batch (default: the Receiver's own, 2^20
samples): each batch costs ~1-1.4 ms of fixed work on this machine (a few hundred
numpy calls), so larger batches trade latency for CPU (2^20 samples, 0.52 s at
2 MS/s: ~10 % less CPU than 2^19).

Ten stages of the demodulator run in compiled kernels where they are built
(hardware/modes/native.py); --numpy runs the numpy code that they replace, for the
comparison (the same messages).

A C reference in the same shell: when `dump1090-mutability` is installed (Debian's
package; its demodulator is dump1090-fa's, for 2.4 MS/s) and scipy is there, each run
also feeds it the recording resampled to 2.4 MS/s (repeated alike; it decodes ~319
messages per copy, the issue's 2.4 MS/s decoders 321-345) and times its CPU (the
child's user + system time). The host's speed drifts by ~20 % within minutes, so
the ratio of the two, run by run, is the steadier figure. --no-reference skips it.

Process settings: by default the process is set up as the daemon sets up its own
(daemon/service.py): `settle_after_startup()` (startup's objects frozen, GC
thresholds 20000,20,20) and `tune_malloc()` (glibc mmap/trim thresholds), applied
once before the timed runs; --plain keeps CPython's and glibc's defaults. The CPU
figure is user + system time (process_time includes both; the user and system
split and the minor page faults per copy of the recording are printed from
getrusage). The receiver runs here in the main thread, in the daemon in a source
thread (another malloc arena; see daemon/malloc_settings.py for both).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.gc_settings import GC_THRESHOLDS, settle_after_startup
from daemon.malloc_settings import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES, tune_malloc
from hardware.modes import message as message_module
from hardware.modes import native
from hardware.modes.aircraft import AircraftTable
from hardware.modes.demod import Demodulator
from hardware.modes.magnitude import magnitude
from hardware.modes.message import decode
from hardware.modes.noise import estimate_noise_floor
from hardware.modes.receiver import DEFAULT_BATCH_SAMPLES, ModeSMessage, Receiver

MODES1 = Path(__file__).resolve().parents[1] / "recordings" / "adsb" / "modes1.bin"
TARGET_X_REALTIME = 50.0
REFERENCE_BINARY = "dump1090-mutability"

# (label, function name as cProfile reports it), in pipeline order.
STAGES = (
    ("magnitude", "magnitude"),
    ("noise floors", "add"),
    ("prefilter", "find_preambles"),
    ("preamble fit", "fit_preambles"),
    ("occupancy", "occupancy"),
    ("fast slice", "slice"),
    ("sequence stage", "_sequence_stage"),
    ("  of it: detector", "sequence_slice"),
    ("  of it: soft repair", "_chase"),
    ("classify", "_classify"),
    ("accept", "_accept"),
)


def run_once(
    data: npt.NDArray[np.uint8],
    rate: int,
    block_bytes: int,
    batch_samples: int | None = None,
    *,
    fields: bool = False,
    copy_samples: int | None = None,
    native: bool | None = None,
) -> int:
    """Feed `data` through a fresh Receiver; returns the messages decoded. With
    `fields`, each message is also decoded and applied to an AircraftTable, as the
    ADS-B source does (and as the C reference does with its own). `copy_samples`:
    the length of one copy of the recording in `data`; decode's memo of repeated
    frames is cleared at each copy, so that only the repeats within the recording
    count (every frame of a second copy would repeat one of the first)."""
    demod = Demodulator(rate, native=native)
    rx = Receiver(
        rate,
        demodulator=demod,
        batch_samples=DEFAULT_BATCH_SAMPLES if batch_samples is None else batch_samples,
    )
    table = AircraftTable() if fields else None
    copy = -1

    def take(found: list[ModeSMessage]) -> int:
        nonlocal copy
        if table is not None:
            for m in found:
                if copy_samples and m.sample // copy_samples != copy:
                    copy = m.sample // copy_samples
                    message_module._decode.cache_clear()
                table.update(decode(m.msg, m.icao), m.t_s, m.signal_dbfs)
        return len(found)

    messages = 0
    for start in range(0, data.size, block_bytes):
        messages += take(rx.feed(data[start : start + block_bytes]))
    return messages + take(rx.flush())


def print_stages(data: npt.NDArray[np.uint8], args: argparse.Namespace, copies: int) -> None:
    """One run under cProfile: CPU ms per copy of the recording for each stage."""
    profile = cProfile.Profile()
    profile.enable()
    run_once(
        data, args.rate, args.block_bytes, args.batch_samples, native=False if args.numpy else None
    )
    profile.disable()
    stats = pstats.Stats(profile)
    by_name: dict[str, float] = {}
    for (filename, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if "hardware/modes" in filename:
            by_name[name] = by_name.get(name, 0.0) + row[3]
    # PulseModel.slice and Demodulator.slice share a name: report the model's.
    slicer = [
        row[3]
        for (filename, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name == "slice" and filename.endswith("slicer.py")
    ]
    by_name["slice"] = sum(slicer)
    total = sum(
        row[3]
        for (_, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name in ("feed", "flush")
    )
    print(f"CPU per copy under cProfile ({total / copies * 1e3:.2f} ms in feed + flush):")
    for label, name in STAGES:
        print(f"  {label:22s} {by_name.get(name, 0.0) / copies * 1e3:6.3f} ms")


def resampled_to_2p4(iq_u8: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """u8 IQ at 2.0 MS/s resampled to 2.4 MS/s (polyphase 6/5), or None without scipy."""
    try:
        from scipy import signal  # type: ignore[import-untyped]
    except ImportError:
        return None
    x = (iq_u8[0::2].astype(np.float64) - 127.5) + 1j * (iq_u8[1::2].astype(np.float64) - 127.5)
    y = signal.resample_poly(x, 6, 5)
    iq = np.empty(y.size * 2, np.float64)
    iq[0::2], iq[1::2] = y.real, y.imag
    return np.clip(np.round(iq + 127.5), 0, 255).astype(np.uint8)


def run_reference(binary: str, path: Path) -> tuple[float, int]:
    """CPU seconds (user + system) the C decoder takes over the u8 IQ file `path`, and
    the messages it accepted with a correct CRC (from its --stats)."""
    before = os.times()
    done = subprocess.run(
        [binary, "--ifile", str(path), "--quiet", "--stats"],
        capture_output=True, text=True, check=True,
    )
    after = os.times()
    cpu_s = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    found = re.search(r"(\d+) accepted with correct CRC", done.stdout + done.stderr)
    return cpu_s, int(found.group(1)) if found else 0


def with_quiet_air(
    iq_u8: npt.NDArray[np.uint8], fraction: float, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """`iq_u8` followed by Gaussian noise at its own noise floor (sigma per I and Q
    from the mean noise magnitude: sigma = mean / sqrt(pi / 2)), as much as makes
    `iq_u8` `fraction` of the result."""
    sigma = estimate_noise_floor(magnitude(iq_u8)) / np.sqrt(np.pi / 2)
    pairs = round(iq_u8.size / 2 * (1.0 / fraction - 1.0))
    return np.concatenate([iq_u8, noise_iq(sigma, 2 * pairs, rng)])


def noise_iq(sigma: float, size: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """`size` bytes of interleaved u8 IQ: Gaussian noise of `sigma` ADC units per I
    and Q about the midpoint, rounded and clipped as the dongle's ADC would."""
    return np.clip(np.round(rng.normal(127.5, sigma, size)), 0, 255).astype(np.uint8)


def apply_daemon_settings(plain: bool) -> str:
    """Set the process up as the daemon does (unless `plain`); returns what was used."""
    if plain:
        return "plain (CPython GC and glibc malloc defaults)"
    settle_after_startup()
    malloc = (
        f"malloc mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, "
        f"trim threshold {TRIM_THRESHOLD_BYTES >> 20} MiB"
        if tune_malloc()
        else "malloc defaults (no glibc mallopt)"
    )
    return f"daemon's: GC frozen after startup, thresholds {GC_THRESHOLDS}; {malloc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rate", type=int, default=2_000_000, choices=(2_000_000, 2_400_000))
    parser.add_argument("--block-bytes", type=int, default=1 << 20)
    parser.add_argument("--file", type=Path, default=MODES1)
    parser.add_argument("--noise", type=float, default=None, help="noise instead, sigma")
    parser.add_argument(
        "--air-fraction", type=float, default=1.0, help="recording's share, noise the rest"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", action="store_true", help="print CPU per stage")
    parser.add_argument(
        "--fields", action="store_true", help="also decode every message into an aircraft table"
    )
    parser.add_argument("--batch-samples", type=int, default=None, help="receiver batch")
    parser.add_argument("--no-reference", action="store_true", help="skip the C reference")
    parser.add_argument(
        "--plain", action="store_true", help="without the daemon's GC and malloc settings"
    )
    parser.add_argument(
        "--numpy", action="store_true", help="numpy code only, not the compiled kernels"
    )
    args = parser.parse_args()

    one = np.fromfile(args.file, np.uint8)
    rng = np.random.default_rng(1090)
    if args.noise is not None:
        one = noise_iq(args.noise, one.size, rng)
    if not 0.0 < args.air_fraction <= 1.0:
        parser.error("--air-fraction must be in (0, 1]")
    if args.air_fraction < 1.0:
        one = with_quiet_air(one, args.air_fraction, rng)
    data = np.tile(one, args.repeat)
    samples = data.size // 2
    audio_s = samples / args.rate
    binary = None if args.no_reference else shutil.which(REFERENCE_BINARY)
    reference_file: Path | None = None
    if binary is not None and args.rate == 2_000_000:
        resampled = resampled_to_2p4(one)
        if resampled is not None:
            handle, name = tempfile.mkstemp(suffix=".u8")
            os.close(handle)
            reference_file = Path(name)
            np.tile(resampled, args.repeat).tofile(reference_file)
    label = args.file.name if args.noise is None else f"noise (sigma {args.noise})"
    if args.air_fraction < 1.0:
        label += f" + noise ({args.air_fraction:.0%} of the samples from the recording)"
    settings = apply_daemon_settings(args.plain)
    cpu: list[float] = []
    user_s: list[float] = []
    system_s: list[float] = []
    faults: list[int] = []
    reference_cpu: list[float] = []
    messages = reference_messages = 0
    try:
        for _ in range(args.runs):  # ours and the reference alternately: both meet the drift
            usage = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.process_time()
            messages = run_once(
                data,
                args.rate,
                args.block_bytes,
                args.batch_samples,
                fields=args.fields,
                copy_samples=one.size // 2,
                native=False if args.numpy else None,
            )
            cpu.append(time.process_time() - t0)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user_s.append(after.ru_utime - usage.ru_utime)
            system_s.append(after.ru_stime - usage.ru_stime)
            faults.append(after.ru_minflt - usage.ru_minflt)
            if reference_file is not None and binary is not None:
                cpu_s, reference_messages = run_reference(binary, reference_file)
                reference_cpu.append(cpu_s)
    finally:
        if reference_file is not None:
            reference_file.unlink()
    best_s, median_s = min(cpu), statistics.median(cpu)
    x_realtime = audio_s / best_s
    print(f"process settings: {settings}")
    if args.numpy or not native.available():
        print(f"demodulator: numpy only {native.UNAVAILABLE_REASON or '(--numpy)'}")
    else:
        print("demodulator: compiled kernels (hardware.modes.native)")
    print(
        f"{label} x{args.repeat}: {samples} samples = {audio_s:.2f} s at "
        f"{args.rate / 1e6} MS/s, CPU best {best_s:.3f} s, median {median_s:.3f} s "
        f"of {args.runs} runs"
    )
    print(
        f"throughput: {samples / best_s / 1e6:.2f} Msamples/CPU-s = {x_realtime:.1f}x real "
        f"time (median run {audio_s / median_s:.1f}x)"
    )
    print(
        f"messages: {messages} ({messages / args.repeat:.1f} per copy, "
        f"{messages / audio_s:.0f} per second of signal)"
    )
    print(
        f"per copy, median of runs: user {statistics.median(user_s) / args.repeat * 1e3:.3f} ms, "
        f"system {statistics.median(system_s) / args.repeat * 1e3:.3f} ms, "
        f"minor page faults {statistics.median(faults) / args.repeat:.1f} "
        f"(getrusage; process_time includes both: "
        f"{sum(cpu):.3f} s vs user + system {sum(user_s) + sum(system_s):.3f} s)"
    )
    print(f"vs target {TARGET_X_REALTIME:.0f}x real time: {x_realtime / TARGET_X_REALTIME:.2f}")
    if reference_cpu:
        ref_best = audio_s / min(reference_cpu)
        ratios = [r / c for c, r in zip(cpu, reference_cpu, strict=True)]
        print(
            f"C reference, same shell: {REFERENCE_BINARY} on the copy resampled to 2.4 MS/s: "
            f"{ref_best:.1f}x real time (best), {reference_messages / args.repeat:.1f} "
            f"messages per copy"
        )
        print(
            f"ours / C reference, speed per second of signal: best {x_realtime / ref_best:.2f}, "
            f"median of runs {statistics.median(ratios):.2f}"
        )
    elif not args.no_reference:
        print(f"(no C reference: {REFERENCE_BINARY} or scipy not installed, or not 2.0 MS/s)")
    if args.stages:
        print_stages(data, args, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
