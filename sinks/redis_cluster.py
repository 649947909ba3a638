"""The Redis Streams sink for a Redis Cluster: one atomic, idempotent script call per slot.

A Redis Cluster runs a script only over keys of one hash slot, and the contract's
streams of one event live in different slots (``P:cell:{<token>}`` is placed by its
cell token, ``P:events`` and ``P:src:<src>`` by their whole names). So a batch is cut
into slot groups and each group is one EVALSHA, all sent in one cluster pipeline (one
round trip per master, in parallel)::

    batch ──► phase 1: the lead streams   P:events (else P:src:<src>)   assign entry ids
          └─► phase 2: everything else    P:src:<src>, P:cell:{t}, P:memo:<producer>
                                          written with the ids of phase 1

    per slot S (tag(S) = a 4-letter string hashing to S, e.g. "AKOB" for slot 0):
    P:offsets:lead:{tag(S)}   hash: producer -> highest seq written to S in phase 1
    P:offsets:{tag(S)}        hash: producer -> highest seq written to S in phase 2

The lead stream of an event is the first stream it is written to, the one that picks
its entry id: ``P:events`` when the global stream is on, else its ``P:src:<src>``, else
its cell stream (then phase 1 is empty and phase 2 assigns). One event therefore has
one entry id in all its streams, as with a single Redis (if another writer put a larger
id into a stream first, that stream gets a fresh id, as with a single Redis).

Exactly-once per slot: a group writes an entry's keys in its slot only when the entry's
seq is above the producer's offset in that slot and phase, and advances that offset in
the same atomic call. Every key of an entry is written by exactly one (slot, phase)
group, and a producer's entries reach one group in seq order (batches are written and
replayed in order), so the per-slot offsets are each a correct high-water mark. When
some groups of a batch fail (a master died, a slot is migrating), the sink raises
SinkUnavailable, the pipeline spools the whole batch, and the replay writes exactly the
groups that were missing; the others skip. Offsets move with their slot when it is
resharded (same hash tag), so MOVED/ASK change nothing. Producers are
``<station>:<source>``: many stations share the streams, never an offset.

Limits, beyond a single Redis's: the memo hash of a producer (its own slot) is written
in phase 2, beside the cell streams but not in the same atomic step; a daemon killed
between a partly failed write and the spool append (microseconds) could lose that batch
with its memo recorded. Replication is asynchronous: a master killed right after
acknowledging a write may lose it in the failover; ``wait_replicas = 1`` (WAIT after
each phase) closes that window at the cost of stalling (spooling) a shard while it has
no replica in sync. ``P:events`` and every ``P:src:<src>`` are each one slot, so each
lives on one master (a hot slot): with many stations turn ``global_stream`` (and maybe
``source_streams``) off and read the per-cell streams, which spread over every shard.
"""

from __future__ import annotations

import binascii
import hashlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from sinks.base import SinkError, SinkRejected, SinkUnavailable
from sinks.entry import StreamEntry
from sinks.redis_connection import RedisOptions, redact
from sinks.redis_streams import (
    LUA_CHECK_KEY_TYPES,
    LUA_COMMIT_AND_TRIM,
    LUA_OFFSETS_AND_XADD,
    PreparedBatch,
    RedisStreamsSink,
)

log = logging.getLogger(__name__)

CLUSTER_SLOTS = 16384
_PENDING_MAX = 100_000  # entries remembered from partly written batches (see write)

_PACKER = msgspec.msgpack.Encoder()

