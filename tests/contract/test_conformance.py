"""Protocol conformance: every MUST of Engine.IO v4 and Socket.IO v5, on the wire.

One test per requirement of the two protocol documents
(https://github.com/socketio/engine.io-protocol, README.md, and
https://github.com/socketio/socket.io-protocol, Readme.md), each named as the
sentence it checks and grouped by the section of the document it comes from.
The tests speak raw frames only: aiohttp WebSockets and plain HTTP requests,
no Socket.IO client library, so that nothing answers a ping or retries behind
the test's back. docs/conformance.md says what is checked here, what the
official test suite (scripts/conformance) checks, and the deliberate contract
choices (binary data is refused) asserted at the end of this module.

Every wait is bounded by a few seconds: the heartbeat and handshake-timeout
tests run servers with pings and timeouts of a fraction of a second.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.support.conformance import SEP, Polling, Wire, endpoint, packets
from tests.support.fixtures import StartServer
from tests.support.settings import chat_settings

#: Small heartbeat values (seconds) for the heartbeat tests; the handshake
#: announces them in milliseconds.
PING_INTERVAL = 0.4
PING_TIMEOUT = 0.8
#: Seconds the connect-timeout tests give a connection to send its CONNECT.
CONNECT_TIMEOUT = 1.0
#: Slack (seconds) allowed past a deadline the protocol sets.
MARGIN = 0.5
#: Seconds within which "promptly" must have happened (the default heartbeat
#: would end a lingering connection only after 45 s).
PROMPTLY = 1.0
#: A small maxPayload, so that the over-the-limit tests send little.
MAX_PAYLOAD = 4096

History = '["history",{"room":"lobby"}]'
T = TypeVar("T")


# -- servers and connections -----------------------------------------------------------


@pytest.fixture
async def url(start_server: StartServer) -> str:
    """A server with the default heartbeat (25 s / 20 s) and a small maxPayload."""
    return await start_server(chat_settings(max_payload=MAX_PAYLOAD))


@pytest.fixture
async def fast_url(start_server: StartServer) -> str:
    """A server whose heartbeat runs every ``PING_INTERVAL`` seconds."""
    return await start_server(
        chat_settings(
            max_payload=MAX_PAYLOAD, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT
        )
    )


@pytest.fixture
async def impatient_url(start_server: StartServer) -> str:
    """A server that closes connections not connected to a namespace after a second."""
    return await start_server(chat_settings(connect_timeout=CONNECT_TIMEOUT))


class Wires:
    """Opens raw WebSockets and closes them all when the test ends."""

    def __init__(self) -> None:
        self.opened: list[Wire] = []

    async def _keep(self, opening: Awaitable[Wire]) -> Wire:
        wire = await opening
        self.opened.append(wire)
        return wire

    async def connect(self, base_url: str, query: str = "EIO=4&transport=websocket") -> Wire:
        return await self._keep(Wire.connect(base_url, query))

    async def opened_wire(self, base_url: str, query: str = "EIO=4&transport=websocket") -> Wire:
        return await self._keep(Wire.opened(base_url, query))

    async def joined(self, base_url: str, username: str = "alice") -> Wire:
        return await self._keep(Wire.joined(base_url, username))

    async def close_all(self) -> None:
        await asyncio.gather(*(wire.close() for wire in self.opened), return_exceptions=True)


@pytest.fixture
async def wires() -> AsyncIterator[Wires]:
    opened = Wires()
    yield opened
    await opened.close_all()


class Background:
    """Requests a test leaves running while it does something else.

    Every one is awaited (or cancelled) before the test ends, so none can end
    later with an exception nobody retrieves.
    """

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, job: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(job)
        self.tasks.append(task)
        return task

    async def finish(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    jobs = Background()
    yield jobs
    await jobs.finish()


async def outcome(task: asyncio.Task[tuple[int, str]], timeout: float) -> str:  # noqa: ASYNC109
    """What a background GET came to within ``timeout`` seconds, for messages."""
    try:
        status, body = await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        return "still pending"
    except (aiohttp.ClientError, OSError) as exc:
        return f"failed: {exc!r}"
    return f"{status} {body!r}"


async def status_of(
    http: aiohttp.ClientSession, method: str, url: str, body: bytes | None = None
) -> tuple[int, str]:
    async with http.request(
        method, url, data=body, timeout=aiohttp.ClientTimeout(total=3)
    ) as resp:
        return resp.status, await resp.text(errors="replace")


async def websocket_refused(base_url: str, query: str) -> str | None:
    """How a WebSocket with ``query`` was refused, or ``None`` if it got an open packet."""
    try:
        wire = await Wire.connect(base_url, query)
    except aiohttp.WSServerHandshakeError as exc:
        return f"upgrade refused with HTTP {exc.status}"
    try:
        frame = await wire.read(2)
    except TimeoutError:
        return "no frame within 2 s, and still open"
    finally:
        await wire.close()
    if frame is None:
        return f"closed (code {wire.close_code}) without an open packet"
    if isinstance(frame, str) and frame.startswith("0"):
        return None
    return f"first frame {frame!r}"


async def assert_session_gone(polling: Polling) -> None:
    """The session is closed: a GET with its sid answers 400."""
    status, body = await polling.get(2)
    assert status == 400, f"GET on the closed session answered {status} {body!r}"


async def assert_still_served(wire: Wire, ack_id: int = 9) -> None:
    """The connection is open and connected: an event with an ack is answered."""
    reply = await wire.call(f"42{ack_id}{History}", f"43{ack_id}")
    assert json.loads(reply[len(f"43{ack_id}") :])[0]["ok"] is True


# ======================================================================================
# Engine.IO v4: Handshake
# ======================================================================================


async def test_a_polling_handshake_answers_200_with_an_open_packet(
    url: str, http: aiohttp.ClientSession
) -> None:
    status, body = await status_of(http, "GET", endpoint(url))
    assert status == 200, body
    assert body.startswith("0"), body
    assert isinstance(json.loads(body[1:]), dict)


async def test_a_websocket_handshake_sends_an_open_packet_as_its_first_frame(
    url: str, wires: Wires
) -> None:
    wire = await wires.connect(url)
    first = await wire.expect()
    assert first.startswith("0"), first
    assert isinstance(json.loads(first[1:]), dict)


async def test_the_open_packet_has_exactly_sid_upgrades_ping_interval_ping_timeout_and_max_payload(
    url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    keys = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    polling = await Polling.open(http, url)
    wire = await wires.opened_wire(url)
    assert set(polling.handshake) == keys
    assert set(wire.handshake) == keys


async def test_the_sid_is_a_non_empty_string_unique_to_each_session(
    url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    sids = [(await Polling.open(http, url)).handshake["sid"] for _ in range(2)]
    sids += [(await wires.opened_wire(url)).handshake["sid"] for _ in range(2)]
    assert all(isinstance(sid, str) and sid for sid in sids), sids
    assert len(set(sids)) == 4, sids


async def test_upgrades_is_a_list_of_strings_naming_websocket_over_polling(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, url)
    assert polling.handshake["upgrades"] == ["websocket"]


async def test_upgrades_is_an_empty_list_over_websocket(url: str, wires: Wires) -> None:
    wire = await wires.opened_wire(url)
    assert wire.handshake["upgrades"] == []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


async def test_timings_and_max_payload_are_numbers_defaulting_to_25000_20000_and_65536(
    chat_url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    for handshake in [
        (await Polling.open(http, chat_url)).handshake,
        (await wires.opened_wire(chat_url)).handshake,
    ]:
        values = [handshake[k] for k in ("pingInterval", "pingTimeout", "maxPayload")]
        assert all(_is_number(v) for v in values), handshake
        assert values == [25000, 20000, 65536], handshake


async def test_ping_interval_and_ping_timeout_are_the_configured_values_in_milliseconds(
    fast_url: str, wires: Wires
) -> None:
    handshake = (await wires.opened_wire(fast_url)).handshake
    assert handshake["pingInterval"] == PING_INTERVAL * 1000
    assert handshake["pingTimeout"] == PING_TIMEOUT * 1000
    assert handshake["maxPayload"] == MAX_PAYLOAD


async def test_a_post_with_the_handshake_sid_is_answered_200_ok(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, url)
    status, body = await polling.post('40{"username":"alice"}')
    assert (status, body) == (200, "ok")


# ======================================================================================
# Engine.IO v4: Transports (query parameters, methods, sessions) -> HTTP 400
# ======================================================================================

BAD_EIO = {
    "missing": "transport=polling",
    "not a number": "EIO=abc&transport=polling",
    "version 3": "EIO=3&transport=polling",
    "version 5": "EIO=5&transport=polling",
}


@pytest.mark.parametrize("query", BAD_EIO.values(), ids=BAD_EIO.keys())
async def test_a_request_without_a_valid_eio_is_refused_with_400(
    url: str, http: aiohttp.ClientSession, query: str
) -> None:
    status, body = await status_of(http, "GET", endpoint(url, query))
    assert status == 400, body


BAD_TRANSPORT = {"missing": "EIO=4", "empty": "EIO=4&transport=", "unknown": "EIO=4&transport=abc"}


@pytest.mark.parametrize("query", BAD_TRANSPORT.values(), ids=BAD_TRANSPORT.keys())
async def test_a_request_without_a_known_transport_is_refused_with_400(
    url: str, http: aiohttp.ClientSession, query: str
) -> None:
    status, body = await status_of(http, "GET", endpoint(url, query))
    assert status == 400, body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_a_request_with_an_unsupported_method_is_refused_with_400(
    url: str, http: aiohttp.ClientSession, method: str
) -> None:
    status, body = await status_of(http, method, endpoint(url), b"4hello")
    assert status == 400, body


async def test_a_post_without_a_sid_is_refused_with_400(
    url: str, http: aiohttp.ClientSession
) -> None:
    status, body = await status_of(http, "POST", endpoint(url), b"40")
    assert status == 400, body


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_request_with_an_unknown_sid_is_refused_with_400(
    url: str, http: aiohttp.ClientSession, method: str
) -> None:
    query = "EIO=4&transport=polling&sid=no-such-session"
    status, body = await status_of(http, method, endpoint(url, query), b"40")
    assert status == 400, body


BAD_WEBSOCKET = {
    "eio missing": "transport=websocket",
    "eio not a number": "EIO=abc&transport=websocket",
    "transport missing": "EIO=4",
    "transport unknown": "EIO=4&transport=abc",
    "sid unknown": "EIO=4&transport=websocket&sid=no-such-session",
}


@pytest.mark.parametrize("query", BAD_WEBSOCKET.values(), ids=BAD_WEBSOCKET.keys())
async def test_a_websocket_without_valid_query_parameters_is_closed(url: str, query: str) -> None:
    assert await websocket_refused(url, query) is not None


async def test_a_second_concurrent_get_is_refused_with_400_and_closes_the_session(
    url: str, http: aiohttp.ClientSession, background: Background
) -> None:
    polling = await Polling.open(http, url)
    first = background.start(polling.get())
    await asyncio.sleep(0.2)
    status, body = await polling.get()
    first_came_to = await outcome(first, PROMPTLY)
    assert status == 400, f"second GET answered {status} {body!r}; first GET {first_came_to}"
    assert first_came_to != "still pending", "the first GET was left hanging"
    await assert_session_gone(polling)


async def test_a_second_concurrent_post_is_refused_with_400_and_closes_the_session(
    url: str, http: aiohttp.ClientSession, background: Background
) -> None:
    polling = await Polling.joined(http, url)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'421["history",'
        await release.wait()
        yield b'{"room":"lobby"}]'

    async def first_post() -> int:
        async with http.post(
            polling.url, data=slow_body(), timeout=aiohttp.ClientTimeout(total=5)
        ) as resp:
            await resp.read()
            return resp.status

    first = background.start(first_post())
    await asyncio.sleep(0.2)
    try:
        second = await polling.post_or_cut(f"422{History}")
    finally:
        release.set()
    with_first: Any = await asyncio.gather(first, return_exceptions=True)
    assert second == 400, f"second POST answered {second}; first POST {with_first}"
    await assert_session_gone(polling)


# ======================================================================================
# Engine.IO v4: Upgrade
# ======================================================================================


async def test_an_upgrade_probe_is_answered_3probe_and_the_pending_get_gets_a_noop(
    url: str, http: aiohttp.ClientSession, wires: Wires, background: Background
) -> None:
    polling = await Polling.open(http, url)
    pending = background.start(polling.get())
    await asyncio.sleep(0.2)
    wire = await wires.connect(url, f"EIO=4&transport=websocket&sid={polling.sid}")
    await wire.send("2probe")
    assert await wire.expect() == "3probe"
    assert await outcome(pending, PROMPTLY) == "200 '6'"


async def test_after_the_upgrade_packet_messages_flow_over_the_websocket(
    url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    polling = await Polling.joined(http, url)
    wire = await wires.connect(url, f"EIO=4&transport=websocket&sid={polling.sid}")
    await wire.send("2probe")
    assert await wire.expect() == "3probe"
    status, body = await polling.get()
    assert (status, body) == (200, "6")
    await wire.send("5")
    await assert_still_served(wire)


async def test_after_the_upgrade_a_polling_request_with_the_same_sid_is_refused_with_400(
    url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    polling = await Polling.joined(http, url)
    wire = await wires.connect(url, f"EIO=4&transport=websocket&sid={polling.sid}")
    await wire.send("2probe")
    assert await wire.expect() == "3probe"
    await polling.get()  # the noop
    await wire.send("5")
    await assert_still_served(wire, 1)
    await assert_session_gone(polling)
    await assert_still_served(wire, 2)


async def test_a_second_websocket_for_an_upgraded_session_is_closed(
    url: str, http: aiohttp.ClientSession, wires: Wires
) -> None:
    polling = await Polling.joined(http, url)
    query = f"EIO=4&transport=websocket&sid={polling.sid}"
    wire = await wires.connect(url, query)
    await wire.send("2probe")
    assert await wire.expect() == "3probe"
    await polling.get()  # the noop
    await wire.send("5")
    await assert_still_served(wire, 1)
    refusal = await websocket_refused(url, query)
    assert refusal is not None and refusal.startswith("closed"), refusal  # as the reference does
    await assert_still_served(wire, 2)


# ======================================================================================
# Engine.IO v4: Heartbeat
# ======================================================================================


async def test_the_server_pings_over_websocket_and_a_client_answering_stays_connected(
    fast_url: str, wires: Wires
) -> None:
    wire = await wires.opened_wire(fast_url)
    for _ in range(3):
        assert await wire.expect(PING_INTERVAL + MARGIN) == "2"
        await wire.send("3")
    assert not await wire.closes_within(PING_TIMEOUT + MARGIN, pong=True)


async def test_the_server_pings_over_polling_and_a_client_answering_stays_connected(
    fast_url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, fast_url)
    for _ in range(3):
        assert await polling.get(PING_INTERVAL + MARGIN + 1) == (200, "2")
        assert (await polling.post("3"))[0] == 200
    # Answered three times, the session is still there for a fourth ping.
    assert await polling.get(PING_INTERVAL + MARGIN + 1) == (200, "2")


async def test_a_websocket_client_that_stops_answering_pings_is_closed_after_interval_plus_timeout(
    fast_url: str, wires: Wires
) -> None:
    wire = await wires.opened_wire(fast_url)
    deadline = PING_INTERVAL + PING_TIMEOUT
    closed = await wire.closes_within(deadline + MARGIN + 1)
    lifetime = wire.lifetime
    assert closed, f"still open after {deadline + MARGIN + 1} s; frames {wire.frames!r}"
    assert lifetime is not None
    assert deadline - 0.1 <= lifetime <= deadline + MARGIN, (
        f"closed after {lifetime:.2f} s, expected {deadline:.2f} s; frames {wire.frames!r}"
    )


async def test_a_polling_client_that_stops_answering_pings_is_closed_after_interval_plus_timeout(
    fast_url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, fast_url)
    deadline = PING_INTERVAL + PING_TIMEOUT
    assert await polling.get(PING_INTERVAL + MARGIN) == (200, "2")
    # No PONG. The next GET waits on the session; the server ends it at the deadline.
    try:
        status, body = await polling.get(deadline + MARGIN + 1)
    except TimeoutError:
        status, body = 0, "(still pending)"
    ended = time.monotonic() - polling.opened_at
    assert ended <= deadline + MARGIN, (
        f"pending GET ended after {ended:.2f} s ({status} {body!r}), expected {deadline:.2f} s"
    )
    await assert_session_gone(polling)


async def test_a_polling_client_that_never_polls_is_closed_after_interval_plus_timeout(
    fast_url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, fast_url)
    await asyncio.sleep(PING_INTERVAL + PING_TIMEOUT + MARGIN)
    await assert_session_gone(polling)


# ======================================================================================
# Engine.IO v4: Close (either side)
# ======================================================================================


async def test_a_websocket_client_close_packet_closes_the_connection_promptly(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    await wire.send("1")
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"


async def test_a_polling_client_close_packet_answers_the_pending_get_with_a_noop_and_ends_it(
    url: str, http: aiohttp.ClientSession, background: Background
) -> None:
    polling = await Polling.joined(http, url)
    pending = background.start(polling.get())
    await asyncio.sleep(0.2)
    assert (await polling.post("1"))[0] == 200
    assert await outcome(pending, PROMPTLY) == "200 '6'"
    await assert_session_gone(polling)


async def test_a_polling_session_the_server_closes_answers_its_pending_get_and_then_400(
    impatient_url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, impatient_url)
    try:
        status, body = await polling.get(CONNECT_TIMEOUT + MARGIN + 1)
    except TimeoutError:
        status, body = 0, "(still pending)"
    assert status in (200, 400), f"pending GET answered {status} {body!r}"
    await assert_session_gone(polling)


# ======================================================================================
# Engine.IO v4: Packet encoding
# ======================================================================================


async def test_packets_of_one_polling_post_are_split_on_the_record_separator(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, url)
    body = SEP.join(['40{"username":"alice"}', f"421{History}", '422["no_such_event",{}]'])
    assert (await polling.post(body))[0] == 200
    seen: list[str] = []
    while not any(p.startswith("432") for p in seen):
        status, payload = await polling.get()
        assert status == 200, (status, payload, seen)
        seen += packets(payload)
    kinds = [p[:3] if p.startswith("43") else p[:2] for p in seen]
    assert kinds == ["40", "42", "431", "432"], seen


async def test_packets_of_one_polling_response_are_joined_by_the_record_separator(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.joined(http, url)
    body = SEP.join(f"42{n}{History}" for n in range(1, 4))
    assert (await polling.post(body))[0] == 200
    await asyncio.sleep(0.3)
    status, payload = await polling.get()
    assert status == 200
    assert SEP in payload, payload
    assert [p[:3] for p in packets(payload)] == ["431", "432", "433"], payload


@pytest.mark.parametrize("body", ["abc", "", "9", "4hello\x1e"], ids=repr)
async def test_an_invalid_polling_packet_is_refused_with_400_and_closes_the_session(
    url: str, http: aiohttp.ClientSession, body: str
) -> None:
    polling = await Polling.joined(http, url)
    status = await polling.post_or_cut(body)
    assert status in (400, None), f"POST {body!r} answered {status}"
    await assert_session_gone(polling)


@pytest.mark.parametrize("frame", ["abc", "", "9", "4hello"], ids=repr)
async def test_an_invalid_websocket_packet_closes_the_connection(
    url: str, wires: Wires, frame: str
) -> None:
    wire = await wires.joined(url)
    await wire.send(frame)
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"


async def test_a_websocket_frame_larger_than_max_payload_closes_only_that_connection(
    url: str, wires: Wires
) -> None:
    bystander = await wires.joined(url, "bob")
    wire = await wires.joined(url)
    await wire.send("4" + "x" * MAX_PAYLOAD)  # MAX_PAYLOAD + 1 bytes
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"
    await assert_still_served(bystander)


async def test_a_websocket_frame_of_exactly_max_payload_keeps_the_connection(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    frame = '421["typing",{"room":"' + "r" * MAX_PAYLOAD
    frame = frame[: MAX_PAYLOAD - 3] + '"}]'
    assert len(frame.encode()) == MAX_PAYLOAD
    reply = await wire.call(frame, "431")
    assert json.loads(reply[3:])[0]["ok"] is False  # an invalid room, answered
    await assert_still_served(wire)


async def test_a_polling_post_larger_than_max_payload_closes_only_that_session(
    url: str, http: aiohttp.ClientSession
) -> None:
    bystander = await Polling.joined(http, url, "bob")
    polling = await Polling.joined(http, url)
    status = await polling.post_or_cut("4" + "x" * MAX_PAYLOAD)
    assert status in (400, 413, None), f"oversized POST answered {status}"
    await assert_session_gone(polling)
    assert (await bystander.post(f"421{History}"))[0] == 200
    status, body = await bystander.get()
    assert status == 200 and body.startswith("431"), (status, body)


# ======================================================================================
# Socket.IO v5: Connection to a namespace
# ======================================================================================


async def test_a_connect_to_the_default_namespace_is_answered_connect_with_a_string_sid(
    url: str, wires: Wires
) -> None:
    wire = await wires.opened_wire(url)
    await wire.send('40{"username":"alice"}')
    reply = await wire.expect()
    assert reply.startswith("40{"), reply
    payload = json.loads(reply[2:])
    assert set(payload) == {"sid"}, reply
    assert isinstance(payload["sid"], str) and payload["sid"], reply


async def test_the_welcome_event_follows_the_connect_reply(url: str, wires: Wires) -> None:
    wire = await wires.opened_wire(url)
    await wire.send('40{"username":"alice"}')
    assert (await wire.expect()).startswith("40{")
    assert json.loads((await wire.expect())[2:]) == ["welcome", {"user": "alice"}]


async def test_a_connect_over_polling_is_answered_connect_then_welcome(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, url)
    assert (await polling.post('40{"username":"alice"}'))[0] == 200
    seen: list[str] = []
    while len(seen) < 2:
        status, body = await polling.get()
        assert status == 200
        seen += packets(body)
    assert seen[0].startswith("40{") and set(json.loads(seen[0][2:])) == {"sid"}, seen
    assert seen[1] == '42["welcome",{"user":"alice"}]', seen


def _connect_error(frame: str, prefix: str) -> dict[str, Any]:
    assert frame.startswith(prefix), f"expected {prefix}..., got {frame!r}"
    payload = json.loads(frame[len(prefix) :])
    assert isinstance(payload, dict), f"CONNECT_ERROR payload is not an object: {frame!r}"
    assert isinstance(payload.get("message"), str) and payload["message"], frame
    return payload


@pytest.mark.parametrize("auth", ["", "{}", '{"username":5}'], ids=["none", "empty", "not a name"])
async def test_a_refused_connect_is_answered_connect_error_with_a_message_object(
    url: str, wires: Wires, auth: str
) -> None:
    wire = await wires.opened_wire(url)
    await wire.send("40" + auth)
    _connect_error(await wire.expect(), "44")


@pytest.mark.parametrize("packet", ["40/random", "40/random,", '40/random,{"username":"alice"}'])
async def test_a_connect_to_an_unknown_namespace_is_answered_connect_error_with_a_message_object(
    url: str, wires: Wires, packet: str
) -> None:
    wire = await wires.opened_wire(url)
    await wire.send(packet)
    _connect_error(await wire.expect(), "44/random,")


NOT_CONNECT_FIRST = {
    "event": f"42{History}",
    "event with an ack id": f"421{History}",
    "ack": "431[]",
    "disconnect": "41",
    "unknown packet type": "4abc",
}


@pytest.mark.parametrize("packet", NOT_CONNECT_FIRST.values(), ids=NOT_CONNECT_FIRST.keys())
async def test_a_connection_whose_first_packet_is_not_connect_is_closed(
    url: str, wires: Wires, packet: str
) -> None:
    wire = await wires.opened_wire(url)
    await wire.send(packet)
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"


async def test_a_websocket_that_never_sends_connect_is_closed_after_the_connect_timeout(
    impatient_url: str, wires: Wires
) -> None:
    wire = await wires.opened_wire(impatient_url)
    closed = await wire.closes_within(CONNECT_TIMEOUT + MARGIN + 1, pong=True)
    assert closed, f"still open; frames {wire.frames!r}"
    assert wire.lifetime is not None
    assert CONNECT_TIMEOUT - 0.1 <= wire.lifetime <= CONNECT_TIMEOUT + MARGIN, wire.lifetime


async def test_a_polling_session_that_never_sends_connect_is_closed_after_the_connect_timeout(
    impatient_url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.open(http, impatient_url)
    await asyncio.sleep(CONNECT_TIMEOUT + MARGIN)
    await assert_session_gone(polling)


async def test_a_connected_websocket_outlives_the_connect_timeout(
    impatient_url: str, wires: Wires
) -> None:
    wire = await wires.joined(impatient_url)
    assert not await wire.closes_within(CONNECT_TIMEOUT + MARGIN, pong=True)
    await assert_still_served(wire)


# ======================================================================================
# Socket.IO v5: Sending and receiving data
# ======================================================================================

NOT_A_NON_EMPTY_ARRAY = {
    "object": "42{}",
    "empty array": "42[]",
    "string": '42"x"',
    "no payload": "42",
    "null": "42null",
    "object with an ack id": "421{}",
}


@pytest.mark.parametrize(
    "packet", NOT_A_NON_EMPTY_ARRAY.values(), ids=NOT_A_NON_EMPTY_ARRAY.keys()
)
async def test_an_event_whose_payload_is_not_a_non_empty_array_closes_the_connection(
    url: str, wires: Wires, packet: str
) -> None:
    wire = await wires.joined(url)
    await wire.send(packet)
    assert await wire.closes_within(PROMPTLY), f"{packet!r} left it open; frames {wire.frames!r}"


async def test_an_event_with_a_non_empty_array_payload_keeps_the_connection(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    await wire.send(f"42{History}")
    await wire.send('42["no_such_event"]')
    assert not await wire.closes_within(0.3, pong=True)
    await assert_still_served(wire)


@pytest.mark.parametrize(
    "packet", ["47", "4abc", "49[]", '42abc["history",{"room":"lobby"}]'], ids=repr
)
async def test_a_packet_of_unknown_type_or_with_an_invalid_ack_id_closes_the_connection(
    url: str, wires: Wires, packet: str
) -> None:
    wire = await wires.joined(url)
    await wire.send(packet)
    assert await wire.closes_within(PROMPTLY), f"{packet!r} left it open; frames {wire.frames!r}"


# ======================================================================================
# Socket.IO v5: Acknowledgement
# ======================================================================================


@pytest.mark.parametrize("ack_id", [0, 1, 456, 2**31])
async def test_an_event_with_an_ack_id_is_answered_an_ack_array_with_the_same_id(
    url: str, wires: Wires, ack_id: int
) -> None:
    wire = await wires.joined(url)
    reply = await wire.call(f"42{ack_id}{History}", f"43{ack_id}")
    payload = json.loads(reply[len(f"43{ack_id}") :])
    assert isinstance(payload, list), reply
    assert payload == [{"ok": True, "messages": []}], reply


async def test_acks_answer_each_id_once_in_the_order_the_events_came(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    for n in (3, 1, 2):
        await wire.send(f"42{n}{History}")
    acks = [await wire.expect(pong=True) for _ in range(3)]
    assert [a[:3] for a in acks] == ["433", "431", "432"], acks


async def test_an_unknown_event_with_an_ack_id_is_answered_unknown_event(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    reply = await wire.call('4212["no_such_event",{}]', "4312")
    (answer,) = json.loads(reply[4:])
    assert answer["ok"] is False
    assert answer["error"]["code"] == "unknown_event"
    assert isinstance(answer["error"]["message"], str)


# ======================================================================================
# Socket.IO v5: Disconnection from a namespace
# ======================================================================================


async def test_a_client_disconnect_leaves_the_namespace_without_an_answer(
    fast_url: str, wires: Wires
) -> None:
    wire = await wires.joined(fast_url)
    first_sid = wire.namespace_sid
    await wire.send("41")
    # No answer is expected: the next frame is the heartbeat's ping.
    assert await wire.expect(PING_INTERVAL + MARGIN) == "2"
    await wire.send("3")
    # The namespace was left: connecting again is a new session, not a repeat.
    await wire.send('40{"username":"alice"}')
    reply = await wire.expect(pong=True)
    assert reply.startswith("40{"), f"re-CONNECT answered {reply!r}; frames {wire.frames!r}"
    assert json.loads(reply[2:])["sid"] != first_sid
    assert (await wire.expect(pong=True)).startswith('42["welcome"')
    await assert_still_served(wire)


async def test_an_event_after_a_client_disconnect_closes_the_connection(
    url: str, wires: Wires
) -> None:
    wire = await wires.joined(url)
    await wire.send("41")
    await wire.send(f"421{History}")
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"


# ======================================================================================
# Contract choices: binary data is refused (closes the connection that sent it)
# ======================================================================================


async def test_a_binary_websocket_frame_closes_the_connection(url: str, wires: Wires) -> None:
    bystander = await wires.joined(url, "bob")
    wire = await wires.joined(url)
    await wire.send(b"\x04\x01\x02\x03")
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"
    await assert_still_served(bystander)


@pytest.mark.parametrize(
    "packet",
    ['451-["history",{"_placeholder":true,"num":0}]', '461-1[{"_placeholder":true,"num":0}]'],
    ids=["binary event", "binary ack"],
)
async def test_a_socketio_binary_packet_closes_the_connection(
    url: str, wires: Wires, packet: str
) -> None:
    bystander = await wires.joined(url, "bob")
    wire = await wires.joined(url)
    await wire.send(packet)
    assert await wire.closes_within(PROMPTLY), f"still open; frames {wire.frames!r}"
    await assert_still_served(bystander)


async def test_a_base64_binary_polling_packet_closes_the_session(
    url: str, http: aiohttp.ClientSession
) -> None:
    polling = await Polling.joined(http, url)
    status = await polling.post_or_cut(f"421{History}{SEP}bAQIDBA==")
    assert status in (400, None), f"binary POST answered {status}"
    await assert_session_gone(polling)
