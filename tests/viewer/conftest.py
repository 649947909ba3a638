"""Viewer fixtures: a config on the fixture Redis, a publisher, and viewers to start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_proc import RedisProcess
from viewer_harness import NO_VIEW_DEPS, Publisher, ViewerServer, write_config

from daemon.config import Config, load_config
from daemon.runtime import open_runtime
from sinks.redis_connection import RedisOptions

try:
    from daemon.viewer.app import ViewerSettings
except ImportError:  # the optional `view` extra is not installed
    ViewerSettings = None  # type: ignore[assignment,misc]


@pytest.fixture
def published_env(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[Config, Publisher]]:
    """A config for the fixture Redis and a publisher through the real pipeline."""
    config = load_config(write_config(tmp_path, redis_server.url))
    with open_runtime(config) as rt:
        yield config, Publisher(rt)


@pytest.fixture
def viewer_factory(
    published_env: tuple[Config, Publisher],
) -> Iterator[Callable[..., ViewerServer]]:
    """Start viewers on the published config (settings can be overridden)."""
    if ViewerSettings is None:
        pytest.skip(NO_VIEW_DEPS)
    config, _ = published_env
    started: list[ViewerServer] = []

    def start(**overrides: Any) -> ViewerServer:
        settings = ViewerSettings.from_config(config, **overrides)
        options = RedisOptions(url=str(config.redis["url"]))
        server = ViewerServer(settings, options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
