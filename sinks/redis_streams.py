"""The Redis Streams sink: one atomic, idempotent script call per batch.

Keys (prefix `P`, default ``geo``)::

    P:events            every event                       (MAXLEN ~ maxlen)
    P:src:<src>         events of one source              (MAXLEN ~ maxlen)
    P:cell:{<token>}    events in one S2 cell at cell_stream_level (MAXLEN ~ cell_maxlen);
                        braces are a Redis Cluster hash tag
    P:offsets           hash: producer -> highest sequence written
    P:memo:<producer>   hash: what a producer asked to remember (e.g. USGS id -> updated)

Exactly-once: each entry carries (producer, seq) with seq strictly increasing per
producer. The script skips entries whose seq is not above the producer's offset,
XADDs the rest to all their streams, records memos and advances the offsets, all
in one atomic step on the server. Replaying a batch (after a timeout, a crash or
from the spool) therefore writes nothing twice. Limit: Redis's own durability
(AOF ``everysec`` can lose the last second if the Redis host itself crashes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis

from sinks.base import SinkRejected, SinkUnavailable
from sinks.entry import StreamEntry
from sinks.redis_connection import RedisOptions, redact

log = logging.getLogger(__name__)

# KEYS[1] offsets hash; KEYS[2..] the streams and memo hashes the batch touches.
# ARGV: trim mode ("MAXLEN"|"MINID"|""), trim arg for global/src, trim arg for cells,
# key kinds (one letter per KEY: h = hash, s = stream), nfields, field names…, then per entry:
#   producer, seq, memo_key_index (0 = none), memo_field, memo_value,
#   n_keys, key indexes…, cell_key_flags (1 if key uses the cell trim)…, values…
WRITE_BATCH_LUA = """
-- Scripts are not rolled back on error, so refuse up front what would fail midway:
-- a key of the wrong type. (OOM is refused at the first write, before any effect.)
local kinds = ARGV[4]
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  local want = 'stream'
  if string.sub(kinds, i, i) == 'h' then want = 'hash' end
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is a ' .. t .. ', not a ' .. want)
  end
