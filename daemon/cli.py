"""The `geosensord` command line (also `python -m daemon`).

geosensord run [--config PATH] [--once]
geosensord check-config PATH
geosensord tail [--config PATH] [--stream KEY | --src NAME | --region LAT,LON,KM]
                [--count N] [--follow] [--json]
geosensord backfill usgs --since DATE [...]
geosensord decode adsb FILE [--rate R] [--format raw|json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.config import Config, ConfigErrors, load_config

EXIT_CONFIG = 2

# Commands that live in their own modules: (group, name) -> module with
# add_arguments(parser) and run(args) -> int.
TOP_COMMANDS: dict[str, tuple[str, str]] = {
    "rtl-tcp-replay": ("daemon.commands.rtl_tcp_replay", "serve an IQ recording over rtl_tcp"),
    "devices": ("daemon.commands.devices", "list RTL-SDR dongles and serial ports"),
    "view": ("daemon.commands.view", "serve the live web map of the streams"),
}
PLUGGED_COMMANDS: dict[tuple[str, str], tuple[str, str]] = {
    ("backfill", "usgs"): ("daemon.commands.backfill_usgs", "backfill USGS events from FDSN"),
    ("decode", "adsb"): ("daemon.commands.decode_adsb", "decode Mode S from an IQ recording"),
    ("decode", "rs41"): ("daemon.commands.decode_rs41", "decode RS41 frames from audio or IQ"),
    ("bench", "sink"): ("daemon.commands.bench", "pipeline + sink throughput vs raw XADD"),
    ("bench", "cluster"): (
        "daemon.commands.bench_cluster",
        "N stations into a Redis Cluster: events/s per shard, cell spread",
    ),
}


def default_config_path() -> str:
    """$GEOSENSORD_CONFIG, else /etc/geosensord/config.toml if present, else ./config.toml."""
    env = os.environ.get("GEOSENSORD_CONFIG")
    if env:
        return env
    system = Path("/etc/geosensord/config.toml")
    return str(system) if system.exists() else "config.toml"


def load_or_report(path: str) -> Config | None:
    """Load a config, printing every problem to stderr; None when invalid."""
    try:
        return load_config(path)
    except FileNotFoundError:
        print(f"{path}: no such file", file=sys.stderr)
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(str(err), file=sys.stderr)
    return None


def setup_logging(level: str) -> None:
    """Log to stderr; under systemd the journal adds the timestamps."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=getattr(logging, level.upper()), format=fmt, stream=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file: exit 0 when valid, 2 otherwise."""
    from daemon.runtime import read_password

    config = load_or_report(args.path)
    if config is None:
        return EXIT_CONFIG
    try:
        read_password(config)  # a missing or world-readable password file fails here too
    except ConfigErrors as exc:
        for err in exc.errors:
            print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.path}: ok ({len(config.sources)} sources, {len(config.sinks)} sinks)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until stopped (or one pass with --once)."""
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    setup_logging(args.log_level or str(config.log["level"]))
    from daemon.service import run_service

    return run_service(config, once=args.once)


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the latest entries of a stream, a source, or a region; --follow for new ones."""
    from daemon.runtime import redis_options, start_embedded

    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    # Without the daemon running, its embedded Redis is started just for reading.
    embedded = None if args.url else start_embedded(config, attach=True)
    options = redis_options(config, embedded)
    if args.url:
        options = type(options)(url=args.url)
    client = options.client()
    try:
        return _tail(args, config, client, options)
    finally:
        if embedded is not None:
            embedded.stop()


def _tail(args: argparse.Namespace, config: Config, client: Any, options: Any) -> int:
    from daemon.consumer import Region, StreamReader

    streams = config.streams
    reader = StreamReader(client, str(streams["prefix"]), int(streams["cell_stream_level"]))
    region = None
    try:
        if args.region:
            region = Region.parse(args.region)
            keys = reader.region_keys(region)
            records = reader.latest_region(region, args.count)
        else:
            key = args.stream or (reader.keys.source(args.src) if args.src else reader.keys.events)
            keys = [key]
            records = reader.latest(key, args.count)
        for rec in records:
            _print_record(rec, args.json)
        if args.follow:
            for rec in reader.follow(keys, region=region):
                _print_record(rec, args.json)
    except ValueError as exc:
        print(f"tail: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # redis errors: report without a traceback or secrets
        from sinks.redis_connection import redact

        print(
            f"tail: {options.display_url}: {redact(str(exc), (options.password,))}", file=sys.stderr
        )
        return 1
    return 0


def _print_record(rec: object, as_json: bool) -> None:
    from daemon.consumer import StreamRecord

    assert isinstance(rec, StreamRecord)
    if as_json:
        print(json.dumps(rec.as_json(), separators=(",", ":")), flush=True)
        return
    f = rec.fields
    alt = f"{float(f['alt']):.0f}m" if f.get("alt") else "-"
    print(
        f"{rec.entry_id} {f.get('kind', '?'):18} {f.get('lat')},{f.get('lon')} {alt} "
        f"{f.get('id')} {f.get('data', '')}",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="geosensord",
        description="Geospatial sensor and event ingestion into Redis Streams.",
    )
    parser.add_argument("--version", action="version", version=f"geosensord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", default=default_config_path(), help="config file (TOML)")
    p.add_argument(
        "--once",
        action="store_true",
        help="each source does one pass, the pipeline drains, then exit",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file (exit 2 when invalid)")
    p.add_argument("path", nargs="?", default=default_config_path())
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("tail", help="print entries of a stream, a source or a region")
    p.add_argument("--config", default=default_config_path())
    p.add_argument("--url", help="Redis URL (default: from the config)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--stream", help="a stream key, e.g. geo:events")
    what.add_argument("--src", help="a source name (reads <prefix>:src:<name>)")
    what.add_argument("--region", help="LAT,LON,RADIUS_KM: read the covering per-cell streams")
    p.add_argument("--count", type=int, default=20, help="how many recent entries (default 20)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new entries")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_tail)

    for name, (module_name, help_text) in TOP_COMMANDS.items():
        _plug(sub.add_parser(name, help=help_text), module_name, name)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for (group, name), (module_name, help_text) in PLUGGED_COMMANDS.items():
        if group not in groups:
            gp = sub.add_parser(group, help=f"{group} commands")
            groups[group] = gp.add_subparsers(dest=f"{group}_command", required=True)
        _plug(groups[group].add_parser(name, help=help_text), module_name, f"{group} {name}")
    return parser


def _plug(parser: argparse.ArgumentParser, module_name: str, what: str) -> None:
    """Let a command module fill in its parser; report it when it cannot be imported."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        parser.set_defaults(func=_unavailable(what, exc))
        return
    module.add_arguments(parser)
    parser.set_defaults(func=module.run)


def _unavailable(what: str, exc: ImportError) -> object:
    def run(args: argparse.Namespace) -> int:
        print(f"geosensord {what} is not available: {exc}", file=sys.stderr)
        return 1

    return run


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--region -33.9,151.2,50`: argparse would take the value for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--region" and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"--region={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `geosensord` console script."""
    args = build_parser().parse_args(
        _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
