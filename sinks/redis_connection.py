"""Redis connection options and client construction, with secrets kept out of logs.

URLs: ``redis://host:port/db``, ``rediss://…`` (TLS), ``unix:///path.sock`` for one
server; ``redis+cluster://[user:password@]host:port[,host:port…]`` (``rediss+cluster://``
with TLS) for a Redis Cluster: the listed nodes are only where discovery starts, the
client learns every node and slot from them (CLUSTER SLOTS) and follows MOVED/ASK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


@dataclass(frozen=True)
class RedisOptions:
    """How to reach Redis. `password` is never shown by repr() or in error messages."""

    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_verify: bool = True
    socket_timeout_s: float = 5.0

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ``***``."""
        return redact(self.url)

    @property
    def is_cluster(self) -> bool:
        """Whether the URL names a Redis Cluster (``redis+cluster://``)."""
        return self.url.startswith(CLUSTER_SCHEMES)

    def client(self) -> redis.Redis | RedisCluster:
        """A new client: a cluster client for a cluster URL, else a single-server one."""
        return self.cluster_client() if self.is_cluster else self.standalone_client()

    def cluster_seeds(self) -> list[tuple[str, int]]:
        """The (host, port) seed nodes a ``redis+cluster://`` URL lists.

        Raises ValueError for a malformed node or a URL without any.
        """
        hosts = self.url.partition("://")[2].rpartition("@")[2].split("/", 1)[0]
        seeds = []
        for spec in filter(None, hosts.split(",")):
            host, _, port = spec.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"cluster node {spec!r} in {self.display_url} is not HOST:PORT")
            seeds.append((host.strip("[]"), int(port)))
        if not seeds:
            raise ValueError(f"{self.display_url} names no cluster node (HOST:PORT,…)")
        return seeds

    def cluster_client(self) -> RedisCluster:
        """A new redis-py cluster client (discovers the nodes from the URL's seed list).

        Raises ValueError for a URL without seed nodes and redis errors when no seed
        answers (discovery runs at construction).
        """
        nodes = [ClusterNode(h, p) for h, p in self.cluster_seeds()]  # type: ignore[no-untyped-call]
        # Failover and resharding are handled by the sink (spool and replay), so the
        # client's own retries stay short: a dead master costs a few reconnects, not 10.
        return RedisCluster(startup_nodes=nodes, retry=redis.retry.Retry(
            redis.backoff.ExponentialBackoff(cap=0.5, base=0.05), 2), **self.client_kwargs())

    def standalone_client(self) -> redis.Redis:
        """A new single-server redis-py client (connections are made lazily, on first command)."""
        return redis.Redis.from_url(self.url, **self.client_kwargs())

    def client_kwargs(self, socket_timeout_s: float | None = None) -> dict[str, Any]:
        """Keyword arguments for a redis-py client of this URL's kind, sync or asyncio:
        timeouts (`socket_timeout_s` overrides the read timeout), credentials (the
        options', else a cluster URL's own ``user:password@``), and for TLS URLs the
        certificate files and verification (plus ``ssl=True`` for a cluster, whose
        client is not built from the URL)."""
        kwargs: dict[str, Any] = {
            "socket_timeout": socket_timeout_s or self.socket_timeout_s,
            "socket_connect_timeout": self.socket_timeout_s,
            "health_check_interval": 30,
        }
        username, password = self.username, self.password
        if self.is_cluster:
            user, _, url_password = self.url.partition("://")[2].rpartition("@")[0].partition(":")
            username = username or unquote(user)
            password = password or unquote(url_password)
        if username:
            kwargs["username"] = username
        if password:
            kwargs["password"] = password
        if self.url.startswith(("rediss://", "rediss+")):
            if self.is_cluster:
                kwargs["ssl"] = True
            if self.tls_ca_file:
                kwargs["ssl_ca_certs"] = self.tls_ca_file
            if self.tls_cert_file:
                kwargs["ssl_certfile"] = self.tls_cert_file
            if self.tls_key_file:
                kwargs["ssl_keyfile"] = self.tls_key_file
            if not self.tls_verify:
                kwargs["ssl_cert_reqs"] = "none"
        return kwargs


# Greedy up to the last '@' of the URL token: passwords may contain '@' and '/'.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z+]+://)(?P<user>[^:@/\s]*):(?P<pw>\S*)@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords and any of `secrets` replaced by ``***``."""
    out = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out
