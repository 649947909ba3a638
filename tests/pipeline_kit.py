"""The daemon's write path as tests build it: encoder -> Redis Streams sink -> pipeline.

    emit(Event) ─► Pipeline (queue, batches, optional spool)
                     ─► EntryEncoder (S2 tokens at INDEX_LEVELS, cell streams at
                        CELL_STREAM_LEVEL) ─► RedisStreamsSink ─► redis-server

The same levels as the daemon's defaults, so stream keys and entries look as they do
in production. Extra keyword arguments go to `Pipeline` (spool, batch sizes, …).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.encode import EntryEncoder
from daemon.metrics import Metrics
from daemon.pipeline import Pipeline
from daemon.s2index import S2Indexer
from daemon.sequence import SequenceStore
from sinks.redis_connection import RedisOptions
from sinks.redis_streams import RedisStreamsSink

INDEX_LEVELS = (6, 10, 14)
CELL_STREAM_LEVEL = 8


def nothing_committed(producer: str) -> int:
    """A committed-offset lookup that never asks Redis (it may be down on purpose)."""
    return 0


def encoder() -> EntryEncoder:
    """An encoder at the daemon's default S2 levels."""
    return EntryEncoder(S2Indexer(INDEX_LEVELS, CELL_STREAM_LEVEL))


def redis_pipeline(
    url: str,
    seq_path: Path,
    metrics: Metrics,
    *,
    committed: Callable[[str], int] | None = None,
    socket_timeout_s: float | None = None,
    **pipeline_kwargs: Any,
) -> tuple[Pipeline, RedisStreamsSink]:
    """A pipeline (not started) writing to the Redis at `url`, and its sink.

    Sequences persist in `seq_path`; `committed` is the producer offset lookup (None:
    the sink's committed offset, as the daemon does). `socket_timeout_s` None keeps
    RedisOptions' default.
    """
    enc = encoder()
    options = (RedisOptions(url) if socket_timeout_s is None
               else RedisOptions(url, socket_timeout_s=socket_timeout_s))
    sink = RedisStreamsSink(options, field_names=enc.field_names)
    seqs = SequenceStore(seq_path, committed=committed or sink.committed_offset)
    return Pipeline(enc, sink, seqs, metrics, **pipeline_kwargs), sink
