"""The encoded form of one event as sinks receive it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One event, encoded for output.

    `values` are the stream-entry field values in the order of the sink's field
    names (design §2: every entry has the same names in the same order).
    `producer`/`seq` drive idempotent writes; `memo` is (field, value) to record in
    the producer's memo hash atomically with the write; `record` is the JSON form.
    """

    producer: str
    seq: int
    src: str
    cell: str
    values: tuple[str, ...]
    record: dict[str, Any]
    memo: tuple[str, str] | None = None
