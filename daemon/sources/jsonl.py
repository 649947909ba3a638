"""Replays recorded events from a JSON-lines file (what the jsonl sink writes).

Each line is one object with the Event fields ``id, src, kind, t, rx, lat, lon,
alt, station, data`` (and optionally ``alt_ref``). The recorded ``id`` and ``src``
are kept; S2 fields are recomputed. The line number is the event's sequence and
the producer key includes a fingerprint of the file's first line, so replaying
the same file again (or a copy of it) publishes nothing new, while lines appended
later are published. A malformed line is counted and skipped.

Config::

    [sources.replay]
    type = "jsonl"
    path = "recorded.jsonl"   # relative to the config file
    follow = false            # keep reading lines appended to the file
    station = ""              # override the recorded station id ("" keeps it)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from daemon.config import Field, non_empty
from daemon.event import Event, EventError
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext

FIELDS = {
    "path": Field((str,), required=True, check=non_empty),
    "follow": Field((bool,), default=False),
    "station": Field((str,), default=""),
}


class JsonlSource(Source):
    """Publishes the events recorded in a JSON-lines file."""

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Read the file from the start; with `follow`, keep reading appended lines."""
        path = self.ctx.resolve(self.cfg["path"])
        with open(path, "rb") as fh:
            first = fh.readline()
            while not first.endswith(b"\n") and self.cfg["follow"] and not once:
                # The fingerprint needs the whole first line: an empty or half-written
                # file would otherwise get a different producer key after a restart.
                if stop.wait(0.5):
                    return
                fh.seek(0)
                first = fh.readline()
            fingerprint = hashlib.sha1(first).hexdigest()[:12]
            producer = f"{self.producer}:{fingerprint}"
            fh.seek(0)
            line_no = 0
            pending = b""
            while not stop.is_set():
                chunk = fh.readline()
                if not chunk:
                    if once or not self.cfg["follow"]:
                        break
                    time.sleep(0.5)
                    continue
                if not chunk.endswith(b"\n"):
                    # A line still being written; finish it on the next read.
                    pending += chunk
                    if once or not self.cfg["follow"]:
                        chunk, pending = pending, b""
                    else:
                        continue
                else:
                    chunk, pending = pending + chunk, b""
                line_no += 1
                event = self._parse(chunk, line_no)
                if event is not None:
                    emit(event, seq=line_no, producer=producer)
        if not once:
            stop.wait()

    def _parse(self, raw: bytes, line_no: int) -> Event | None:
        text = raw.strip()
        if not text:
            return None
        try:
            rec: Any = json.loads(text)
            if not isinstance(rec, dict):
                raise EventError("record", "not a JSON object")
            if self.cfg["station"]:
                rec["station"] = self.cfg["station"]
            else:
                rec.setdefault("station", self.ctx.station.id)
            return Event.from_record(rec)
        except (ValueError, EventError) as exc:
            self.count_bad("malformed_line", f"line {line_no}: {exc}")
            return None


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> JsonlSource:
    """Factory used by the source registry."""
    return JsonlSource(name, cfg, ctx)
