"""``geosensord decode rs41``: decode Vaisala RS41 radiosonde frames from a recording.

    geosensord decode rs41 FILE [--format json|text]
    geosensord decode rs41 FILE --iq --rate R [--format-iq u8|cs16] [--format json|text]

FILE is FM-demodulated audio as a mono 8- or 16-bit PCM WAV (any rate from 44.1 kHz
up, either polarity), or with ``--iq`` complex baseband IQ tuned near the sonde at
``--rate`` samples/s (``u8``: rtl_sdr's unsigned bytes, ``cs16``: signed 16-bit
little-endian pairs; ``-`` reads stdin), read in blocks.

stdout, one line per decoded frame. ``json``::

    {"serial": "L1830070", "frame": 3172, "time": "2015-08-02T11:59:09Z",
     "lat": 46.0189107, "lon": 16.3472451, "alt": 14035.752, "vel_h_mps": 12.345,
     "heading_deg": 63.328, "vel_v_mps": 7.146, "sats": 8, "batt_v": 2.7,
     "rs_errors": 0}

``time`` is UTC (the sonde sends GPS time; UTC = GPS - leap seconds, 17 s in 2015-16,
18 s since 2017); ``alt`` is the WGS84 ellipsoidal height in metres; ``rs_errors`` is
the number of byte errors Reed-Solomon corrected in the frame (both codewords).
Fields the frame did not carry (no GPS fix, a block failing its CRC) are null.

stderr: a summary (frames decoded, failures by reason). Exit status: 0 at least one
frame decoded, 1 none (or the input could not be read), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

import numpy as np
from numpy.typing import NDArray

from hardware.rs41.decoder import DecodeResult, decode_audio, decode_iq
from hardware.rs41.fm import bytes_per_sample, iq_from_bytes
from hardware.rs41.frame import FrameFailure, Rs41Frame
from hardware.rs41.wav import read_wav

__all__ = ["add_arguments", "frame_json", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
IQ_BLOCK_SAMPLES = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``geosensord decode rs41``."""
    parser.add_argument("file", metavar="FILE", help="WAV audio, or IQ with --iq (- for stdin)")
    parser.add_argument(
        "--format", choices=("json", "text"), default="json", help="output (default json)"
    )
    parser.add_argument("--iq", action="store_true", help="FILE is complex IQ, not audio")
    parser.add_argument("--rate", type=float, help="IQ sample rate in Hz (with --iq)")
    parser.add_argument(
        "--format-iq",
        choices=("u8", "cs16"),
        default="u8",
        help="IQ sample format (default u8)",
    )


def _iso_utc(frame: Rs41Frame) -> str | None:
    if frame.time_utc is None:
        return None
    text = frame.time_utc.strftime("%Y-%m-%dT%H:%M:%S")
    ms = frame.time_utc.microsecond // 1000
    return f"{text}.{ms:03d}Z" if ms else f"{text}Z"


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def frame_json(frame: Rs41Frame) -> dict[str, Any]:
    """The output object of one frame (module docstring)."""
    return {
        "serial": frame.serial,
        "frame": frame.frame,
        "time": _iso_utc(frame),
        "lat": _rounded(frame.lat, 7),
        "lon": _rounded(frame.lon, 7),
        "alt": _rounded(frame.alt, 3),
        "vel_h_mps": _rounded(frame.vel_h_mps, 3),
        "heading_deg": _rounded(frame.heading_deg, 3),
        "vel_v_mps": _rounded(frame.vel_v_mps, 3),
        "sats": frame.sats,
        "batt_v": frame.batt_v,
        "rs_errors": sum(frame.rs_errors),
    }


def frame_text(frame: Rs41Frame) -> str:
    """One human-readable line of a frame."""
    parts = [frame.serial, f"#{frame.frame}", _iso_utc(frame) or "no-time"]
    if frame.lat is not None and frame.lon is not None and frame.alt is not None:
        parts.append(f"{frame.lat:.5f},{frame.lon:.5f} {frame.alt:.1f}m")
    if frame.vel_h_mps is not None and frame.heading_deg is not None:
        parts.append(f"{frame.vel_h_mps:.1f}m/s {frame.heading_deg:.0f}deg")
    if frame.vel_v_mps is not None:
        parts.append(f"{frame.vel_v_mps:+.1f}m/s")
    parts.append(f"sats {frame.sats}  batt {frame.batt_v:.1f}V  rs {sum(frame.rs_errors)}")
    return "  ".join(parts)


def _iq_blocks(source: BinaryIO, fmt: str) -> Iterator[NDArray[np.complex64]]:
    size = IQ_BLOCK_SAMPLES * bytes_per_sample(fmt)
    carry = b""
    while True:
        block = source.read(size)
        if not block:
            break
        data = carry + block
        usable = len(data) // bytes_per_sample(fmt) * bytes_per_sample(fmt)
        carry = data[usable:]
        yield iq_from_bytes(data[:usable], fmt)


def _write(results: Iterable[DecodeResult], fmt: str, out: TextIO) -> tuple[int, Counter[str]]:
    ok = 0
    failures: Counter[str] = Counter()
    for result in results:
        if isinstance(result, FrameFailure):
            failures[result.reason] += 1
            continue
        ok += 1
        if fmt == "json":
            out.write(json.dumps(frame_json(result), separators=(", ", ": ")) + "\n")
        else:
            out.write(frame_text(result) + "\n")
    return ok, failures


def run(args: argparse.Namespace) -> int:
    """Entry point of ``geosensord decode rs41``; returns the exit status."""
    if args.iq and (args.rate is None or args.rate <= 0):
        print("decode rs41: --iq needs --rate (IQ sample rate in Hz)", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.iq:
            if args.file == "-":
                ok, failures = _write(
                    decode_iq(_iq_blocks(sys.stdin.buffer, args.format_iq), args.rate),
                    args.format,
                    sys.stdout,
                )
            else:
                with open(args.file, "rb") as source:
                    ok, failures = _write(
                        decode_iq(_iq_blocks(source, args.format_iq), args.rate),
                        args.format,
                        sys.stdout,
                    )
        else:
            audio = read_wav(args.file)
            ok, failures = _write(
                decode_audio(audio.samples, audio.sample_rate_hz), args.format, sys.stdout
            )
    except BrokenPipeError:
        return EXIT_OK
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        print(f"decode rs41: {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    by_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(failures.items())) or "none"
    print(
        f"rs41: {ok} frames decoded; {sum(failures.values())} failed ({by_reason})",
        file=sys.stderr,
    )
    return EXIT_OK if ok else EXIT_FAILED
