"""The viewer's reads on a Redis Cluster: the few asyncio client calls it makes.

The viewer talks to Redis through `time`, `pipeline` (XREVRANGE per key), `xrevrange`,
`scan_iter` and `xread` over many keys. On a cluster every call but the last routes by
its one key (redis-py's asyncio `RedisCluster` does that, and its pipeline sends each
key's command to its master, one round trip per master). XREAD can only read keys of
one slot, so `ClusterStreams.xread` issues one non-blocking XREAD per slot in one
cluster pipeline and polls every `poll_s` until something arrives or `block` ms pass,
which is what a blocking XREAD over the same keys would return.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from sinks.redis_cluster import key_slot
from sinks.redis_connection import RedisOptions


class ClusterStreams:
    """An asyncio cluster client with the read calls of `redis.asyncio.Redis` the viewer uses."""

    def __init__(self, cluster: RedisCluster, poll_s: float = 0.1) -> None:
        self.cluster = cluster
        self.poll_s = poll_s

    @classmethod
    def from_options(cls, options: RedisOptions, **kwargs: Any) -> ClusterStreams:
        """A client for the cluster that `options.url` (redis+cluster://…) names;
        `kwargs` (`RedisOptions.client_kwargs`) go to every node's connections."""
        nodes = [ClusterNode(host, port) for host, port in options.cluster_seeds()]
        return cls(RedisCluster(startup_nodes=nodes, **kwargs))

    async def time(self) -> Any:
        """TIME of any master (entry ids come from the masters' clocks)."""
        return await self.cluster.execute_command("TIME", target_nodes=RedisCluster.RANDOM)

    def pipeline(self, transaction: bool = False) -> Any:
        """A cluster pipeline (never a transaction: the keys span slots)."""
        del transaction
        return self.cluster.pipeline()

    async def xrevrange(self, key: str, max: str = "+", min: str = "-",
                        count: int | None = None) -> Any:
        """XREVRANGE on the key's master."""
        return await self.cluster.xrevrange(key, max=max, min=min, count=count)

    def scan_iter(self, match: str, count: int = 1000, _type: str | None = None
                  ) -> AsyncIterator[Any]:
        """SCAN over every master."""
        return self.cluster.scan_iter(match=match, count=count, _type=_type)

    async def xread(
        self, streams: dict[Any, Any], count: int | None = None, block: int | None = None
    ) -> list[Any]:
        """XREAD over keys of any slots: [[key, [(id, fields), …]], …] like one server's."""
        by_slot: dict[int, list[str]] = {}
        for key in streams:
            text = key.decode() if isinstance(key, bytes) else str(key)
            by_slot.setdefault(key_slot(text), []).append(key)
        deadline = time.monotonic() + (block or 0) / 1000.0
        while True:
            pipe = self.cluster.pipeline()
            for slot, keys in by_slot.items():
                args: list[Any] = ["XREAD"]
                if count:
                    args += ["COUNT", count]
                args += ["STREAMS", *keys, *(streams[k] for k in keys)]
                pipe.execute_command(
                    *args, target_nodes=self.cluster.nodes_manager.get_node_from_slot(slot)
                )
            replies = await pipe.execute()
            out = [row for rows in replies if rows for row in rows]
            if out or block is None or time.monotonic() >= deadline:
                return out
            await asyncio.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    async def aclose(self) -> None:
        """Close every node's connections."""
        await self.cluster.aclose()


# What the viewer reads streams with: one server, or a cluster behind the adapter.
StreamsClient = aioredis.Redis | ClusterStreams
