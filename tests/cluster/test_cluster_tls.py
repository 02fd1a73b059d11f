"""A Redis Cluster reached over TLS (``rediss+cluster://``): the chat works as over plain TCP.

The cluster (3 masters, started here) is formed, announced and linked over
TLS with a certificate of its own; the chat trusts it through redis-py's
``ssl_ca_certs`` in the URL. Every connection the chat makes to it (the
stores' cluster client, the bus's publisher and its per-master sharded
subscriptions) must then be TLS, or nothing would get through.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.certs import self_signed
from tests.support.chat import expect_ok, join, unique
from tests.support.cluster import RedisClusterServers, require_cluster_binaries
from tests.support.fixtures import Connect
from tests.support.process import ServerProcess
from tests.support.settings import API_KEY

pytestmark = pytest.mark.redis

ENV = {"CHAT_API_KEY": API_KEY, "LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    require_cluster_binaries()
    directory: Path = tmp_path_factory.mktemp("redis-tls")
    cluster = RedisClusterServers(masters=3, tls=self_signed(directory))
    cluster.start()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def processes(tls_cluster: RedisClusterServers) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two chat processes linked by the TLS cluster."""
    procs = tuple(ServerProcess(env={**ENV, "REDIS_URL": tls_cluster.url}) for _ in range(2))
    try:
        for proc in procs:
            proc.launch()
        for proc in procs:
            proc.wait_ready()
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.stop(signum=signal.SIGINT)


def test_the_url_names_a_tls_port_of_the_cluster(tls_cluster: RedisClusterServers) -> None:
    assert tls_cluster.url.startswith("rediss+cluster://127.0.0.1:")
    assert int(tls_cluster.url.split(":")[2].split("?")[0]) in tls_cluster.tls_ports


async def test_healthz_reports_the_tls_cluster_up(
    processes: tuple[ServerProcess, ServerProcess], http: aiohttp.ClientSession
) -> None:
    for proc in processes:
        async with http.get(f"{proc.url}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["redis"] == "ok"


async def test_a_room_message_crosses_processes_and_stays_in_history(
    processes: tuple[ServerProcess, ServerProcess], connect: Connect
) -> None:
    one, two = processes
    room = unique("room")
    here, there = await connect(one.url, unique("ann")), await connect(two.url, unique("bob"))
    await join(here, room)
    await join(there, room)
    sent = expect_ok(await here.call("message", {"room": room, "text": "over tls"}))
    assert (await there.next("message"))["id"] == sent["id"]
    late = await connect(two.url, unique("cy"))
    assert [m["id"] for m in (await join(late, room))["history"]] == [sent["id"]]


async def test_a_private_message_reaches_the_other_process_over_tls(
    processes: tuple[ServerProcess, ServerProcess], connect: Connect
) -> None:
    one, two = processes
    ann, bob = unique("ann"), unique("bob")
    sender, recipient = await connect(one.url, ann), await connect(two.url, bob)
    sent = expect_ok(await sender.call("private_message", {"to": bob, "text": "psst"}))
    received = await recipient.next("private_message")
    assert (received["id"], received["from"]) == (sent["id"], ann)