# One slot group. KEYS[1] the slot's offsets hash; KEYS[2..] streams and memo hashes,
# all in the slot. ARGV: trim mode ("MAXLEN"|"MINID"|""), trim arg for global/src, for
# cells, key kinds (one letter per KEY: h hash, s global/src stream, c cell stream),
# the field names as one msgpack array (a batch has hundreds of groups: six arguments
# per call instead of thirty), then ONE msgpack array of columns over its n entries:
#   [1] producers  distinct names      [2] producer  per entry, index into [1]
#   [3] seq        per entry           [4] first     KEYS index of the entry's first
#   stream in this group (0 = none)    [5] second    KEYS index of a second one (0 = none)
#   [6] id         per entry: the entry id to use ("" = let the first stream assign one)
#   [7] base       per entry: offset of its values in [11] (-1 = no stream here)
#   [8] memo key   KEYS index (0 = none)   [9] memo field   [10] memo value
#   [11] values    nfields strings per entry that has a stream here, one flat array
# Returns {mask, ids}: mask "1"/"0" per entry (written / already there), ids the entry
# id written to the first stream ("" when skipped or no stream).
GROUP_WRITE_LUA = LUA_CHECK_KEY_TYPES + """
local names = cmsgpack.unpack(ARGV[5])
local nf = #names
local b = cmsgpack.unpack(ARGV[6])
local producers, prod, seqs, first, second = b[1], b[2], b[3], b[4], b[5]
local ids, base, memo_k, memo_f, memo_v, values = b[6], b[7], b[8], b[9], b[10], b[11]
local fv = {}
for i = 1, nf do fv[2 * i - 1] = names[i] end
""" + LUA_OFFSETS_AND_XADD + """local out = {}
for e = 1, #seqs do
  local p = prod[e]
  local seq = seqs[e]
  out[e] = ''
  if seq > offsets[p] then
    if first[e] > 0 then
      local at = base[e]
      for i = 1, nf do fv[2 * i] = values[at + i] end
      local id = ids[e]
      if id == '' then id = '*' end
      out[e] = xadd(KEYS[first[e]], id)
      if second[e] > 0 then xadd(KEYS[second[e]], out[e]) end
    end
    if memo_k[e] > 0 then redis.call('HSET', KEYS[memo_k[e]], memo_f[e], memo_v[e]) end
    offsets[p] = seq
    changed[p] = true
    mask[e] = '1'
  else
    mask[e] = '0'
  end
end
""" + LUA_COMMIT_AND_TRIM + """return {table.concat(mask), out}
"""

GROUP_WRITE_SHA = hashlib.sha1(GROUP_WRITE_LUA.encode()).hexdigest()

# What a cluster in motion answers (failover, resharding, a node restarting): the
# batch is fine, the cluster is not ready for it now; spool it and replay it later.
_TRANSIENT = (
    ClusterDownError,
    ClusterError,
    MovedError,
    AskError,
    TryAgainError,
    SlotNotCoveredError,
    RedisClusterException,
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
)
_TRANSIENT_REPLIES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOSCRIPT")


def key_slot(key: str) -> int:
    """The cluster hash slot of `key` (CRC16 of its hash tag, or of the whole key)."""
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % CLUSTER_SLOTS


@cache
def _slot_tags() -> tuple[str, ...]:
    """For every slot, the first 4-letter string over ``@A…O`` that hashes to it.

    CRC16 is affine over GF(2) and these letters vary only in their low 4 bits, so
    the 65 536 strings hit every one of the 16 384 slots (four times each); the first
    in a fixed order is the slot's tag, the same in every process and version.
    """
    tags: list[str | None] = [None] * CLUSTER_SLOTS
    for letters in itertools.product("@ABCDEFGHIJKLMNO", repeat=4):
        tag = "".join(letters)
        slot = binascii.crc_hqx(tag.encode(), 0) % CLUSTER_SLOTS
        if tags[slot] is None:
            tags[slot] = tag
    assert all(tags), "every slot has a tag"
    return tuple(t for t in tags if t is not None)


def slot_tag(slot: int) -> str:
    """A hash tag whose slot is `slot` (``{tag}`` puts a key into that slot)."""
    return _slot_tags()[slot]


@dataclass
class _Group:
    """The part of one batch that one script call writes: one slot, one phase."""

    slot: int
    offsets_key: str
    keys: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    at: dict[str, int] = field(default_factory=dict)
    entries: list[int] = field(default_factory=list)
    streams: list[tuple[int, int]] = field(default_factory=list)
    memo: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys.append(self.offsets_key)
        self.kinds.append("h")

    def index(self, key: str, kind: str) -> int:
        """KEYS index (1-based) of `key`, added on first use."""
        i = self.at.get(key)
        if i is None:
            self.keys.append(key)
            self.kinds.append(kind)
            i = self.at[key] = len(self.keys)
        return i


