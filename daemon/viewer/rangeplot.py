"""ADS-B receiver range outline: the farthest position per 5° of bearing.

As tar1090's range outline: for each bearing sector from the receiver (72
sectors of 5°, sector 0 = [0°, 5°) clockwise from true north) the farthest
position seen, over the last 24 h and over all time. The outline polygon joins
those positions in bearing order, so station owners see where their antenna
hears and where terrain or cable loss cuts it short.

The 24 h value of a sector is a sliding-window maximum: each sector keeps a deque
of (t_ms, distance) whose distances strictly decrease from front to back; a new
point drops the entries behind it that it beats, and entries older than the
window fall off the front. Every point enters and leaves once (amortised O(1)).

State file (JSON, written atomically) keeps the all-time outline across restarts::

    {"v": 1, "receiver": [lat, lon],
     "all_time": [[sector, dist_km, lat, lon, t_ms], ...]}
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.s2index import distance_km

SECTOR_DEG = 5.0
SECTORS = int(360 / SECTOR_DEG)
DAY_MS = 24 * 3600 * 1000


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


@dataclass(frozen=True, slots=True)
class RangePoint:
    """One position on the outline: distance (km) from the receiver, where and when."""

    dist_km: float
    lat: float
    lon: float
    t_ms: int


class RangeOutline:
    """The farthest position per bearing sector, 24 h window and all time."""

    def __init__(self, receiver_lat: float, receiver_lon: float, window_ms: int = DAY_MS) -> None:
        self.receiver_lat = receiver_lat
        self.receiver_lon = receiver_lon
        self.window_ms = window_ms
        self.all_time: list[RangePoint | None] = [None] * SECTORS
        self._window: list[deque[RangePoint]] = [deque() for _ in range(SECTORS)]

    def sector(self, lat: float, lon: float) -> int:
        """The bearing sector (0..71) of a position seen from the receiver."""
        b = bearing_deg(self.receiver_lat, self.receiver_lon, lat, lon)
        return min(int(b // SECTOR_DEG), SECTORS - 1)

    def add(self, lat: float, lon: float, t_ms: int) -> None:
        """Account one aircraft position (degrees, event time in epoch ms)."""
        dist = distance_km(self.receiver_lat, self.receiver_lon, lat, lon)
        if dist <= 0.0:
            return  # at the receiver: no bearing
        s = self.sector(lat, lon)
        point = RangePoint(dist, lat, lon, t_ms)
        best = self.all_time[s]
        if best is None or dist > best.dist_km:
            self.all_time[s] = point
        window = self._window[s]
        while window and window[-1].dist_km <= dist:
            window.pop()
        window.append(point)

    def last_window(self, now_ms: int) -> list[RangePoint | None]:
        """Per sector, the farthest position with t > now - window (None when none)."""
        out: list[RangePoint | None] = []
        for window in self._window:
            while window and window[0].t_ms <= now_ms - self.window_ms:
                window.popleft()
            out.append(window[0] if window else None)
        return out

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """The outline for the browser: receiver, sector size, 24 h and all-time points."""

        def rows(points: list[RangePoint | None]) -> list[list[float] | None]:
            return [
                None if p is None else [round(p.dist_km, 3), p.lat, p.lon, p.t_ms] for p in points
            ]

        day = self.last_window(now_ms)
        return {
            "receiver": [self.receiver_lat, self.receiver_lon],
            "sector_deg": SECTOR_DEG,
            "last_24h": rows(day),
            "all_time": rows(self.all_time),
            "max_24h_km": max((p.dist_km for p in day if p), default=0.0),
            "max_all_km": max((p.dist_km for p in self.all_time if p), default=0.0),
        }

    def save(self, path: Path) -> None:
        """Write the all-time outline (atomically: temp file and rename)."""
        rows = [
            [s, p.dist_km, p.lat, p.lon, p.t_ms]
            for s, p in enumerate(self.all_time)
            if p is not None
        ]
        doc = {"v": 1, "receiver": [self.receiver_lat, self.receiver_lon], "all_time": rows}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Merge a saved all-time outline; False (and nothing changed) when the file is
        missing, unreadable or saved for another receiver position."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("v") != 1 or doc.get("receiver") != [self.receiver_lat, self.receiver_lon]:
                return False
            saved = [
                (int(s), RangePoint(float(d), float(a), float(o), int(t)))
                for s, d, a, o, t in doc["all_time"]
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        for s, point in saved:
            best = self.all_time[s] if 0 <= s < SECTORS else point
            if 0 <= s < SECTORS and (best is None or point.dist_km > best.dist_km):
                self.all_time[s] = point
        return True
