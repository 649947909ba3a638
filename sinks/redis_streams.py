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

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, NamedTuple

import hiredis
import msgspec
import redis
from redis.exceptions import NoScriptError

from sinks.base import SinkRejected, SinkUnavailable
from sinks.entry import StreamEntry
from sinks.redis_connection import RedisOptions, redact

log = logging.getLogger(__name__)

_BATCH_PACKER = msgspec.msgpack.Encoder()

# One command's RESP bytes, in C. hiredis' stub types the argument as a 1-tuple; it
# takes any length.
pack_command: Callable[[tuple[str | bytes | int, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]

# KEYS[1] offsets hash; KEYS[2..] the streams and memo hashes the batch touches.
# ARGV: trim mode ("MAXLEN"|"MINID"|""), trim arg for global/src, trim arg for cells,
# key kinds (one letter per KEY: h = hash, s = global/src stream, c = cell stream),
# nfields, field names…, then the
# batch as ONE msgpack array (unpacked by Redis's built-in cmsgpack), columns of n entries:
#   [1] producers   distinct producer names
#   [2] producer    per entry, index into [1]
#   [3] seq         per entry, integer
#   [4] global      KEYS index of the global stream, 0 = not written
#   [5] src         per entry, KEYS index of its source stream ([] = not written)
#   [6] cell        per entry, KEYS index of its cell stream ([] = not written)
#   [7] memo key    per entry, KEYS index of the memo hash, 0 = no memo ([] = none at all)
#   [8] memo field  [9] memo value: per entry, like [7]
#   [10] values     every entry's nfields strings, one flat array (entry e's field i
#                   at (e - 1) * nfields + i: one Lua table per batch, not per entry)
# One string per batch instead of ~27 ARGV per entry: less to build client-side, and
# the server turns it into Lua values in one C call. Streams are trimmed once per batch
# (XTRIM … ~ after the XADDs) instead of by every XADD: the script is atomic, so no
# reader can tell, and MAXLEN ~ in an XADD called from Lua costs about as much as the
# XADD itself (issue 8; bench/sink.py measures).
# The prologue and epilogue every batch script shares (this one and the cluster's
# per-slot script). Prologue: scripts are not rolled back on error, so refuse up front
# what would fail midway: a key of the wrong type (OOM is refused at the first write,
# before any effect). XLEN answers for a stream or a missing key and fails for any other
# type; the lengths also tell which streams may need trimming. KEYS[i]'s kind is letter
# i of ARGV[4] (h = hash, s = stream, c = cell stream); ARGV[1..3] are the trim mode and
# limits.
LUA_CHECK_KEY_TYPES = """
local kinds = ARGV[4]
local lengths = {}
for i = 1, #KEYS do
  local want = 'stream'
  local ok
  if string.sub(kinds, i, i) == 'h' then
    want = 'hash'
    local t = redis.call('TYPE', KEYS[i])['ok']
    ok = t == 'none' or t == 'hash'
  else
    lengths[i] = redis.pcall('XLEN', KEYS[i])
    ok = type(lengths[i]) == 'number'
  end
  if not ok then
    local t = redis.call('TYPE', KEYS[i])['ok']
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is a ' .. t .. ', not a ' .. want)
  end
end
local mode = ARGV[1]
local trim_main = ARGV[2]
local trim_cell = ARGV[3]
"""
# Epilogue: record the producers' new offsets in KEYS[1] (needs `changed`, `producers`,
# `offsets`, `seqs`) and trim the streams once per batch.
LUA_COMMIT_AND_TRIM = """
for p, _ in pairs(changed) do
  redis.call('HSET', KEYS[1], producers[p], string.format('%.0f', offsets[p]))
end
if mode ~= '' then
  local limits = {s = trim_main, c = trim_cell}
  for i = 2, #KEYS do
    local trim = limits[string.sub(kinds, i, i)]
    -- Under MAXLEN, only a stream that may have grown past its cap has work to do.
    if trim and trim ~= '0' and
        (mode ~= 'MAXLEN' or lengths[i] + #seqs > tonumber(trim)) then
      redis.call('XTRIM', KEYS[i], mode, '~', trim)
    end
  end
end
"""
# Shared middle: each producer's committed offset from KEYS[1] (needs `producers`), and
# xadd(key, id) writing the field/value list `fv` (the caller fills in the values) with
# the given entry id, or a fresh one where another writer got ahead.
LUA_OFFSETS_AND_XADD = """
local offsets = {}
for i = 1, #producers do
  offsets[i] = tonumber(redis.call('HGET', KEYS[1], producers[i]) or '0')
end
local function xadd(key, id)
  if id == '*' then return redis.call('XADD', key, '*', unpack(fv)) end
  local res = redis.pcall('XADD', key, id, unpack(fv))
  if type(res) == 'table' and res['err'] then
    -- Another writer put a larger id into this stream: take a fresh one there.
    res = redis.call('XADD', key, '*', unpack(fv))
  end
  return res
end
local changed = {}
local mask = {}
"""
WRITE_BATCH_LUA = LUA_CHECK_KEY_TYPES + """local nf = tonumber(ARGV[5])
local b = cmsgpack.unpack(ARGV[6 + nf])
local producers, prod, seqs = b[1], b[2], b[3]
local global_k, src_k, cell_k = b[4], b[5], b[6]
local memo_k, memo_f, memo_v, values = b[7], b[8], b[9], b[10]
-- XADD's field/value list: the names once, each entry's values written over the last.
local fv = {}
for i = 1, nf do fv[2 * i - 1] = ARGV[5 + i] end
""" + LUA_OFFSETS_AND_XADD + """for e = 1, #seqs do
  local p = prod[e]
  local seq = seqs[e]
  if seq > offsets[p] then
    local base = (e - 1) * nf
    for i = 1, nf do fv[2 * i] = values[base + i] end
    -- The first stream assigns the entry id; the others reuse it, so one event has
    -- one id everywhere and readers can merge streams in publish order.
    local entry_id = '*'
    if global_k > 0 then entry_id = xadd(KEYS[global_k], entry_id) end
    local k = src_k[e]
    if k then
      local id = xadd(KEYS[k], entry_id)
      if entry_id == '*' then entry_id = id end
    end
    k = cell_k[e]
    if k then xadd(KEYS[k], entry_id) end
    k = memo_k[e]
    if k and k > 0 then redis.call('HSET', KEYS[k], memo_f[e], memo_v[e]) end
    offsets[p] = seq
    changed[p] = true
    mask[e] = '1'
  else
    mask[e] = '0'
  end
end
""" + LUA_COMMIT_AND_TRIM + """return table.concat(mask)
"""


WRITE_BATCH_SHA = hashlib.sha1(WRITE_BATCH_LUA.encode()).hexdigest()


class PreparedBatch(NamedTuple):
    """A batch with its script call already packed as RESP bytes (``EVALSHA sha
    numkeys KEYS… ARGV…``): what `RedisStreamsSink.prepare` builds in the
    pipeline's encoder thread so that the writer thread only sends it (issue 8)."""

    size: int  # entries in the batch
    command: bytes


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
        self.last_written: list[bool] = []

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        """Connect (the write script is loaded on its first NOSCRIPT); raises
        SinkUnavailable when unreachable."""
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

    def encode(self, batch: Sequence[StreamEntry]) -> tuple[list[str], list[str | bytes]]:
        """KEYS and ARGV of one script call for `batch` (layout above WRITE_BATCH_LUA).

        Column by column with C-level maps: no Python statement runs per entry.
        """
        keys = [self.keys.offsets]
        kinds = ["h"]

        def index(names: list[str], key_of: Callable[[str], str], kind: str) -> list[int]:
            """KEYS index of each name's key, adding the distinct keys in first-seen order."""
            at: dict[str, int] = {}
            for name in dict.fromkeys(names):
                keys.append(key_of(name))
                kinds.append(kind)
                at[name] = len(keys)
            return list(map(at.__getitem__, names))

        global_k = 0
        if self.global_stream:
            global_k = index([self.keys.events], str, "s")[0]
        src_k = index([e.src for e in batch], self.keys.source, "s") if self.source_streams else []
        cell_k = index([e.cell for e in batch], self.keys.cell, "c") if self.cell_streams else []
        producers = [e.producer for e in batch]
        producer_at = {p: i for i, p in enumerate(dict.fromkeys(producers), 1)}
        memos = [e.memo for e in batch]
        memo_k: list[int] = []
        memo_f: list[str] = []
        memo_v: list[str] = []
        if memos.count(None) != len(memos):
            with_memo = [e.producer for e in batch if e.memo is not None]
            memo_keys = iter(index(with_memo, self.keys.memo, "h"))
            memo_k = [0 if m is None else next(memo_keys) for m in memos]
            memo_f = ["" if m is None else m[0] for m in memos]
            memo_v = ["" if m is None else m[1] for m in memos]
        blob = _BATCH_PACKER.encode(
            (
                list(producer_at),
                list(map(producer_at.__getitem__, producers)),
                [e.seq for e in batch],
                global_k,
                src_k,
                cell_k,
                memo_k,
                memo_f,
                memo_v,
                list(chain.from_iterable(e.values for e in batch)),
            )
        )
        mode, trim_main, trim_cell = self._trim()
        header = [mode, trim_main, trim_cell, "".join(kinds), str(len(self.field_names))]
        return keys, [*header, *self.field_names, blob]

    def prepare(self, batch: Sequence[StreamEntry]) -> PreparedBatch | None:
        """The batch's script call packed for `write_prepared`: all the per-batch
        client work but the round trip, so another thread can do it while this
        sink waits on Redis for the batch before."""
        keys, argv = self.encode(batch)
        command = pack_command(("EVALSHA", WRITE_BATCH_SHA, len(keys), *keys, *argv))
        return PreparedBatch(len(batch), command)

    def write(self, batch: Sequence[StreamEntry]) -> int:
        """Write a batch atomically and idempotently; return how many entries were new.

        `last_written` then tells, entry by entry, which ones were new.
        """
        self.last_written = []
        prepared = self.prepare(batch) if batch else None
        return 0 if prepared is None else self.write_prepared(prepared)

    def write_prepared(self, prepared: PreparedBatch) -> int:
        """`write` of a batch that `prepare` packed; same result and `last_written`."""
        self.last_written = [False] * prepared.size
        mask = self._call(lambda c: self._send(c, prepared.command))
        mask = mask.decode() if isinstance(mask, bytes) else str(mask)
        self.last_written = [c == "1" for c in mask]
        return mask.count("1")

    def _send(self, client: redis.Redis, command: bytes) -> Any:
        """Send one packed EVALSHA on a pooled connection and read its reply; loads
        the script and sends again when the server does not have it (a restarted or
        flushed Redis)."""
        pool = client.connection_pool
        conn: Any = pool.get_connection()  # redis-py's Connection methods are untyped
        try:
            for attempt in (1, 2):
                conn.send_packed_command([command])
                try:
                    return conn.read_response()
                except NoScriptError:
                    if attempt == 2:
                        raise
                    conn.send_command("SCRIPT", "LOAD", WRITE_BATCH_LUA)
                    conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            conn.disconnect()  # a reply may still be on its way: never reuse this socket
            raise
        finally:
            pool.release(conn)

    def _call(self, fn: Any) -> Any:
        """Run `fn(client)` and map redis-py failures onto the sink error family."""
        if self._client is None:
            self._client = self.options.standalone_client()
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
