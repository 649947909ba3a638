"""Turns Events into stream entries (design §2): S2 tokens plus flat string fields.

A batch is encoded column by column: the S2 tokens of all its points in one numpy
pass (`daemon.s2vec`), then each string field as one C-level `map` over its column,
and the entries' value tuples by one `zip`. The float columns and the JSON of `data`
are written by msgspec for the whole column at once (newline-delimited) when
their types and magnitudes are ones for which its text is the reference's (repr,
json.dumps); any other column is written the reference way (`_float_column`,
`_json_column`). The only Python code per event left is the alt/alt_ref case
(issue 8: per-event cost).

Entry values, in `field_names` order (every value a str)::

    v        "1"                       contract version
    id src kind station                as given
    t rx     str(int)                  epoch ms
    lat lon  repr(float)               shortest round-trip decimal, e.g. "48.1375"
    alt      repr(float) or ""         "" when the event has no altitude
    s2       leaf token (16 hex digits)
    s2_<L>   token of the level-L parent, one per index level
    data     compact JSON of the event's data (UTF-8 as is, no NaN); when alt is
             set, {"alt_ref": …} comes first
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from types import MemberDescriptorType
from typing import Any, Protocol

import msgspec
import numpy as np

from daemon.event import Event
from daemon.s2index import S2Indexer
from daemon.s2vec import BatchCells, batch_cells
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


def _json_encoder() -> Callable[[Any], str]:
    """Compact JSON text of one value, exactly as
    ``json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``.

    json.dumps with options builds a new JSONEncoder per call; calling the C encoder
    it would build directly saves about a third of the cost per event. Circular data
    (impossible from JSON or our sources) then recurses instead of being detected.
    """
    reference = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    make_c = getattr(json.encoder, "c_make_encoder", None)
    if make_c is None:  # an interpreter without the _json accelerator
        return reference.encode
    c_encode = make_c(
        None, reference.default, json.encoder.encode_basestring, None, ":", ",",
        False, False, False,
    )
    join = "".join

    def encode(value: Any) -> str:
        if isinstance(value, str):  # the C encoder only takes containers at the top
            return reference.encode(value)
        return join(c_encode(value, 0))

    return encode


_to_json = _json_encoder()

_lines = msgspec.json.Encoder().encode_lines  # newline-delimited JSON of a list, in C
_JSON_PLAIN = frozenset({str, int, bool, type(None), float})


def _floats_like_repr(values: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    """Whether msgspec writes each of these floats exactly as repr() does.

    Both write the shortest round-trip digits; they differ only in exponent notation
    (msgspec "1e16", "1e-9"; repr "1e+16", "1e-09"), which repr uses from 1e16 up and
    below 1e-4, where msgspec also writes the 1e-5 decade fixed ("0.0000367"), and
    for NaN and infinities (msgspec null).
    """
    mag = np.abs(values)
    return bool(np.all((mag == 0.0) | ((mag >= 1e-4) & (mag < 1e16))))


def _float_column(values: list[float]) -> list[str]:
    """``repr(float(v))`` of every value (a float column: lat, lon, alt)."""
    floats = list(map(float, values))
    if _floats_like_repr(np.array(floats, dtype=np.float64)):
        return _lines(floats).decode().split("\n")[:-1]
    return list(map(repr, floats))


def _json_column(datas: list[Any]) -> list[str]:
    """``json.dumps(d, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
    of every value; raises ValueError/TypeError/OverflowError like it.

    msgspec writes the whole column when every value is a flat dict (str keys;
    values exactly str, int, bool, None or a float it writes as repr does): for
    those its text is json.dumps's (tests check every code point's escaping). Any
    other batch (nested values, tuples, subclasses, NaN…) is written the reference
    way, event by event.
    """
    try:
        values = list(chain.from_iterable(map(dict.values, datas)))
        plain = set(map(type, chain.from_iterable(datas))) <= {str} and (
            set(map(type, values)) <= _JSON_PLAIN
        )
        # Exact types were checked above, so isinstance picks exactly the floats.
        if plain and _floats_like_repr(
            np.array(list(filter(float.__instancecheck__, values)), dtype=np.float64)
        ):
            return _lines(datas).decode().split("\n")[:-1]
    except (TypeError, ValueError, msgspec.MsgspecError):  # not dicts, lone surrogates
        pass
    return list(map(_to_json, datas))


def _entry_builder() -> Callable[..., list[StreamEntry]]:
    """Builds StreamEntry objects from columns (producer, seq, src, cell, values,
    record_source, memo), in that order.

    StreamEntry.__init__ sets every field through object.__setattr__ (it is frozen):
    about two thirds of the cost of an entry. The slot descriptors instead set one
    field of every entry per C-level map. That is only the same thing while
    StreamEntry has exactly these slots (checked once, here); otherwise entries are
    built through __init__.
    """

    def through_init(*columns: Any) -> list[StreamEntry]:
        return list(map(StreamEntry, *columns))

    names = ("producer", "seq", "src", "cell", "values", "record_source", "memo")
    descriptors = [StreamEntry.__dict__.get(name) for name in names]
    if set(StreamEntry.__slots__) != set(names) or not all(
        isinstance(d, MemberDescriptorType) for d in descriptors
    ):
        return through_init
    setters = [d.__set__ for d in descriptors if isinstance(d, MemberDescriptorType)]
    new = object.__new__

    def through_slots(*columns: Any) -> list[StreamEntry]:
        entries: list[StreamEntry] = list(map(new, repeat(StreamEntry, len(columns[0]))))
        for set_field, column in zip(setters, columns, strict=True):
            deque(map(set_field, entries, column), maxlen=0)  # runs the map, keeps nothing
        return entries

    return through_slots


_build_entries = _entry_builder()


class SequencedEvent(Protocol):
    """What the encoder reads of a queued event: `daemon.event.Sequenced`, or the
    pipeline's lighter queue item with the same attributes."""

    @property
    def producer(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def event(self) -> Event: ...

    @property
    def memo(self) -> tuple[str, str] | None: ...


class EntryEncoder:
    """Encodes batches of sequenced events for the sinks."""

    def __init__(self, indexer: S2Indexer) -> None:
        self.indexer = indexer
        self.field_names = field_names(indexer.index_levels)

    def locate(self, events: Sequence[Event]) -> BatchCells:
        """The S2 tokens of every event (the S2 step, vectorized over the batch)."""
        n = len(events)
        lat_deg = np.fromiter((ev.lat for ev in events), dtype=np.float64, count=n)
        lon_deg = np.fromiter((ev.lon for ev in events), dtype=np.float64, count=n)
        return batch_cells(
            lat_deg, lon_deg, self.indexer.index_levels, self.indexer.cell_stream_level
        )

    def encode(self, batch: Sequence[SequencedEvent]) -> list[StreamEntry]:
        """One StreamEntry per event, in batch order."""
        events = [item.event for item in batch]
        return self.encode_located(batch, events, self.locate(events))

    @staticmethod
    def _with_alt_ref(
        events: Sequence[Event], alts: list[float | None], data_json: list[str]
    ) -> list[str]:
        """The data JSON of events with an altitude: ``{"alt_ref": …, **data}``.

        Spliced into the text already written (``{"alt_ref":"msl",`` + the rest)
        rather than a merged dict encoded again; an event whose data has its own
        alt_ref keeps that value in first place, as the merged dict gives.
        """
        heads = {ref: '{"alt_ref":' + _to_json(ref) for ref in {ev.alt_ref for ev in events}}
        return [
            text if alt is None
            else _to_json({"alt_ref": ev.alt_ref, **ev.data}) if "alt_ref" in ev.data
            else heads[ev.alt_ref] + ("}" if text == "{}" else "," + text[1:])
            for ev, alt, text in zip(events, alts, data_json, strict=True)
        ]

    def encode_located(
        self, batch: Sequence[SequencedEvent], events: Sequence[Event], cells: BatchCells
    ) -> list[StreamEntry]:
        """The encode step: entries for `batch` whose events and S2 tokens are known."""
        if not batch:
            return []
        alts = [ev.alt for ev in events]
        srcs = [ev.src for ev in events]
        data_json = _json_column([ev.data for ev in events])
        if alts.count(None) != len(alts):
            data_json = self._with_alt_ref(events, alts, data_json)
        if None in alts:
            alt_text = _float_column([0.0 if alt is None else alt for alt in alts])
            alt_text = ["" if alt is None else t for alt, t in zip(alts, alt_text, strict=True)]
        else:
            alt_text = _float_column(alts)  # type: ignore[arg-type]  # no None in it
        values = list(
            zip(
                repeat(CONTRACT_VERSION),
                [ev.id for ev in events],
                srcs,
                [ev.kind for ev in events],
                map(str, [ev.t for ev in events]),
                map(str, [ev.rx for ev in events]),
                # float() first: an int latitude is written as "45.0", like repr(float).
                _float_column([ev.lat for ev in events]),
                _float_column([ev.lon for ev in events]),
                alt_text,
                [ev.station for ev in events],
                cells.leaf,
                *cells.levels,
                data_json,
                strict=False,  # repeat() is endless; every other column has len(batch)
            )
        )
        return _build_entries(
            [item.producer for item in batch],
            [item.seq for item in batch],
            srcs,
            cells.stream,
            values,
            events,  # the record is built from the event if a sink asks for it
            [item.memo for item in batch],
        )