class ClusterStreamsSink(RedisStreamsSink):
    """Writes batches into the contract's streams on a Redis Cluster (see the module doc).

    Same lifecycle and reads as `RedisStreamsSink` (`committed_offset`, `memo`,
    `last_written`); `wait_replicas` > 0 makes a write count only once that many
    replicas of each master it touched have it (WAIT, `wait_timeout_ms`).
    """

    def __init__(
        self,
        options: RedisOptions,
        field_names: Sequence[str],
        *,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(options, field_names, **kwargs)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._cluster: RedisCluster | None = None
        self._names_blob = _PACKER.encode(list(self.field_names))
        # Entries written in part by a write that then failed, by (producer, seq), with
        # the id phase 1 gave them: the replay (where those groups skip and return no
        # id) reuses the id and still counts the entry as new, so mirrors see it once.
        self._pending: dict[tuple[str, int], str] = {}

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        """Discover the cluster and load the script on every master (SinkUnavailable if down)."""
        self._call(lambda c: _load_script(c, RedisCluster.PRIMARIES))

    def close(self) -> None:
        """Close every node's connection pool."""
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def cluster(self) -> RedisCluster:
        """The cluster client (discovers the cluster on first use)."""
        if self._cluster is None:
            self._cluster = self.options.cluster_client()
        return self._cluster

    @property
    def client(self) -> redis.Redis:
        """Not available in cluster mode: use `cluster` (no single server holds the keys)."""
        raise TypeError("a cluster sink has no single-server client; use .cluster")

    # -- reads the daemon needs at start ---------------------------------
    def committed_offset(self, producer: str) -> int:
        """The highest sequence written for `producer` in any slot (0 if none).

        Scans every master for the per-slot offsets hashes (at most two per slot):
        the sequence store asks once per producer when the daemon starts.
        """
        pattern = f"{self.keys.offsets}:*"

        def highest(c: Any) -> int:
            keys = list(c.scan_iter(match=pattern, count=1000, _type="hash"))
            best = 0
            for start in range(0, len(keys), 500):
                pipe = c.pipeline()
                for key in keys[start : start + 500]:
                    pipe.hget(key, producer)
                best = max([best, *(int(v) for v in pipe.execute() if v)])
            return best

        return int(self._call(highest))

    def memo(self, producer: str) -> dict[str, str]:
        """Everything `producer` asked to remember."""
        raw = self._call(lambda c: c.hgetall(self.keys.memo(producer)))
        return {k.decode(): v.decode() for k, v in raw.items()}

    # -- the write -------------------------------------------------------
    def _lead_key(self, entry: StreamEntry) -> str | None:
        """The stream that assigns the entry's id in phase 1 (None: phase 2 does)."""
        if self.global_stream:
            return self.keys.events
        if self.source_streams:
            return self.keys.source(entry.src)
        return None

    def _later_keys(self, entry: StreamEntry) -> list[tuple[str, str]]:
        """(key, kind) of the streams phase 2 writes for `entry`, in write order."""
        out: list[tuple[str, str]] = []
        if self.source_streams and self.global_stream:
            out.append((self.keys.source(entry.src), "s"))
        if self.cell_streams:
            out.append((self.keys.cell(entry.cell), "c"))
        return out

    def plan(self, batch: Sequence[StreamEntry]) -> tuple[list[_Group], list[_Group]]:
        """The slot groups of phase 1 and phase 2 for `batch` (entries as batch indexes)."""
        lead: dict[int, _Group] = {}
        later: dict[int, _Group] = {}
        slots: dict[str, int] = {}
        offsets = self.keys.offsets

        def group_of(groups: dict[int, _Group], key: str, phase: str) -> _Group:
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = key_slot(key)
            g = groups.get(slot)
            if g is None:
                g = groups[slot] = _Group(slot, f"{offsets}:{phase}{{{slot_tag(slot)}}}")
            return g

        for e, entry in enumerate(batch):
            key = self._lead_key(entry)
            if key is not None:
                g = group_of(lead, key, "lead:")
                g.entries.append(e)
                g.streams.append((g.index(key, "s"), 0))
                g.memo.append(0)
            touched: dict[int, _Group] = {}
            streams: dict[int, list[int]] = {}
            for key, kind in self._later_keys(entry):
                g = group_of(later, key, "")
                touched[id(g)] = g
                streams.setdefault(id(g), []).append(g.index(key, kind))
            memo_in: _Group | None = None
            if entry.memo is not None:
                memo_in = group_of(later, self.keys.memo(entry.producer), "")
                touched[id(memo_in)] = memo_in
            for gid, g in touched.items():
                s = streams.get(gid, [])
                g.entries.append(e)
                g.streams.append((s[0] if s else 0, s[1] if len(s) > 1 else 0))
                g.memo.append(
                    g.index(self.keys.memo(entry.producer), "h") if g is memo_in else 0
                )
        return list(lead.values()), list(later.values())

    def _argv(
        self, g: _Group, batch: Sequence[StreamEntry], ids: Sequence[str]
    ) -> list[str | bytes]:
        """ARGV of one group's script call (layout above GROUP_WRITE_LUA)."""
        entries = [batch[e] for e in g.entries]
        producer_at = {p: i for i, p in enumerate(dict.fromkeys(e.producer for e in entries), 1)}
        base: list[int] = []
        values: list[str] = []
        for (first, _), entry in zip(g.streams, entries, strict=True):
            if first:
                base.append(len(values))
                values.extend(entry.values)
            else:
                base.append(-1)
        memos = [e.memo for e in entries]
        blob = _PACKER.encode(
            (
                list(producer_at),
                [producer_at[e.producer] for e in entries],
                [e.seq for e in entries],
                [s[0] for s in g.streams],
                [s[1] for s in g.streams],
                [ids[e] for e in g.entries],
                base,
                g.memo,
                ["" if m is None else m[0] for m in memos],
                ["" if m is None else m[1] for m in memos],
                values,
            )
        )
        mode, trim_main, trim_cell = self._trim()
        return [mode, trim_main, trim_cell, "".join(g.kinds), self._names_blob, blob]

    def prepare(self, batch: Sequence[StreamEntry]) -> PreparedBatch | None:
        """None: a cluster write is one script call per slot group, planned and sent
        in `write` (the slots' owners may move between preparing and sending)."""
        return None

    def write(self, batch: Sequence[StreamEntry]) -> int:
        """Write a batch, slot group by slot group, idempotently; return entries newly written.

        Raises SinkUnavailable (SinkRejected for a refusal such as a key of the wrong
        type) when any group could not be written; the groups that were written skip
        when the same batch is written again.
        """
        self.last_written = [False] * len(batch)
        if not batch:
            return 0
        lead, later = self.plan(batch)
        keys = [(e.producer, e.seq) for e in batch]
        new = [k in self._pending for k in keys]
        ids = [self._pending.get(k, "") for k in keys]

        def lead_written(e: int, written: bool, entry_id: str) -> None:
            if written:
                new[e] = True
                ids[e] = entry_id

        def later_written(e: int, written: bool, entry_id: str) -> None:
            # Without phase 1 an entry is new when any of its groups wrote it.
            new[e] = new[e] or written

        try:
            self._run_groups(lead, batch, ids, lead_written)
            self._run_groups(later, batch, ids, later_written)
        except SinkError:
            # What was written stays new, with its id, for the replay of this batch.
            if len(self._pending) > _PENDING_MAX:
                # Batches that are never replayed (a spool segment dropped when full)
                # must not grow this forever; forgetting costs only id sharing and
                # mirror bookkeeping of partly written entries, never exactly-once.
                self._pending.clear()
            for k, entry_new, entry_id in zip(keys, new, ids, strict=True):
                if entry_new:
                    self._pending[k] = entry_id
            raise
        for k in keys:
            self._pending.pop(k, None)
        self.last_written = new
        return sum(new)

    def _run_groups(
        self,
        groups: list[_Group],
        batch: Sequence[StreamEntry],
        ids: Sequence[str],
        written: Callable[[int, bool, str], None],
    ) -> None:
        """Run `groups` in one cluster pipeline; call `written(batch index, new, entry id)`
        for every entry of every group that succeeded, then raise the first failure."""
        if not groups:
            return
        argvs = [self._argv(g, batch, ids) for g in groups]
        replies, error = self._call(lambda c: self._evalsha_all(c, groups, argvs))
        for g, reply in zip(groups, replies, strict=True):
            if isinstance(reply, Exception):
                error = error or reply
                continue
            mask, entry_ids = reply
            mask = mask.decode() if isinstance(mask, bytes) else str(mask)
            for e, bit, entry_id in zip(g.entries, mask, entry_ids, strict=True):
                written(e, bit == "1", _s(entry_id))
        if error is not None:
            raise self._sink_error(error)

    def _evalsha_all(
        self, c: Any, groups: list[_Group], argvs: list[list[str | bytes]]
    ) -> tuple[list[Any], Exception | None]:
        """EVALSHA every group in one pipeline (loading the script where a node lacks
        it: a promoted replica or a restarted node), then WAIT when configured.

        Returns each group's reply or exception, and the WAIT failure if any.
        """
        todo = list(range(len(groups)))
        results: list[Any] = [None] * len(groups)
        wait_error: Exception | None = None
        for attempt in range(2):
            pipe = c.pipeline()
            targets: dict[str, ClusterNode] = {}
            for i in todo:
                keys = groups[i].keys
                # The master we believe serves the slot: without a target the cluster
                # pipeline asks a server (COMMAND GETKEYS) for every EVALSHA's keys.
                # A MOVED/ASK reply is retried by redis-py, routed by the keys.
                node = c.nodes_manager.get_node_from_slot(groups[i].slot)
                targets[node.name] = node
                # ClusterPipeline blocks its evalsha() method (scripts and slots);
                # one declared slot per call is exactly what it can route.
                pipe.execute_command(
                    "EVALSHA", GROUP_WRITE_SHA, len(keys), *keys, *argvs[i], target_nodes=node
                )
            nodes = list(targets.values()) if self.wait_replicas > 0 else []
            for node in nodes:
                pipe.execute_command(
                    "WAIT", self.wait_replicas, self.wait_timeout_ms, target_nodes=node
                )
            replies = pipe.execute(raise_on_error=False)
            missing = []
            for i, reply in zip(todo, replies, strict=False):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                else:
                    results[i] = reply
            for node, acked in zip(nodes, replies[len(todo) :], strict=True):
                if isinstance(acked, Exception):
                    wait_error = wait_error or acked
                elif int(acked) < self.wait_replicas:
                    wait_error = wait_error or redis.ConnectionError(
                        f"{node.name}: {acked} of {self.wait_replicas} replicas "
                        f"acknowledged within {self.wait_timeout_ms} ms"
                    )
            if not missing:
                break
            _load_script(c, RedisCluster.ALL_NODES)
            todo = missing
        return results, wait_error

    def _sink_error(self, exc: Exception) -> SinkError:
        """`exc` as the sink error family: a cluster in motion is SinkUnavailable, a
        refusal of the batch (wrong key type, auth) SinkRejected."""
        text = f"redis cluster {self.options.display_url}: "
        text += redact(str(exc), (self.options.password,))
        if isinstance(exc, redis.AuthenticationError):
            return SinkRejected(text)
        if isinstance(exc, _TRANSIENT):
            return SinkUnavailable(text)
        if isinstance(exc, redis.ResponseError) and not str(exc).startswith(_TRANSIENT_REPLIES):
            return SinkRejected(text)
        return SinkUnavailable(text)

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(cluster client)`, mapping redis failures onto the sink error family."""
        try:
            return fn(self.cluster)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            # RedisClusterException (no node answers discovery) is no RedisError.
            raise self._sink_error(exc) from None


def _load_script(c: Any, nodes: str) -> None:
    """SCRIPT LOAD the group script on `nodes` (a RedisCluster node flag)."""
    c.execute_command("SCRIPT LOAD", GROUP_WRITE_LUA, target_nodes=nodes)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
