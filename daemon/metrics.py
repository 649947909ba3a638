"""Counters and gauges per source and sink, readable as a snapshot or in Prometheus text."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """A thread-safe registry of named counters and gauges with labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)

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
        lines: list[str] = []
        with self._lock:
            for kind, table in (("counter", self._counters), ("gauge", self._gauges)):
                for name in sorted(table):
                    full = f"{namespace}_{name}"
                    lines.append(f"# TYPE {full} {kind}")
                    for labels, value in sorted(table[name].items()):
                        body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                        lines.append(f"{full}{{{body}}} {value:g}" if body else f"{full} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
