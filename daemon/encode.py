"""Turns Events into stream entries (design §2): S2 tokens plus flat string fields."""

from __future__ import annotations

import json
from collections.abc import Sequence

from daemon.event import Sequenced
from daemon.s2index import S2Indexer
from sinks.entry import StreamEntry

CONTRACT_VERSION = "1"


def field_names(index_levels: Sequence[int]) -> tuple[str, ...]:
    """The stream entry's field names, in their fixed order, for these index levels."""
    return (
        "v",
        "id",
        "src",
        "kind",
        "t",
        "rx",
        "lat",
        "lon",
        "alt",
        "station",
        "s2",
        *(f"s2_{level}" for level in index_levels),
        "data",
    )


class EntryEncoder:
    """Encodes batches of sequenced events for the sinks."""

    def __init__(self, indexer: S2Indexer) -> None:
        self.indexer = indexer
        self.field_names = field_names(indexer.index_levels)

    def encode(self, batch: Sequence[Sequenced]) -> list[StreamEntry]:
        """One StreamEntry per event, S2 tokens computed with the indexer."""
        out = []
        for item in batch:
            ev = item.event
            cells = self.indexer.tokens(ev.lat, ev.lon)
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
