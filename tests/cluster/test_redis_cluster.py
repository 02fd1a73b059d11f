"""Only on a Redis Cluster: its URL checked at start-up, and scripts that stay in one slot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from chat_server.core.changes import Change
from chat_server.core.ports import Publication
from chat_server.core.settings import RedisTarget
from chat_server.stores.history import RedisHistory
from chat_server.stores.keys import KeyLayout
from chat_server.stores.redis import cluster_verdict
from tests.contract.test_cli import run
from tests.support.chat import unique
from tests.support.cluster import RedisClusterServers
from tests.support.ports import free_port
from tests.support.redis import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster_client(redis_cluster: RedisClusterServers) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(RedisTarget.parse(redis_cluster.url).url)
    yield client
    await client.aclose()


def refusal(url: str) -> str:
    """The one stderr line the server exits with for ``REDIS_URL=url``."""
    result = run(["--port", str(free_port())], env={"REDIS_URL": url})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_cluster_url_naming_a_plain_redis_is_refused_in_one_line(
    redis_server: RedisServer,
) -> None:
    plain = redis_server.url.replace("redis://", "redis+cluster://").rsplit("/", 1)[0]
    assert "is a plain Redis (cluster_enabled:0)" in refusal(plain)


def test_a_plain_url_naming_a_cluster_node_is_refused_in_one_line(
    redis_cluster: RedisClusterServers,
) -> None:
    node = redis_cluster.url.replace("redis+cluster://", "redis://")
    assert "is a Redis Cluster node (cluster_enabled:1)" in refusal(node)


def test_a_cluster_without_sharded_pubsub_is_refused(redis_cluster: RedisClusterServers) -> None:
    # No Redis older than 7 is at hand: a real node's INFO, as a 6.2 node
    # (which knows no SPUBLISH) would answer it.
    with redis_cluster.client(redis_cluster.ports[0]) as node:
        info = {**node.info("all"), "redis_version": "6.2.14"}
    target = RedisTarget.parse(redis_cluster.url)
    verdict = cluster_verdict(target, info, sharded=False)
    assert verdict is not None
    assert "version 6.2.14" in verdict
    assert "lack sharded pub/sub" in verdict
    assert cluster_verdict(target, info, sharded=True) is None


async def test_appends_and_changes_run_on_a_cluster_in_one_slot_each(
    cluster_client: RedisCluster,
) -> None:
    history = RedisHistory(cluster_client, 3, KeyLayout(cluster=True))  # type: ignore[arg-type]  # the commands used exist on both clients
    room, dm = f"room:{unique('r')}", f"dm:{unique('a')}:{unique('b')}"
    publication = Publication((f"chat:0:{{{room}}}",), '{"d":', "}")
    first = await history.append(room, {"from": "ann", "text": "one"}, publication)
    again, replayed = await history.append_once(dm, {"from": "ann", "text": "hi"}, "k")
    assert not replayed
    assert (await history.append_once(dm, {"from": "ann", "text": "hi"}, "k"))[0] == again
    for n in range(4):  # past the cap: the trim path runs too
        await history.append(room, {"from": "bob", "text": f"m{n}"})
    changed = await history.change(dm, again["id"], Change("edit", "ann", text="hi!"))
    assert changed.message["text"] == "hi!"
    assert [m["text"] for m in await history.latest(room, 5)] == ["m1", "m2", "m3"]
    assert not (await history.after(room, first["id"])).recovered


async def test_ids_stay_unique_and_ordered_across_the_clusters_slots(
    cluster_client: RedisCluster,
) -> None:
    history = RedisHistory(cluster_client, 100, KeyLayout(cluster=True))  # type: ignore[arg-type]  # as above
    rooms = [f"room:{unique('r')}" for _ in range(20)]
    ids = [(await history.append(room, {"from": "a", "text": "x"}))["id"] for room in rooms * 3]
    assert len(set(ids)) == len(ids)
    for room in rooms:
        mine = [m["id"] for m in await history.latest(room, 10)]
        assert mine == sorted(mine)


def test_the_key_layout_is_what_the_cluster_itself_hashes(
    redis_cluster: RedisClusterServers,
) -> None:
    keys = KeyLayout(cluster=True)
    history = keys.history("dm:ann:bob")
    with redis_cluster.client(redis_cluster.ports[0]) as node:
        slots = {
            node.execute_command("CLUSTER KEYSLOT", key)
            for key in (history.stream, history.revs, keys.seq("dm:ann:bob").key)
        }
    assert len(slots) == 1
