"""The Limits table: rate limits, payload size, binary data, slow consumers, /metrics."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.support.fixtures import Connect, MakeSettings, StartServer
from tests.support.health import assert_chat_works, metric, rss_bytes, wait_for
from tests.support.process import ServerProcess
from tests.support.rawio import RawPolling, RawSocket, StalledSocket, eio_path
from tests.support.settings import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def rate_limited(ack: Any) -> bool:
    return (
        isinstance(ack, dict)
        and ack.get("ok") is False
        and ack.get("error", {}).get("code") == "rate_limited"
    )


# -- per-connection rate limit -----------------------------------------------------


async def test_a_burst_within_the_limit_is_answered_normally(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=5, rate_per_second=0.5))
    alice = await connect(url, "alice")
    acks = [await alice.call("join", {"room": "lobby"}) for _ in range(5)]
    assert all(ack["ok"] is True for ack in acks)


async def test_an_event_past_the_burst_is_answered_rate_limited_with_retry_after(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=5, rate_per_second=0.5))
    alice = await connect(url, "alice")
    for _ in range(5):
        await alice.call("typing", {"room": "lobby"})
    ack = await alice.call("join", {"room": "lobby"})
    assert rate_limited(ack), ack
    assert 0 < ack["error"]["retry_after"] <= 2
    assert isinstance(ack["error"]["message"], str)


async def test_unknown_and_malformed_events_spend_the_same_allowance(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=4, rate_per_second=0.5))
    alice = await connect(url, "alice")
    await alice.call("no_such_event", {})
    await alice.call("join", "not an object")
    await alice.emit("whatever")
    await alice.call("history", {})
    assert rate_limited(await alice.call("join", {"room": "lobby"}))


async def test_waiting_retry_after_lets_the_next_event_through(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=2, rate_per_second=5))
    alice = await connect(url, "alice")
    await alice.call("join", {"room": "lobby"})
    await alice.call("join", {"room": "lobby"})
    refused = await alice.call("join", {"room": "lobby"})
    assert rate_limited(refused)
    await asyncio.sleep(refused["error"]["retry_after"] + 0.05)
    assert (await alice.call("join", {"room": "lobby"}))["ok"] is True


async def test_the_limit_is_per_connection(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=2, rate_per_second=0.1))
    first = await connect(url, "alice")
    for _ in range(3):
        await first.call("join", {"room": "lobby"})
    second = await connect(url, "alice")
    assert (await second.call("join", {"room": "lobby"}))["ok"] is True


async def test_a_connection_refused_more_than_three_bursts_in_ten_seconds_is_disconnected(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=3, rate_per_second=0.1))
    flooder = await connect(url, "mallory")
    for _ in range(3 + 3 * 3):
        assert not flooder.disconnected.is_set()
        await flooder.call("typing", {"room": "lobby"}, timeout=2)
    await flooder.emit("typing", {"room": "lobby"})
    await flooder.wait_disconnected(5)


async def test_a_flooder_being_disconnected_leaves_everyone_else_chatting(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(rate_burst=3, rate_per_second=0.1))
    flooder = await connect(url, "mallory")
    for _ in range(20):
        if flooder.disconnected.is_set():
            break
        await flooder.emit("typing", {"room": "lobby"})
    await flooder.wait_disconnected(5)
    await assert_chat_works(connect, url)


async def test_a_flood_disconnect_tells_the_client_not_to_reconnect(
    start_server: StartServer, make_settings: MakeSettings
) -> None:
    url = await start_server(make_settings(rate_burst=2, rate_per_second=0.1))
    sock = await RawSocket.open(url)
    try:
        for i in range(9):
            await sock.send(f'42{i}["typing",{{"room":"lobby"}}]')
        frame = await sock.recv_matching(lambda f: f == "41")
        assert frame == "41"
        assert await sock.wait_closed(5)
    finally:
        await sock.close()


async def test_rate_limit_hits_are_counted_in_metrics(
    start_server: StartServer,
    make_settings: MakeSettings,
    connect: Connect,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(make_settings(rate_burst=1, rate_per_second=0.1))
    alice = await connect(url, "alice")
    await alice.call("join", {"room": "lobby"})
    await alice.call("join", {"room": "lobby"})
    await alice.call("join", {"room": "lobby"})
    assert await metric(http, url, "chat_rate_limited_total", {"scope": "socket"}) == 2


# -- REST rate limit ---------------------------------------------------------------


async def emit(
    http: aiohttp.ClientSession, url: str, body: Any, **kw: Any
) -> aiohttp.ClientResponse:
    async with http.post(f"{url}/api/emit", **({"json": body} | kw)) as resp:
        await resp.read()
        return resp


async def test_rest_past_its_rate_answers_429_with_retry_after_and_the_json_error(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_rate_per_second=2))
    body = {"room": "lobby", "text": "hi"}
    assert (await emit(http, url, body, headers=AUTH)).status == 200
    assert (await emit(http, url, body, headers=AUTH)).status == 200
    async with http.post(f"{url}/api/emit", json=body, headers=AUTH) as resp:
        payload = await resp.json()
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
    assert payload["ok"] is False
    assert payload["error"]["code"] == "rate_limited"
    assert payload["error"]["retry_after"] > 0


async def test_rest_with_a_wrong_key_is_401_not_429_and_spends_nothing(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_rate_per_second=1))
    body = {"room": "lobby", "text": "hi"}
    wrong = {"Authorization": "Bearer nope"}
    for _ in range(5):
        assert (await emit(http, url, body, headers=wrong)).status == 401
    assert (await emit(http, url, body, headers=AUTH)).status == 200


async def test_rest_past_its_rate_is_429_before_the_body_is_read(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_rate_per_second=1))
    assert (await emit(http, url, {"room": "lobby", "text": "hi"}, headers=AUTH)).status == 200
    huge = await emit(http, url, None, data=b"x" * (2 * 1024 * 1024), headers=AUTH)
    assert huge.status == 429
    invalid = await emit(http, url, None, data=b"not json", headers=AUTH)
    assert invalid.status == 429


async def test_rest_rate_limit_applies_to_room_reads_and_metrics_alike(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_rate_per_second=2))
    async with http.get(f"{url}/api/rooms/lobby", headers=AUTH) as resp:
        assert resp.status == 200
    async with http.get(f"{url}/metrics", headers=AUTH) as resp:
        assert resp.status == 200
    async with http.get(f"{url}/api/rooms/lobby", headers=AUTH) as resp:
        assert resp.status == 429


# -- payload size ------------------------------------------------------------------


async def test_a_frame_over_max_payload_closes_that_connection(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(max_payload=1024))
    alice = await connect(url, "alice")
    await alice.call("join", {"room": "lobby"})
    await alice.emit("message", {"room": "lobby", "text": "x" * 1500})
    await alice.wait_disconnected(5)


async def test_a_frame_over_max_payload_leaves_the_other_connections_alone(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(max_payload=1024))
    bob = await connect(url, "bob")
    alice = await connect(url, "alice")
    await alice.emit("message", {"room": "lobby", "text": "x" * 1500})
    await alice.wait_disconnected(5)
    assert bob.sio.connected
    await assert_chat_works(connect, url)


async def test_a_frame_at_max_payload_is_accepted(
    start_server: StartServer, make_settings: MakeSettings
) -> None:
    url = await start_server(make_settings(max_payload=1024))
    sock = await RawSocket.open(url)
    try:
        frame = '421["typing",{"room":"' + "r" * 64 + '"}]'
        frame += " " * (1024 - len(frame))
        await sock.send(frame)
        ack = await sock.recv_matching(lambda f: isinstance(f, str) and f.startswith("431"))
        assert ack is not None
    finally:
        await sock.close()


async def test_the_handshake_announces_max_payload(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(max_payload=4096))
    async with http.get(eio_path(url, "polling")) as resp:
        opening = json.loads((await resp.text())[1:])
    assert opening["maxPayload"] == 4096


# -- binary data ---------------------------------------------------------------------


async def test_a_binary_event_header_closes_the_sender_without_waiting_for_attachments(
    chat_url: str,
) -> None:
    sock = await RawSocket.open(chat_url)
    try:
        await sock.send('451-["message",{"room":"lobby","text":{"_placeholder":true,"num":0}}]')
        assert await sock.wait_closed(3)
    finally:
        await sock.close()


async def test_a_binary_ack_header_closes_the_sender(chat_url: str) -> None:
    sock = await RawSocket.open(chat_url)
    try:
        await sock.send('461-1[{"_placeholder":true,"num":0}]')
        assert await sock.wait_closed(3)
    finally:
        await sock.close()


async def test_a_binary_frame_closes_the_sender(chat_url: str) -> None:
    sock = await RawSocket.open(chat_url)
    try:
        await sock.send(b"\x00\x01\x02")
        assert await sock.wait_closed(3)
    finally:
        await sock.close()


async def test_a_socketio_client_emitting_bytes_is_disconnected(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await alice.emit("message", {"room": "lobby", "text": b"\x00\x01"})
    await alice.wait_disconnected(3)


async def test_binary_over_long_polling_ends_the_session(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    poll = await RawPolling.open(http, chat_url)
    assert await poll.post(b'40{"username":"mallory"}') == 200
    assert await poll.post(b"bAAECAw==") == 400
    status, _ = await poll.get(timeout=3)
    assert status == 400


async def test_a_binary_sender_being_closed_leaves_the_others_chatting(
    chat_url: str, connect: Connect
) -> None:
    bob = await connect(chat_url, "bob")
    sock = await RawSocket.open(chat_url)
    try:
        await sock.send('451000000-["message",{"_placeholder":true,"num":0}]')
        assert await sock.wait_closed(3)
    finally:
        await sock.close()
    assert bob.sio.connected
    await assert_chat_works(connect, chat_url)


# -- slow consumers ----------------------------------------------------------------------

STALLED = 4
FLOOD = 4000
#: 2,000 emoji: 8 KB of UTF-8 per message (24 KB if the JSON encoder escapes them).
BIG_TEXT = "\U0001f600" * 2000


@pytest.fixture(scope="module")
def firehose() -> Iterator[ServerProcess]:
    """A server process with the default send-queue cap (1 MiB), for memory figures."""
    server = ServerProcess(
        env={
            "CHAT_API_KEY": API_KEY,
            "CHAT_RATE_BURST": "100000",
            "CHAT_RATE_PER_SECOND": "100000",
            "LOG_LEVEL": "WARNING",
        }
    )
    server.start()
    yield server
    server.stop(signum=signal.SIGINT)


async def test_consumers_that_stop_reading_are_dropped_and_memory_stays_bounded(
    firehose: ServerProcess,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert firehose.pid is not None
    pid, room = firehose.pid, "firehose"
    await assert_chat_works(connect, firehose.url)
    baseline = rss_bytes(pid)
    stalled = [
        await StalledSocket.open("127.0.0.1", firehose.port, f"stalled{i}", room)
        for i in range(STALLED)
    ]
    watcher = await connect(firehose.url, "watcher")
    await watcher.call("join", {"room": room})
    sender = await connect(firehose.url, "sender")
    await sender.call("join", {"room": room})
    peak = 0
    started = time.monotonic()
    for i in range(FLOOD):
        if i % 50 == 49:
            # an acked call now and then keeps the sender in step with the server
            ack = await sender.call("message", {"room": room, "text": BIG_TEXT})
            assert ack["ok"] is True
            peak = max(peak, rss_bytes(pid))
        else:
            await sender.emit("message", {"room": room, "text": BIG_TEXT})
    flood_seconds = time.monotonic() - started

    async def all_dropped() -> bool:
        dropped = await metric(
            http, firehose.url, "chat_forced_disconnects_total", {"reason": "slow_consumer"}
        )
        return dropped == STALLED

    drop_wait = await wait_for(all_dropped, 5)
    for sock in stalled:
        assert await sock.closed_by_server(5)
        sock.close()
    received = 0
    while received < FLOOD:
        await watcher.next("message", timeout=10)
        received += 1
    mib = 1024 * 1024
    with capsys.disabled():
        print(
            f"\n[memory] slow consumers: {STALLED} stalled + 1 reading, {FLOOD} x 8 KB"
            f" messages in {flood_seconds:.1f} s: baseline {baseline / mib:.1f} MiB,"
            f" peak {peak / mib:.1f} MiB (+{(peak - baseline) / mib:.1f}),"
            f" all dropped {drop_wait:.1f} s after the flood"
        )
    # Unbounded, the stalled connections would keep ~28 MB of the flood alive
    # (all of it but what the kernel took), shared between them.
    assert peak - baseline < 14 * mib


async def test_a_reading_client_gets_every_message_while_a_stalled_one_is_dropped(
    firehose: ServerProcess, connect: Connect
) -> None:
    room = "firehose-2"
    stalled = await StalledSocket.open("127.0.0.1", firehose.port, "stalled", room)
    watcher = await connect(firehose.url, "watcher")
    await watcher.call("join", {"room": room})
    sender = await connect(firehose.url, "sender")
    await sender.call("join", {"room": room})
    # Acked one by one (a reader that keeps up must never count as slow), and
    # past what the kernel's socket buffers take (up to 4 MiB here) plus the cap.
    for i in range(800):
        ack = await sender.call("message", {"room": room, "text": f"{i} {BIG_TEXT[:1990]}"})
        assert ack["ok"] is True, ack
    texts = [(await watcher.next("message", timeout=10))["text"] for _ in range(800)]
    assert [int(t.split(" ", 1)[0]) for t in texts] == list(range(800))
    assert await stalled.closed_by_server(5)
    stalled.close()


# -- /metrics ---------------------------------------------------------------------------


async def test_metrics_without_the_key_is_401_with_www_authenticate(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/metrics") as resp:
        body = await resp.json()
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert body["ok"] is False


async def test_metrics_with_a_wrong_key_is_401(chat_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{chat_url}/metrics", headers={"Authorization": "Bearer x"}) as resp:
        assert resp.status == 401


async def test_metrics_without_a_configured_key_is_503(
    start_server: StartServer, make_settings: MakeSettings, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_key=None))
    async with http.get(f"{url}/metrics", headers=AUTH) as resp:
        body = await resp.json()
        assert resp.status == 503
    assert "CHAT_API_KEY" in body["error"]["message"]


async def test_metrics_is_prometheus_text_with_the_chat_series(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/metrics", headers=AUTH) as resp:
        text = await resp.text()
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
    for name in (
        "chat_connections",
        "chat_users",
        "chat_rooms",
        "chat_events_received_total",
        "chat_messages_delivered_total",
        "chat_rejected_inputs_total",
        "chat_rate_limited_total",
        "chat_redis",
        "chat_redis_publish_failures_total",
        "chat_http_requests_total",
    ):
        assert f"# TYPE {name} " in text, name


async def test_metrics_count_connections_users_and_rooms(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    alice, alice_again, bob = (
        await connect(chat_url, "alice"),
        await connect(chat_url, "alice"),
        await connect(chat_url, "bob"),
    )
    await alice.call("join", {"room": "one"})
    await alice_again.call("join", {"room": "two"})
    await bob.call("join", {"room": "two"})
    assert await metric(http, chat_url, "chat_connections") == 3
    assert await metric(http, chat_url, "chat_users") == 2
    assert await metric(http, chat_url, "chat_rooms") == 2


async def test_metrics_count_events_by_type_and_rejections_by_reason(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    alice = await connect(chat_url, "alice")
    await alice.call("join", {"room": "lobby"})
    await alice.call("message", {"room": "elsewhere", "text": "hi"})
    await alice.call("no_such_event", {})
    events = "chat_events_received_total"
    assert await metric(http, chat_url, events, {"event": "join"}) == 1
    assert await metric(http, chat_url, events, {"event": "message"}) == 1
    assert await metric(http, chat_url, events, {"event": "other"}) == 1
    rejected = "chat_rejected_inputs_total"
    assert await metric(http, chat_url, rejected, {"reason": "not_in_room"}) == 1


async def test_metrics_count_deliveries_to_this_processs_connections(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await alice.call("join", {"room": "lobby"})
    await bob.call("join", {"room": "lobby"})
    await alice.call("message", {"room": "lobby", "text": "hi"})
    await bob.next("message")
    delivered = "chat_messages_delivered_total"
    assert await metric(http, chat_url, delivered, {"kind": "message"}) == 2


async def test_metrics_count_rest_requests_by_status(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    await emit(http, chat_url, {"room": "lobby", "text": "hi"}, headers=AUTH)
    await emit(http, chat_url, {"room": "lobby"}, headers=AUTH)
    await emit(http, chat_url, {"room": "lobby", "text": "hi"})
    requests = "chat_http_requests_total"
    assert await metric(http, chat_url, requests, {"status": "200"}) == 1
    assert await metric(http, chat_url, requests, {"status": "400"}) == 1
    assert await metric(http, chat_url, requests, {"status": "401"}) == 1


async def test_metrics_report_redis_as_disabled_without_one(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    assert await metric(http, chat_url, "chat_redis", {"chat_redis": "disabled"}) == 1
