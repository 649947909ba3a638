"""The column-wise batch encoder equals the per-event encoder it replaced (issue 8).

`reference_encode` below is the previous `EntryEncoder.encode`, kept verbatim as the
oracle: s2sphere per point, `json.dumps` per event. Every StreamEntry the batch
encoder builds must be equal to it, field for field, on batches that mix what the
per-event code special-cased (no altitude, integer coordinates, non-ASCII and
escaped JSON, alt_ref already in data, memos, several producers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.encode import CONTRACT_VERSION, EntryEncoder
from daemon.event import Event, Sequenced
from daemon.s2index import S2Indexer
from sinks.entry import StreamEntry

LEVEL_SETS = [((6, 10, 14), 8), ((0, 30), 30), ((), 0), ((3, 9, 12, 15, 21), 11)]


def reference_encode(indexer: S2Indexer, batch: Sequence[Sequenced]) -> list[StreamEntry]:
    """The per-event encoder before issue 8 (the oracle)."""
    out = []
    for item in batch:
        ev = item.event
        cells = indexer.tokens(ev.lat, ev.lon)
        data = {"alt_ref": ev.alt_ref, **ev.data} if ev.alt is not None else ev.data
        values = (
            CONTRACT_VERSION,
            ev.id,
            ev.src,
            ev.kind,
            str(ev.t),
            str(ev.rx),
            repr(float(ev.lat)),
            repr(float(ev.lon)),
            "" if ev.alt is None else repr(float(ev.alt)),
            ev.station,
            cells.leaf,
            *cells.levels,
            json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
        )
        out.append(
            StreamEntry(
                producer=item.producer,
                seq=item.seq,
                src=ev.src,
                cell=cells.stream,
                values=values,
                record=ev.to_record(),
                memo=item.memo,
            )
        )
    return out


def varied_batch(n: int, seed: int) -> list[Sequenced]:
    """Events that exercise every branch of the per-event encoder."""
    rng = random.Random(seed)
    datas: list[dict[Any, Any]] = [
        {},
        {"icao": "4840d6", "speed_mps": 231.5, "track_deg": 87.25, "vrate_mps": -3.2},
        {"place": "Ñuñoa, Chile — 12 km ☃", "quote": 'say "hi"\\', "ctl": "a\nb\t\x01"},
        {"alt_ref": "overridden", "x": 1},
        {"nested": {"a": [1, 2.5, None, True, False], "b": {"c": "d"}}, "big": 2**70},
        {"tiny": 1e-05, "huge": 1e16, "neg0": -0.0, "exp": 1.5e300, "min": 5e-324},
        {"tuple": (1, 2), 3: "int key", "emoji": "😀"},
    ]
    kinds = ["aircraft.position", "quake", "sensor.reading"]
    out = []
    for i in range(n):
        lat: float = rng.uniform(-90.0, 90.0)
        lon: float = rng.uniform(-180.0, 180.0)
        if i % 11 == 0:
            lat, lon = int(lat), int(lon)  # ints are legal Event coordinates
        alt = None if i % 3 == 0 else rng.choice([rng.uniform(-500, 40_000), 0, 12, 1e-7])
        ev = Event(
            id=f"t:{i}", src=f"src{i % 3}", kind=kinds[i % 3], t=1_700_000_000_000 + i,
            rx=1_700_000_000_123 + i, lat=lat, lon=lon, alt=alt, station=f"st-{i % 2}",
            data=datas[i % len(datas)], alt_ref=rng.choice(["msl", "ellipsoid", "depth"]),
        )
        memo = (ev.id, str(ev.t)) if i % 5 == 0 else None
        out.append(Sequenced(f"p{i % 4}", 10 + i, ev, memo))
    return out


@pytest.mark.parametrize(("levels", "stream_level"), LEVEL_SETS, ids=str)
def test_batch_encoder_equals_the_per_event_encoder(
    levels: tuple[int, ...], stream_level: int
) -> None:
    indexer = S2Indexer(levels, stream_level)
    batch = varied_batch(400, seed=len(levels))
    got = EntryEncoder(indexer).encode(batch)
    want = reference_encode(indexer, batch)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w
        assert len(g.values) == len(EntryEncoder(indexer).field_names)


@settings(max_examples=40, deadline=None)
@given(
    points=st.lists(
        st.tuples(
            st.floats(-90.0, 90.0, allow_nan=False),
            st.floats(-180.0, 180.0, allow_nan=False),
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            st.dictionaries(
                st.text(max_size=5),
                st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                          st.text(max_size=8), st.none(), st.booleans()),
                max_size=4,
            ),
        ),
        max_size=30,
    )
)
def test_random_batches_encode_like_the_per_event_encoder(
    points: list[tuple[float, float, float | None, dict[str, Any]]],
) -> None:
    indexer = S2Indexer((6, 10, 14), 8)
    batch = [
        Sequenced("p", i + 1, Event(id=f"h:{i}", src="h", kind="k", t=i, rx=i, lat=lat,
                                    lon=lon, alt=alt, station="s", data=data))
        for i, (lat, lon, alt, data) in enumerate(points)
    ]
    assert EntryEncoder(indexer).encode(batch) == reference_encode(indexer, batch)


def test_an_empty_batch_encodes_to_nothing() -> None:
    assert EntryEncoder(S2Indexer((6,), 8)).encode([]) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_data_is_refused_as_before(bad: float) -> None:
    indexer = S2Indexer((6,), 8)
    batch = [Sequenced("p", 1, Event(id="x", src="s", kind="k", t=1, rx=1, lat=1.0, lon=2.0,
                                     alt=None, station="s", data={"v": bad}))]
    with pytest.raises(ValueError):
        reference_encode(indexer, batch)
    with pytest.raises(ValueError):
        EntryEncoder(indexer).encode(batch)


def test_unencodable_data_is_refused_as_before() -> None:
    indexer = S2Indexer((6,), 8)
    batch = [Sequenced("p", 1, Event(id="x", src="s", kind="k", t=1, rx=1, lat=1.0, lon=2.0,
                                     alt=None, station="s", data={"v": object()}))]
    with pytest.raises(TypeError):
        reference_encode(indexer, batch)
    with pytest.raises(TypeError):
        EntryEncoder(indexer).encode(batch)


def test_entries_built_column_wise_are_ordinary_frozen_entries() -> None:
    indexer = S2Indexer((6, 10, 14), 8)
    batch = varied_batch(20, seed=9)
    got = EntryEncoder(indexer).encode(batch)
    want = reference_encode(indexer, batch)
    assert [repr(g) for g in got] == [repr(w) for w in want]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[0].seq = 99  # type: ignore[misc]
