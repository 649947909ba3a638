"""Fixtures: a real 3-master/3-replica Redis Cluster on free loopback ports.

`cluster` is shared by the tests of a session that leave its topology alone (flushed
before each test); `private_cluster` is a fresh one for a test that kills or reshards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_proc import LocalCluster, binaries_missing


def _started(workdir: Path) -> LocalCluster:
    why = binaries_missing()
    if why is not None:
        pytest.skip(why)
    cluster = LocalCluster(workdir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = _started(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(shared_cluster: LocalCluster) -> LocalCluster:
    """The shared cluster, emptied."""
    shared_cluster.flush()
    return shared_cluster


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster for this test alone (it may kill nodes or move slots)."""
    cluster = _started(tmp_path / "cluster")
    yield cluster
    cluster.stop()
