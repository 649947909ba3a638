"""``geosensord rtl-tcp-replay FILE``: serve a u8 IQ recording over the rtl_tcp protocol.

    geosensord rtl-tcp-replay recordings/adsb/modes1.bin [--port 1234] [--host 127.0.0.1]
                              [--rate 2000000] [--fast] [--loop]

Any rtl_tcp client (this daemon's ``input = "rtl_tcp://…"``, dump1090 ``--net-only``
with an rtl_tcp front end, SDR++, GQRX) can connect. By default the samples are paced
at the sample rate the client sets (else --rate) and the recording loops, so the
offline demo keeps showing aircraft; --fast sends as fast as the client reads. The
commands the client sends are logged. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import sys
import time

from hardware.iq.rtl_tcp import TUNER_TYPES
from hardware.iq.rtl_tcp_server import RtlTcpReplayServer

__all__ = ["add_arguments", "run"]

_COMMAND_NAMES = {1: "frequency_hz", 2: "sample_rate_hz", 3: "gain_mode", 4: "gain_tenth_db",
                  5: "ppm", 8: "rtl_agc", 14: "bias_tee"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (wired by daemon.cli)."""
    parser.add_argument("file", help="u8 IQ recording (rtl_sdr format)")
    parser.add_argument("--port", type=int, default=1234, help="TCP port (default 1234)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--rate", type=int, default=2_000_000,
                        help="sample rate for pacing until the client sets one (default 2e6)")
    parser.add_argument("--fast", action="store_true",
                        help="send as fast as the client reads instead of in real time")
    parser.add_argument("--once", action="store_true",
                        help="close the connection at the end of the file instead of looping")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 2 when the file or port is not usable."""
    try:
        server = RtlTcpReplayServer(args.file, host=args.host, port=args.port,
                                    realtime=not args.fast, sample_rate_hz=args.rate,
                                    loop=not args.once, resume=False)
    except (OSError, ValueError) as exc:
        print(f"rtl-tcp-replay: {exc}", file=sys.stderr)
        return 2
    print(f"serving {args.file} on {server.url} "
          f"({'as fast as read' if args.fast else 'real time'}, tuner "
          f"{TUNER_TYPES[server.tuner_type]}); Ctrl-C stops", file=sys.stderr)
    server.start()
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            new = server.commands_since(seen)
            for cmd in new:
                name = _COMMAND_NAMES.get(cmd.command, f"command 0x{cmd.command:02x}")
                print(f"client {cmd.connection}: {name} = {cmd.value}", file=sys.stderr)
            seen += len(new)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
