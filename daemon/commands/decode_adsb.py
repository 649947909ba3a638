"""``geosensord decode adsb``: demodulate and decode Mode S from a u8 IQ recording.

    geosensord decode adsb FILE [--rate 2000000|2400000] [--format raw|json]
                                [--max-fix-bits 0|1|2] [--block-bytes N]

FILE is unsigned 8-bit interleaved IQ (rtl_sdr's format) or ``-`` for stdin; it is
read and demodulated in blocks, so it may be endless. Output on stdout, one line per
message in time order:

- ``raw``: ``*8D4D2023587F345E35837E2218B2;`` (dump1090 ``--raw`` style).
- ``json``: ``{"sample": 794, "t_s": 0.000397, "df": 17, "icao": "4D2023",
  "crc": "ok", "corrected_bits": 0, "signal_dbfs": -12.6, "msg": "8D…", <decoded
  fields from hardware.modes.message.decode>}``.

stderr: a progress bar while stderr is a terminal and the input size is known, then a
summary (messages by DF, repaired frames, aircraft addresses). Exit status: 0 done,
1 the input could not be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any, BinaryIO, TextIO

import numpy as np

from hardware.modes.errors import DecodeError
from hardware.modes.message import decode
from hardware.modes.receiver import ModeSMessage, Receiver

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RATES_HZ = (2_000_000, 2_400_000)
DEFAULT_BLOCK_BYTES = 1 << 20  # 0.26 s of samples at 2.0 MS/s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``geosensord decode adsb``."""
    parser.add_argument("file", metavar="FILE", help="u8 interleaved IQ recording, - for stdin")
    parser.add_argument(
        "--rate",
        type=int,
        choices=RATES_HZ,
        default=2_000_000,
        help="sample rate in Hz (default 2000000)",
    )
    parser.add_argument(
        "--format", choices=("raw", "json"), default="raw", help="output format (default raw)"
    )
    parser.add_argument(
        "--max-fix-bits",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="CRC repair of DF11/17/18 (default 1 bit)",
    )
    parser.add_argument(
        "--block-bytes",
        type=int,
        default=DEFAULT_BLOCK_BYTES,
        help=f"read size in bytes (default {DEFAULT_BLOCK_BYTES})",
    )


def message_json(msg: ModeSMessage) -> dict[str, Any]:
    """One output object: receiver metadata plus the decoded fields."""
    out: dict[str, Any] = {
        "sample": msg.sample,
        "t_s": round(msg.t_s, 7),
        "df": msg.df,
        "icao": f"{msg.icao:06X}",
        "crc": msg.crc,
        "corrected_bits": msg.corrected_bits,
        "signal_dbfs": round(msg.signal_dbfs, 1),
        "msg": msg.hex,
    }
    try:
        fields = decode(msg.msg, msg.icao).as_dict()
    except DecodeError as exc:
        out["error"] = type(exc).__name__
    else:
        for key, value in fields.items():
            out.setdefault(key, value)
        out["icao"] = f"{msg.icao:06X}"
    return out


class _Summary:
    """Counts for the closing stderr summary."""

    def __init__(self) -> None:
        self.by_df: Counter[int] = Counter()
        self.repaired = 0
        self.aircraft: Counter[int] = Counter()

    def add(self, msg: ModeSMessage) -> None:
        self.by_df[msg.df] += 1
        self.repaired += msg.corrected_bits > 0
        self.aircraft[msg.icao] += 1

    def render(self, samples: int, rate_hz: int) -> str:
        total = sum(self.by_df.values())
        by_df = ", ".join(f"DF{df} {n}" for df, n in sorted(self.by_df.items())) or "none"
        planes = ", ".join(f"{a:06X} ({n})" for a, n in self.aircraft.most_common()) or "none"
        return (
            f"{total} messages from {samples} samples ({samples / rate_hz:.3f} s): {by_df}; "
            f"repaired {self.repaired}; aircraft {len(self.aircraft)}: {planes}"
        )


def _progress(done: int, total: int, err: TextIO) -> None:
    width = 40
    filled = width * done // max(total, 1)
    err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done // max(total, 1):3d}%")
    err.flush()


def _emit(messages: list[ModeSMessage], fmt: str, out: TextIO, summary: _Summary) -> None:
    for msg in messages:
        summary.add(msg)
        if fmt == "raw":
            out.write(f"*{msg.hex};\n")
        else:
            out.write(json.dumps(message_json(msg), separators=(",", ":")) + "\n")


def decode_stream(
    source: BinaryIO,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    total_bytes: int | None = None,
) -> _Summary:
    """Demodulate `source` block by block, writing messages to `out`."""
    rx = Receiver(args.rate, args.max_fix_bits)
    summary = _Summary()
    show_progress = total_bytes is not None and err.isatty()
    done = 0
    while True:
        block = source.read(args.block_bytes)
        if not block:
            break
        done += len(block)
        _emit(rx.feed(np.frombuffer(block, np.uint8)), args.format, out, summary)
        if show_progress and total_bytes is not None:
            _progress(done, total_bytes, err)
    _emit(rx.flush(), args.format, out, summary)
    if show_progress:
        err.write("\n")
    err.write(summary.render(rx.samples_fed, args.rate) + "\n")
    return summary


def run(args: argparse.Namespace) -> int:
    """Entry point of ``geosensord decode adsb``; returns the exit status."""
    if args.block_bytes < 2:
        print("--block-bytes must be at least 2", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.file == "-":
            decode_stream(sys.stdin.buffer, args, sys.stdout, sys.stderr)
        else:
            with open(args.file, "rb") as source:
                size = os.fstat(source.fileno()).st_size
                decode_stream(source, args, sys.stdout, sys.stderr, size or None)
    except BrokenPipeError:  # e.g. piped into head: not an error
        return EXIT_OK
    except OSError as exc:
        print(f"decode adsb: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
