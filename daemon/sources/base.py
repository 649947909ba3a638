"""The lifecycle every source shares: start -> run until stopped (or one pass) -> stop."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.ratelog import RateLimitedLog


@dataclass(frozen=True)
class Station:
    """The receiving station: its id and location (WGS84 degrees, metres MSL)."""

    id: str
    lat: float
    lon: float
    alt: float = 0.0


@dataclass
class SourceContext:
    """What the daemon gives every source."""

    station: Station
    metrics: Metrics
    state_dir: Path
    config_dir: Path
    memo: Callable[[str], dict[str, str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: str) -> Path:
        """A configured path; relative paths are taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.config_dir / p


class Source(ABC):
    """A configured source instance. Subclasses implement `run`."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.log = logging.getLogger(f"geosensord.source.{name}")
        self.bad_input = RateLimitedLog(self.log)

    @property
    def producer(self) -> str:
        """The key under which this source's sequence and memo are kept."""
        return f"{self.ctx.station.id}:{self.name}"

    @abstractmethod
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Publish events until `stop` is set; with `once`, do one pass and return."""

    def count_bad(self, reason: str, detail: str) -> None:
        """Count a malformed input item by reason and log it at a rate-limited level."""
        self.ctx.metrics.inc("bad_input_total", source=self.name, reason=reason)
        self.bad_input.warning(reason, "%s: skipped %s: %s", self.name, reason, detail)
