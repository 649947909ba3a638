"""Counters, gauges and histograms per source and sink, readable as values or in
Prometheus text.

Why not prometheus_client (which issue 7 suggests): the daemon needs counters and
gauges with labels, one histogram and the text exposition format; that is the
hundred lines below, thread-safe under one lock, with no extra runtime dependency
on a Raspberry Pi install, and the same registry feeds systemd's STATUS= line and
/healthz. `prometheus()` writes the text format version 0.0.4 (``# TYPE`` lines,
``name{label="value"} number``, histograms as cumulative ``_bucket{le=…}``,
``_sum`` and ``_count``), which Prometheus and its client's parser read.

Gauges that mirror state owned elsewhere (queue and spool depth, the age of a
source's last event) are refreshed by collectors, callables run just before each
export, so a scrape never shows a stale value.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

Labels = tuple[tuple[str, str], ...]

# Seconds: from a loopback round trip (sub-ms) to a Redis timing out (socket_timeout_s).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


class _Histogram:
    """Cumulative bucket counts plus sum and count of one labelled series."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.total += value
        self.count += 1


class Metrics:
    """A thread-safe registry of named counters and gauges with labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)
        self._collectors: list[Callable[[Metrics], None]] = []

    def inc(self, name: str, n: float = 1, **labels: str) -> None:
        """Add `n` to a counter."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0) + n

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._gauges[name][key] = value

    def set_total(self, name: str, value: float, **labels: str) -> None:
        """Set a counter to `value`, for a count kept (monotonically) by another object."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._counters[name][key] = value

    def observe(
        self,
        name: str,
        value: float,
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
        **labels: str,
    ) -> None:
        """Add one observation (e.g. a latency in seconds) to a histogram."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._histograms[name]
            hist = series.get(key)
            if hist is None:
                hist = series[key] = _Histogram(buckets)
            hist.observe(value)

    def observations(self, name: str, **labels: str) -> tuple[int, float]:
        """(count, sum) of a histogram series ((0, 0.0) if never observed)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            hist = self._histograms.get(name, {}).get(key)
            return (hist.count, hist.total) if hist is not None else (0, 0.0)

    def add_collector(self, collect: Callable[[Metrics], None]) -> None:
        """Run `collect(self)` before every export (it typically calls `set`)."""
        with self._lock:
            self._collectors.append(collect)

    def remove_collector(self, collect: Callable[[Metrics], None]) -> None:
        """Stop running a collector added with `add_collector`."""
        with self._lock:
            if collect in self._collectors:
                self._collectors.remove(collect)

    def collect(self) -> None:
        """Refresh collector-fed gauges now (`prometheus()` does this itself)."""
        with self._lock:
            collectors = list(self._collectors)
        for collect in collectors:
            collect(self)

    def get(self, name: str, **labels: str) -> float:
        """Current value of a counter or gauge (0 if never set)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            if key in self._counters.get(name, {}):
                return self._counters[name][key]
            return self._gauges.get(name, {}).get(key, 0)

    def total(self, name: str) -> float:
        """Sum of a counter over all label sets."""
        with self._lock:
            return sum(self._counters.get(name, {}).values())

    def prometheus(self, namespace: str = "geosensord") -> str:
        """The registry in the Prometheus text exposition format."""
        self.collect()
        lines: list[str] = []
        with self._lock:
            for kind, table in (("counter", self._counters), ("gauge", self._gauges)):
                for name in sorted(table):
                    full = f"{namespace}_{name}"
                    lines.append(f"# TYPE {full} {kind}")
                    for labels, value in sorted(table[name].items()):
                        lines.append(f"{full}{_labels(labels)} {value:g}")
            for name in sorted(self._histograms):
                full = f"{namespace}_{name}"
                lines.append(f"# TYPE {full} histogram")
                for labels, hist in sorted(self._histograms[name].items()):
                    cumulative = 0
                    for bound, n in zip(hist.bounds, hist.counts, strict=True):
                        cumulative += n
                        le = (("le", f"{bound:g}"),)
                        lines.append(f"{full}_bucket{_labels(labels + le)} {cumulative}")
                    inf = (("le", "+Inf"),)
                    lines.append(f"{full}_bucket{_labels(labels + inf)} {hist.count}")
                    lines.append(f"{full}_sum{_labels(labels)} {hist.total:g}")
                    lines.append(f"{full}_count{_labels(labels)} {hist.count}")
        return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