end
local mode = ARGV[1]
local trim_main = ARGV[2]
local trim_cell = ARGV[3]
local nf = tonumber(ARGV[5])
local p = 6 + nf
local offsets = {}
local changed = {}
local mask = {}
while p <= #ARGV do
  local producer = ARGV[p]
  local seq = tonumber(ARGV[p + 1])
  local memo_idx = tonumber(ARGV[p + 2])
  local nk = tonumber(ARGV[p + 5])
  local kstart = p + 6
  local vstart = kstart + 2 * nk
  local off = offsets[producer]
  if off == nil then
    off = tonumber(redis.call('HGET', KEYS[1], producer) or '0')
    offsets[producer] = off
  end
  if seq > off then
    -- The first stream assigns the entry id; the others reuse it, so one event has
    -- one id everywhere and readers can merge streams in publish order.
    local entry_id = '*'
    for k = 0, nk - 1 do
      local args = {KEYS[tonumber(ARGV[kstart + k])]}
      local trim = trim_main
      if ARGV[kstart + nk + k] == '1' then trim = trim_cell end
      if mode ~= '' and trim ~= '0' then
        args[#args + 1] = mode
        args[#args + 1] = '~'
        args[#args + 1] = trim
      end
      local id_pos = #args + 1
      args[id_pos] = entry_id
      for i = 1, nf do
        args[#args + 1] = ARGV[5 + i]
        args[#args + 1] = ARGV[vstart + i - 1]
      end
      local res = redis.pcall('XADD', unpack(args))
      if type(res) == 'table' and res['err'] then
        -- Another writer put a larger id into this stream: take a fresh one there.
        args[id_pos] = '*'
        redis.call('XADD', unpack(args))
      elseif entry_id == '*' then
        entry_id = res
      end
    end
    mask[#mask + 1] = '1'

    if memo_idx > 0 then
      redis.call('HSET', KEYS[memo_idx], ARGV[p + 3], ARGV[p + 4])
    end
    offsets[producer] = seq
    changed[producer] = true
  else
    mask[#mask + 1] = '0'
  end
  p = vstart + nf
end
for producer, _ in pairs(changed) do
  redis.call('HSET', KEYS[1], producer, string.format('%.0f', offsets[producer]))
end
return table.concat(mask)
"""


class StreamKeys:
    """Key names of the stream contract for one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events = f"{prefix}:events"
        self.offsets = f"{prefix}:offsets"

    def source(self, src: str) -> str:
        """The per-source stream."""
        return f"{self.prefix}:src:{src}"

    def cell(self, token: str) -> str:
        """The per-cell stream (hash-tagged by the cell token)."""
        return f"{self.prefix}:cell:{{{token}}}"

    def memo(self, producer: str) -> str:
        """The producer's memo hash."""
        return f"{self.prefix}:memo:{producer}"


class RedisStreamsSink:
    """Writes batches into the contract's streams with one EVALSHA per batch."""

    def __init__(
        self,
        options: RedisOptions,
        field_names: Sequence[str],
        prefix: str = "geo",
        maxlen: int = 1_000_000,
        cell_maxlen: int = 10_000,
        max_age_s: int = 0,
        global_stream: bool = True,
        source_streams: bool = True,
        cell_streams: bool = True,
        name: str = "redis",
    ) -> None:
        self.name = name
        self.options = options
        self.field_names = tuple(field_names)
        self.keys = StreamKeys(prefix)
        self.maxlen = maxlen
        self.cell_maxlen = cell_maxlen
        self.max_age_s = max_age_s
        self.global_stream = global_stream
        self.source_streams = source_streams
        self.cell_streams = cell_streams
        self._client: redis.Redis | None = None
        self._script: Any = None
        self.last_written: list[bool] = []

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        """Connect and load the write script; raises SinkUnavailable when unreachable."""
        if self._client is None:
            self._client = self.options.client()
            self._script = self._client.register_script(WRITE_BATCH_LUA)
        self._call(lambda c: c.ping())

    def flush(self) -> None:
        """Nothing is buffered client-side: every write is one completed round trip."""

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> redis.Redis:
        """The underlying client (opened on demand)."""
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    # -- reads the daemon needs at start ---------------------------------
    def committed_offset(self, producer: str) -> int:
        """The highest sequence written for `producer` (0 if none)."""
        raw = self._call(lambda c: c.hget(self.keys.offsets, producer))
        return int(raw) if raw else 0

    def memo(self, producer: str) -> dict[str, str]:
        """Everything `producer` asked to remember."""
        raw = self._call(lambda c: c.hgetall(self.keys.memo(producer)))
        return {k.decode(): v.decode() for k, v in raw.items()}

    # -- the write -------------------------------------------------------
    def _trim(self) -> tuple[str, str, str]:
        if self.max_age_s > 0:
            minid = str(int(time.time() * 1000) - self.max_age_s * 1000)
            return "MINID", minid, minid
        if self.maxlen > 0 or self.cell_maxlen > 0:
            return "MAXLEN", str(self.maxlen), str(self.cell_maxlen)
        return "", "0", "0"

    def encode(self, batch: Sequence[StreamEntry]) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of one script call for `batch`."""
        keys = [self.keys.offsets]
        kinds = ["h"]
        index: dict[str, int] = {}

        def key_index(key: str, kind: str = "s") -> str:
            i = index.get(key)
            if i is None:
                keys.append(key)
                kinds.append(kind)
                i = index[key] = len(keys)
            return str(i)

        mode, trim_main, trim_cell = self._trim()
        argv: list[str] = []
        for e in batch:
            stream_keys: list[tuple[str, str]] = []
            if self.global_stream:
                stream_keys.append((key_index(self.keys.events), "0"))
            if self.source_streams:
                stream_keys.append((key_index(self.keys.source(e.src)), "0"))
            if self.cell_streams:
                stream_keys.append((key_index(self.keys.cell(e.cell)), "1"))
            memo_idx, memo_field, memo_value = "0", "", ""
            if e.memo is not None:
                memo_idx = key_index(self.keys.memo(e.producer), "h")
                memo_field, memo_value = e.memo
            argv += [
                e.producer,
                str(e.seq),
                memo_idx,
                memo_field,
                memo_value,
                str(len(stream_keys)),
            ]
            argv += [k for k, _ in stream_keys]
            argv += [flag for _, flag in stream_keys]
            argv += e.values
        header = [mode, trim_main, trim_cell, "".join(kinds), str(len(self.field_names))]
        return keys, [*header, *self.field_names, *argv]

    def write(self, batch: Sequence[StreamEntry]) -> int:
        """Write a batch atomically and idempotently; return how many entries were new.

        `last_written` then tells, entry by entry, which ones were new.
        """
        self.last_written = [False] * len(batch)
        if not batch:
            return 0
        keys, argv = self.encode(batch)
        mask = self._call(lambda c: self._script(keys=keys, args=argv, client=c))
        mask = mask.decode() if isinstance(mask, bytes) else str(mask)
        self.last_written = [c == "1" for c in mask]
        return mask.count("1")

    def _call(self, fn: Any) -> Any:
        """Run `fn(client)` and map redis-py failures onto the sink error family."""
        if self._client is None:
            self._client = self.options.client()
            self._script = self._client.register_script(WRITE_BATCH_LUA)
        secrets = (self.options.password,)
        try:
            return fn(self._client)
        except (redis.AuthenticationError, redis.ResponseError) as exc:
            # AuthenticationError subclasses ConnectionError in redis-py: test it first.
            raise SinkRejected(
                f"redis at {self.options.display_url}: {redact(str(exc), secrets)}"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise SinkUnavailable(
                f"redis at {self.options.display_url}: {redact(str(exc), secrets)}"
            ) from None
