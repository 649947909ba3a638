"""`geosensord view`: serve the live web map of the streams.

geosensord view [--config PATH] [--listen 127.0.0.1:8080] [--minutes 60]
                [--url REDIS_URL] [--tiles URL_TEMPLATE] [--max-cells 1000]

Defaults come from the config's ``[view]`` table; the flags override it. Needs the
optional dependencies: ``pip install 'geosensord[view]'`` (starlette, uvicorn).
Without the daemon running, its embedded Redis is started just for reading, as
`geosensord tail` does.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

from daemon.health import parse_listen

VIEW_DEPENDENCIES = ("starlette", "uvicorn")
INSTALL_HINT = (
    "geosensord view needs the viewer's web libraries: "
    "pip install 'geosensord[view]'  (or: pip install starlette uvicorn)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `view` command's options."""
    from daemon.cli import default_config_path

    parser.add_argument("--config", default=default_config_path(), help="config file (TOML)")
    parser.add_argument(
        "--listen",
        help="HOST:PORT to serve the page on ([view] listen; default 127.0.0.1:8080, "
        "localhost only)",
    )
    parser.add_argument("--url", help="Redis URL (default: from the config)")
    parser.add_argument(
        "--minutes",
        type=float,
        help="backfill: show the last N minutes of the streams on load ([view] minutes, 60)",
    )
    parser.add_argument(
        "--max-backfill",
        type=int,
        help="at most this many events per backfill ([view] max_backfill, 20000)",
    )
    parser.add_argument(
        "--max-cells",
        type=int,
        help="regions needing more per-cell streams read the global stream "
        "([view] max_cells, 1000)",
    )
    parser.add_argument(
        "--tiles",
        help="optional map tile URL template ({z}/{x}/{y}) ([view] tiles; default: the "
        "bundled outline only)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def view_options(args: argparse.Namespace, table: dict[str, Any]) -> dict[str, Any]:
    """The viewer's settings: each of the `[view]` table's keys from its flag
    (``--max-cells`` for ``max_cells``) when given, else from the table."""
    return {
        key: value if (value := getattr(args, key, None)) is not None else default
        for key, default in table.items()
    }


def missing_dependencies() -> list[str]:
    """The viewer's optional dependencies that are not installed."""
    return [name for name in VIEW_DEPENDENCIES if importlib.util.find_spec(name) is None]


def run(args: argparse.Namespace) -> int:
    """Serve the viewer until interrupted; 1 when it cannot start, 2 for a bad config."""
    from daemon.cli import EXIT_CONFIG, load_or_report, setup_logging

    missing = missing_dependencies()
    if missing:
        print(f"{INSTALL_HINT}\nmissing: {', '.join(missing)}", file=sys.stderr)
        return 1
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    chosen = view_options(args, config.view)
    try:
        host, port = parse_listen(chosen["listen"])
    except ValueError as exc:
        print(f"view: --listen: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(args.log_level or str(config.log["level"]))

    import uvicorn

    from daemon.runtime import redis_options, start_embedded
    from daemon.viewer.app import ViewerSettings, create_app
    from sinks.redis_connection import RedisOptions

    embedded = None if args.url else start_embedded(config, attach=True)
    try:
        options = RedisOptions(url=args.url) if args.url else redis_options(config, embedded)
        settings = ViewerSettings.from_config(
            config,
            backfill_min=float(chosen["minutes"]),
            max_backfill=int(chosen["max_backfill"]),
            max_cells=int(chosen["max_cells"]),
            tiles_url=str(chosen["tiles"]),
        )
        app = create_app(settings, options)
        print(
            f"geosensord view: http://{host}:{port}/ (redis {options.display_url})",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=(args.log_level or "warning"),
            timeout_graceful_shutdown=2,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0
