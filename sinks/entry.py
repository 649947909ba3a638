"""The encoded form of one event as sinks receive it."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, Protocol


class RecordSource(Protocol):
    """Something that can give an event's JSON-lines record (e.g. `daemon.event.Event`)."""

    def to_record(self) -> dict[str, Any]: ...


class StreamEntry:
    """One event, encoded for output; immutable.

    `values` are the stream-entry field values in the order of the sink's field
    names (design §2: every entry has the same names in the same order).
    `producer`/`seq` drive idempotent writes; `memo` is (field, value) to record in
    the producer's memo hash atomically with the write.

    `record` is the event's JSON form (what the jsonl sink writes and the spool
    stores). It is given either as the dict itself or as a `RecordSource` (the
    Event) and then built on each access: most entries go only to Redis, which never
    reads it, so the pipeline does not pay for a dict per event (issue 8).
    `record_source` is what was given.
    """

    __slots__ = ("cell", "memo", "producer", "record_source", "seq", "src", "values")

    producer: str
    seq: int
    src: str
    cell: str
    values: tuple[str, ...]
    record_source: dict[str, Any] | RecordSource
    memo: tuple[str, str] | None

    def __init__(
        self,
        producer: str,
        seq: int,
        src: str,
        cell: str,
        values: tuple[str, ...],
        record: dict[str, Any] | RecordSource,
        memo: tuple[str, str] | None = None,
    ) -> None:
        # Frozen: fields are set once here, through object.__setattr__ (as a frozen
        # dataclass does); daemon.encode sets them column-wise through the slots.
        init = object.__setattr__
        init(self, "producer", producer)
        init(self, "seq", seq)
        init(self, "src", src)
        init(self, "cell", cell)
        init(self, "values", values)
        init(self, "record_source", record)
        init(self, "memo", memo)

    @property
    def record(self) -> dict[str, Any]:
        """The event's JSON-lines record (a new dict per access when built from an event)."""
        source = self.record_source
        return source if isinstance(source, dict) else source.to_record()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return (self.producer, self.seq, self.src, self.cell, self.values, self.record, self.memo)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is, `record` by value however it was given."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, StreamEntry)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable dict inside, as before

    def __repr__(self) -> str:
        return (
            f"StreamEntry(producer={self.producer!r}, seq={self.seq!r}, src={self.src!r}, "
            f"cell={self.cell!r}, values={self.values!r}, record={self.record!r}, "
            f"memo={self.memo!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # __setattr__ refuses, so pickling/copying goes through __init__.
        return (
            StreamEntry,
            (self.producer, self.seq, self.src, self.cell, self.values, self.record, self.memo),
        )
