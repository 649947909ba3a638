"""A real Redis Cluster (3 masters, 3 replicas) on free loopback ports, for tests.

The same steps as scripts/cluster-up, with processes this object owns so a test can
SIGKILL a master and restart it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from daemon.loopback_redis import free_cluster_ports

SERVER = "/usr/bin/redis-server"
CLI = "/usr/bin/redis-cli"


def binaries_missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for path in (SERVER, CLI):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install redis-server redis-tools, Redis >= 7)"
    return None


class LocalCluster:
    """Six redis-server processes forming one cluster; `url` is the sink's URL."""

    def __init__(self, workdir: Path, node_timeout_ms: int = 1000) -> None:
        self.workdir = workdir
        self.node_timeout_ms = node_timeout_ms
        self.ports = free_cluster_ports(6)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, decode_responses=True)

    def start_node(self, port: int) -> None:
        work = self.workdir / str(port)
        work.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--save", "", "--appendonly", "no", "--logfile", str(work / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with self.node(port) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on {port}") from None
                    time.sleep(0.05)

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        subprocess.run(
            [CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        """Until every running node says cluster_state:ok, there are 3 masters each with
        slots, and every replica's link to its master is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._healthy():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not become healthy")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        for port in self.running():
            with self.node(port) as c:
                if c.execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                    return False
                info = c.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        return len(self.masters()) == 3

    def running(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the masters that serve slots, as a running node sees them."""
        with self.node(self.running()[0]) as c:
            nodes = c.execute_command("CLUSTER NODES")
        return sorted(
            int(addr.rsplit(":", 1)[1])
            for addr, n in nodes.items()
            if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]
        )

    def node_ids(self) -> dict[int, str]:
        """Port -> node id of every node, as a running node sees them."""
        with self.node(self.running()[0]) as c:
            nodes = c.execute_command("CLUSTER NODES")
        return {int(addr.rsplit(":", 1)[1]): n["node_id"] for addr, n in nodes.items()}

    def slot_owners(self) -> list[int]:
        """The master's port of every slot (index = slot)."""
        owners = [0] * 16384
        with self.node(self.running()[0]) as c:
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                owners[start : end + 1] = [int(master[1])] * (end - start + 1)
        return owners

    def master_of_slot(self, slot: int) -> int:
        with self.node(self.running()[0]) as c:
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise KeyError(slot)

    def kill(self, port: int) -> None:
        """SIGKILL one node (no shutdown, no save)."""
        proc = self.procs[port]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def flush(self) -> None:
        for port in self.masters():
            with self.node(port) as c:
                c.flushall()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
