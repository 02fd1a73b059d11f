"""Every multi-process test runs twice: on the session's Redis and on a Redis Cluster.

``redis_url`` (and so ``server_processes``) is parametrised here: ``redis``
is the session's ``redis-server``, ``cluster`` a session-scoped 3-master
cluster (``tests/support/cluster.py``), emptied before each test as the
single Redis is. The same test text holds the chat to the same contract on
both.

A test stays on one Redis only when what it checks has no meaning on a
cluster (``PLAIN_ONLY`` names the fixtures that make it so, with the reason).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import RedisClusterServers, require_cluster_binaries
from tests.support.redis import RedisServer

#: Fixtures that tie a test to one plain ``redis-server``, and why.
PLAIN_ONLY = {
    # A Redis of the test's own that it stops, kills, pauses or restarts: the
    # cluster's faults (a master killed, its replica promoted; a reshard) are
    # tests of their own (issue 12, item 3) on a cluster the test starts.
    "fresh_redis": "stops, kills or pauses a single Redis of its own",
    "persistent_redis": "restarts a single Redis from its dump",
    # Database numbers: a Redis Cluster has database 0 only.
    "redis_server": "uses the session Redis's other database numbers",
    # A cluster of the test's own, which it breaks (test_cluster_faults.py):
    # the session's Redis or cluster would only be started for nothing.
    "replicated_cluster": "breaks a cluster with replicas of its own",
    "own_cluster": "reshards a cluster of its own",
}

KINDS = ("redis", "cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" not in metafunc.fixturenames:
        return
    plain = [name for name in PLAIN_ONLY if name in metafunc.fixturenames]
    kinds = ["redis"] if plain or metafunc.definition.get_closest_marker("plain_redis") else KINDS
    metafunc.parametrize("redis_kind", kinds, indirect=True, scope="function")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "plain_redis(reason): runs on one Redis only, for the reason given"
    )


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """One 3-master Redis Cluster for the session (skip, or under CI=true fail, without one)."""
    require_cluster_binaries()
    cluster = RedisClusterServers(masters=3)
    cluster.start()
    yield cluster
    cluster.close()


@pytest.fixture
def redis_kind(request: pytest.FixtureRequest) -> str:
    """``redis`` or ``cluster``: what this run of the test is linked by."""
    return str(request.param)


@pytest.fixture
def redis_url(redis_kind: str, request: pytest.FixtureRequest) -> str:
    """The ``REDIS_URL`` of this run, emptied before the test: one Redis or the cluster."""
    if redis_kind == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    if not server.running:
        # a test stopped the shared server; bring it back rather than fail the rest
        server.start()
    server.flushall()
    return server.url
