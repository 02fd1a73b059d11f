"""Malformed input at every transport entry point: the process lives, others keep chatting.

One real server process serves the whole module, as it would serve a hostile
internet: each test attacks it through raw WebSocket frames, raw HTTP
handshakes or raw long-polling POSTs, then checks that the process is still
running, that two fresh users can still talk, and that nothing was logged as
an unhandled error.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.fixtures import Connect
from tests.support.health import assert_chat_works, metric, rss_bytes, wait_for
from tests.support.process import ServerProcess
from tests.support.rawio import RawPolling, RawSocket, eio_path
from tests.support.settings import API_KEY

MAX_PAYLOAD = 65536


@pytest.fixture(scope="module")
def target() -> Iterator[ServerProcess]:
    """One chat server process (no Redis) for every attack of this module."""
    server = ServerProcess(
        env={
            "CHAT_API_KEY": API_KEY,
            "CHAT_RATE_BURST": "100000",
            "CHAT_RATE_PER_SECOND": "100000",
            "CHAT_API_RATE_PER_SECOND": "100000",
            "LOG_LEVEL": "WARNING",
        }
    )
    server.start()
    yield server
    server.stop(signum=signal.SIGINT)


@pytest.fixture
async def unharmed(target: ServerProcess, connect: Connect) -> AsyncIterator[ServerProcess]:
    """The target; after the test, asserts it survived whatever the test did to it."""
    log_before = len(target.log_text())
    yield target
    assert target.running, f"server died:\n{target.log_tail()}"
    await assert_chat_works(connect, target.url)
    new_log = target.log_text()[log_before:]
    assert "Traceback" not in new_log, new_log


async def attack(url: str, frames: list[str | bytes], *, join: bool = True) -> RawSocket:
    """Open a raw connection, send ``frames`` one after the other, read for a moment."""
    sock = await RawSocket.open(url, join=join)
    try:
        for frame in frames:
            if sock.closed:
                break
            try:
                await sock.send(frame)
            except ConnectionError:
                break
        await sock.drain(0.3)
    finally:
        await sock.close()
    return sock


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


AFTER_CONNECT: dict[str, list[str | bytes]] = {
    "garbage text": ["hello there", "}{", "\u00ff\u0000"],
    "empty frame": [""],
    "control characters": ["\x00\x01\x02\x7f"],
    "unknown engine.io packet types": ["7", "8abc", "9", "a", "-1", " 4"],
    "engine.io packets out of place": ["0", "5", "6", "3", "3probe", "2probe", "0{}"],
    "unknown socket.io packet types": ["47", "48[]", "49", "4a", "4-"],
    "socket.io event without data": ["42", "421", "42/,"],
    "event as an object": ['42{"event":"join","room":"a"}'],
    "event as a bare string": ['42"join"', '421"join"'],
    "event as a number": ["42 5", '42 ["join"]', "42true"],
    "empty event list": ["42[]", "423[]"],
    "non-string event names": [
        "42[1,{}]",
        "42[null]",
        "42[[]]",
        '42[{"a":1}]',
        "42[true]",
        "425[1.5]",
        "426[-0]",
        '427[{"__proto__":1}]',
    ],
    "reserved event names": ['42["connect",{}]', '42["disconnect"]', '421["connect"]'],
    "event name of 10000 characters": ['421["' + "e" * 10000 + '",{}]'],
    "deep nesting in the payload": ['421["join",' + deep(30000) + "]"],
    "deep nesting as the packet": ["42" + deep(30000), "42" + "[" * 60000],
    "deep object nesting": ['421["message",' + '{"a":' * 10000 + "1" + "}" * 10000 + "]"],
    "invalid json": [
        '42["join",{"room":]',
        '42["join",NaN]',
        '42["join",Infinity]',
        "42['join']",
        '42["join"',
    ],
    "huge numbers": [
        '421["history",{"room":"a","limit":1e999}]',
        '422["join",' + "9" * 5000 + "]",
    ],
    "huge ack id": [
        "42" + "9" * 99 + '["history",{"room":"x"}]',
        "42" + "9" * 150 + '["join",{"room":"x"}]',
    ],
    "acks for calls never made": ['43999["x"]', '43["x"]', "43", "431"],
    "binary header with an absurd attachment count": [
        '459999999999-["message",{"_placeholder":true,"num":0}]',
        '451000000-["message",{"_placeholder":true,"num":0}]',
        '461000000-["x"]',
    ],
    "binary header followed by attachments": [
        '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        b"\x00" * 1000,
        b"\x01" * 1000,
    ],
    "bare binary frames": [b"\x00\x01\x02", b"", b"4" + b"2" * 100],
    "namespace abuse": [
        "40/nope,{}",
        "40/" + "x" * 1000 + ",",
        '42/nope,["join",{"room":"a"}]',
        '40{"username":"mallory"}',
        "40/?x=1,",
    ],
    "disconnect then keep talking": ["41", '421["join",{"room":"a"}]', "42[1]"],
    "engine.io close then keep talking": ["1", '421["join",{"room":"a"}]'],
    "lone surrogates": [
        '421["message",{"room":"a","text":"\\ud800"}]',
        '422["join",{"room":"\\udfff"}]',
        '423["private_message",{"to":"alice","text":"\\ud83d"}]',
    ],
    "a frame just under the payload limit": [
        '421["typing",{"room":"' + "r" * (MAX_PAYLOAD - 40) + '"}]'
    ],
    "a frame over the payload limit": ["4" + "x" * (MAX_PAYLOAD + 10)],
}


@pytest.mark.parametrize("frames", AFTER_CONNECT.values(), ids=AFTER_CONNECT.keys())
async def test_malformed_frames_after_connecting_harm_no_one(
    unharmed: ServerProcess, frames: list[str | bytes]
) -> None:
    await attack(unharmed.url, frames)


BEFORE_CONNECT: dict[str, list[str | bytes]] = {
    "event before the namespace connect": ['421["join",{"room":"a"}]', "42[1]"],
    "connect with a non-object auth": ['40"mallory"', "40[1,2]", "40 5", "40null"],
    "connect with a bad username": ['40{"username":5}', '40{"username":"' + "x" * 10000 + '"}'],
    "connect with deep nesting": ["40" + deep(30000)],
    "connect with invalid json": ['40{"username":', "40{'username':'a'}"],
    "binary before connecting": [b"\x00\xff"],
    "binary header before connecting": ['451-["x",{"_placeholder":true,"num":0}]'],
}


@pytest.mark.parametrize("frames", BEFORE_CONNECT.values(), ids=BEFORE_CONNECT.keys())
async def test_malformed_frames_before_connecting_harm_no_one(
    unharmed: ServerProcess, frames: list[str | bytes]
) -> None:
    await attack(unharmed.url, frames, join=False)


async def test_lone_surrogate_text_does_not_break_the_recipients_connection(
    unharmed: ServerProcess, connect: Connect
) -> None:
    bob = await connect(unharmed.url, "bob")
    await bob.call("join", {"room": "surrogates"})
    mallory = await RawSocket.open(unharmed.url)
    await mallory.call("join", {"room": "surrogates"})
    await mallory.call("message", {"room": "surrogates", "text": "\ud800 x"}, ack_id=2)
    await mallory.close()
    alice = await connect(unharmed.url, "alice")
    await alice.call("join", {"room": "surrogates"})
    await alice.call("message", {"room": "surrogates", "text": "after"})
    texts = []
    while "after" not in texts:
        texts.append((await bob.next("message"))["text"])
    assert bob.sio.connected


async def test_unknown_event_with_an_ack_is_answered_unknown_event(
    unharmed: ServerProcess,
) -> None:
    sock = await RawSocket.open(unharmed.url)
    try:
        reply = await sock.call("no_such_event", {"x": 1})
    finally:
        await sock.close()
    assert reply["ok"] is False
    assert reply["error"]["code"] == "unknown_event"


async def test_non_string_event_name_with_an_ack_gets_an_error_answer(
    unharmed: ServerProcess,
) -> None:
    sock = await RawSocket.open(unharmed.url)
    try:
        reply = await sock.call(12345, {"room": "a"})
    finally:
        await sock.close()
    assert reply["ok"] is False
    assert isinstance(reply["error"]["code"], str)


HANDSHAKES: dict[str, str] = {
    "old protocol version": "/socket.io/?EIO=3&transport=polling",
    "non-numeric protocol version": "/socket.io/?EIO=x&transport=polling",
    "no protocol version": "/socket.io/?transport=polling",
    "unknown transport": "/socket.io/?EIO=4&transport=carrier-pigeon",
    "websocket without the upgrade": "/socket.io/?EIO=4&transport=websocket",
    "unknown session": "/socket.io/?EIO=4&transport=polling&sid=nope",
    "bad jsonp index": "/socket.io/?EIO=4&transport=polling&j=abc",
    "repeated parameters": "/socket.io/?EIO=4&EIO=4&transport=polling&transport=x",
    "percent garbage": "/socket.io/?EIO=%ff%fe&transport=%00",
    "request line over the limit": "/socket.io/?EIO=4&transport=polling&x=" + "a" * 9000,
}


@pytest.mark.parametrize("path", HANDSHAKES.values(), ids=HANDSHAKES.keys())
async def test_bad_handshake_parameters_are_refused_without_a_server_error(
    unharmed: ServerProcess, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(unharmed.url + path) as resp:
        await resp.read()
        assert 400 <= resp.status < 500, resp.status


async def test_jsonp_polling_is_not_an_open_door(
    unharmed: ServerProcess, http: aiohttp.ClientSession
) -> None:
    async with http.get(unharmed.url + "/socket.io/?EIO=4&transport=polling&j=0") as resp:
        body = await resp.text()
    assert resp.status < 500
    # if JSONP is answered at all it must not echo attacker-chosen script
    assert "alert(" not in body


async def test_websocket_upgrade_on_a_polling_session_with_garbage_probe_is_harmless(
    unharmed: ServerProcess, http: aiohttp.ClientSession
) -> None:
    poll = await RawPolling.open(http, unharmed.url)
    async with http.ws_connect(eio_path(unharmed.url, "websocket", sid=poll.sid)) as ws:
        await ws.send_str("2not-a-probe")
        await ws.send_str("5")
        await ws.send_bytes(b"\x00\x01")
        await asyncio.sleep(0.2)


POSTS: dict[str, bytes] = {
    "too many packets": "\x1e".join(["6"] * 17).encode(),
    "many more packets": "\x1e".join(['42["x"]'] * 5000).encode(),
    "invalid utf-8": b"4\xff\xfe\xfd",
    "truncated utf-8": b'42["x\xe2\x82',
    "empty packets": b"\x1e\x1e\x1e",
    "garbage": b"hello there",
    "jsonp-looking body": b"d=%ZZ",
    "binary base64 packet": b"bAAECAw==",
    "bad base64": b"b!!!!",
    "absurd attachment count": b'451000000-["x",{"_placeholder":true,"num":0}]',
}


@pytest.mark.parametrize("body", POSTS.values(), ids=POSTS.keys())
async def test_malformed_polling_posts_harm_no_one(
    unharmed: ServerProcess, http: aiohttp.ClientSession, body: bytes
) -> None:
    poll = await RawPolling.open(http, unharmed.url)
    status = await poll.post(b'40{"username":"mallory"}')
    assert status == 200
    status = await poll.post(body)
    assert status < 500


async def test_polling_post_over_the_payload_limit_is_refused(
    unharmed: ServerProcess, http: aiohttp.ClientSession
) -> None:
    poll = await RawPolling.open(http, unharmed.url)
    status = await poll.post(b"4" + b"x" * (MAX_PAYLOAD + 10))
    assert 400 <= status < 500


async def test_polling_post_with_a_lying_content_length_is_refused(
    unharmed: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as http:
        poll = await RawPolling.open(http, unharmed.url)
        host, port = "127.0.0.1", unharmed.port
        reader, writer = await asyncio.open_connection(host, port)
        path = poll.url.split(f":{port}", 1)[1]
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 99999999999\r\n"
            "Content-Type: text/plain\r\n\r\n6".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
    assert head.split()[1].startswith(b"4"), head


# -- memory -----------------------------------------------------------------------

ATTACK_FRAMES: list[str | bytes] = [
    *('421["message",{"room":"' + "r" * (MAX_PAYLOAD - 60) + '","text":"x"}]' for _ in range(4)),
    '451000000-["message",{"_placeholder":true,"num":0}]',
    '421["join",' + deep(20000) + "]",
    *(f'42{i}["nonsense{i}",{{"x":{i}}}]' for i in range(20)),
    "4" + "x" * (MAX_PAYLOAD + 10),
]


async def _attack_round(url: str, attackers: int) -> int:
    """Open ``attackers`` raw connections at once, have each misbehave, then leave."""
    socks = await asyncio.gather(*(RawSocket.open(url) for _ in range(attackers)))

    async def misbehave(sock: RawSocket) -> None:
        for frame in ATTACK_FRAMES:
            if sock.closed:
                return
            try:
                await sock.send(frame)
            except ConnectionError:
                return

    try:
        await asyncio.gather(*(misbehave(s) for s in socks))
        await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*(s.close() for s in socks))
    return len(socks)


async def test_memory_returns_near_its_baseline_after_attackers_leave(
    unharmed: ServerProcess, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    assert unharmed.pid is not None
    pid = unharmed.pid
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.05)

    async def no_connections_left() -> bool:
        return await metric(http, unharmed.url, "chat_connections") == 0

    # Each attacker sends over 256 KB: 200 of them leaking what they sent
    # would add 50 MB. Two rounds warm the allocator up, so the baseline already includes what
    # the process keeps for reuse; only growth beyond it would be a leak.
    for _ in range(2):
        await _attack_round(unharmed.url, 100)
        await wait_for(no_connections_left, 15)
    await asyncio.sleep(1)
    baseline = rss_bytes(pid)
    sampler = asyncio.create_task(sample())
    try:
        for _ in range(2):
            await _attack_round(unharmed.url, 100)
    finally:
        sampler.cancel()
    await wait_for(no_connections_left, 15)
    await asyncio.sleep(1)
    after = rss_bytes(pid)
    mib = 1024 * 1024
    with capsys.disabled():
        print(
            "\n[memory] malformed input, 2 rounds x 100 attackers:"
            f" baseline {baseline / mib:.1f} MiB, peak {peak / mib:.1f} MiB,"
            f" after {after / mib:.1f} MiB"
        )
    assert after - baseline < 16 * mib, (baseline, peak, after)
