"""``HookClient`` against real receivers: aiohttp, raw TCP, and HTTPS with its own certificate."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from chat_server.transport.hookclient import HookClient, HookError
from tests.support.certs import self_signed
from tests.support.ports import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = {"Content-Type": "application/json", "Chat-Webhook-Id": "abc"}


class Seen:
    """What an aiohttp receiver saw: each request's peer port, headers and body."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []


@asynccontextmanager
async def aiohttp_receiver(
    answer: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Seen]]:
    """An aiohttp server on a free port recording every request, answered by ``answer``."""
    seen = Seen()

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.bodies.append(await request.read())
        seen.headers.append(dict(request.headers))
        seen.ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]  # a live request has a transport
        return await answer(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/hook?x=1", seen
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_receiver(handle: RawHandler) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server that answers as ``handle`` writes; also the peer port of each connection."""
    peers: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        try:
            await handle(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", peers
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and ``Content-Length`` body, as sent."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def answering(answer: bytes, *, hold: bool) -> RawHandler:
    """A raw receiver's way: read one request, write ``answer``, then close or ``hold`` on."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        if hold:
            await reader.read()  # until the client closes its end

    return handle


async def post_twice(client: HookClient, url: str) -> list[int]:
    """The statuses of two POSTs in turn to ``url``."""
    return [await client.post(url, b"{}", HEADERS) for _ in range(2)]


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
async def client() -> AsyncIterator[HookClient]:
    hooks = HookClient(timeout=2.0)
    yield hooks
    await hooks.aclose()


async def test_post_sends_body_host_length_and_headers(client: HookClient) -> None:
    async with aiohttp_receiver(ok) as (url, seen):
        assert await client.post(url, b'{"a":1}', HEADERS) == 200
    assert seen.bodies == [b'{"a":1}']
    headers = seen.headers[0]
    assert headers["Host"] == url.split("/")[2]
    assert headers["Content-Length"] == "7"
    assert headers["Chat-Webhook-Id"] == "abc"


async def test_post_returns_a_server_error_status(client: HookClient) -> None:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async with aiohttp_receiver(fail) as (url, _):
        assert await client.post(url, b"{}", HEADERS) == 500


async def test_posts_in_turn_share_one_kept_alive_connection(client: HookClient) -> None:
    async with aiohttp_receiver(ok) as (url, seen):
        for _ in range(3):
            assert await client.post(url, b"{}", HEADERS) == 200
    assert len(set(seen.ports)) == 1


async def test_chunked_answer_is_read_and_its_connection_kept(client: HookClient) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=202)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"part one,")
        await response.write(b"part two")
        await response.write_eof()
        return response

    async with aiohttp_receiver(chunked) as (url, seen):
        assert await post_twice(client, url) == [202, 202]
    assert len(set(seen.ports)) == 1


async def test_connection_close_from_the_receiver_is_honoured(client: HookClient) -> None:
    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    async with aiohttp_receiver(closing) as (url, seen):
        assert await post_twice(client, url) == [200, 200]
    assert len(set(seen.ports)) == 2


async def test_slow_receiver_times_out_and_its_connection_is_dropped() -> None:
    slow = True

    async def maybe_slow(request: web.Request) -> web.Response:
        if slow:
            await asyncio.sleep(2)
        return web.Response(text="late")

    hooks = HookClient(timeout=0.3)
    async with aiohttp_receiver(maybe_slow) as (url, seen):
        with pytest.raises(HookError, match=r"no answer within 0\.3 s"):
            await hooks.post(url, b"{}", HEADERS)
        slow = False
        assert await hooks.post(url, b"{}", HEADERS) == 200
    await hooks.aclose()
    assert len(set(seen.ports)) == 2


async def test_answer_stalling_mid_body_times_out() -> None:
    hooks = HookClient(timeout=0.3)
    stalled = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", hold=True)
    async with raw_receiver(stalled) as (url, _):
        with pytest.raises(HookError, match=r"no answer within 0\.3 s"):
            await hooks.post(url, b"{}", HEADERS)
    await hooks.aclose()


async def test_redirect_is_answered_not_followed(client: HookClient) -> None:
    async def redirect(request: web.Request) -> web.Response:
        if request.path == "/elsewhere":
            return web.Response(text="followed")
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async with aiohttp_receiver(redirect) as (url, seen):
        assert await client.post(url, b"{}", HEADERS) == 302
    assert len(seen.bodies) == 1


async def test_body_past_max_body_drops_the_connection() -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 200_000)

    hooks = HookClient(max_body=1024)
    async with aiohttp_receiver(big) as (url, seen):
        assert await post_twice(hooks, url) == [200, 200]
    await hooks.aclose()
    assert len(set(seen.ports)) == 2


async def test_body_ending_with_the_connection_is_read_to_its_end(client: HookClient) -> None:
    async with raw_receiver(
        answering(b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n\r\nall of it", hold=False)
    ) as (url, peers):
        assert await post_twice(client, url) == [201, 201]
    assert len(peers) == 2


async def test_interim_answer_is_skipped_for_the_final_one(client: HookClient) -> None:
    async with raw_receiver(
        answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", hold=True)
    ) as (url, _):
        assert await client.post(url, b"{}", HEADERS) == 204


async def test_http_1_0_answer_closes_the_connection(client: HookClient) -> None:
    async with raw_receiver(
        answering(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", hold=True)
    ) as (url, peers):
        assert await post_twice(client, url) == [200, 200]
    assert len(peers) == 2


async def test_kept_alive_connection_closed_unanswered_is_retried_on_a_new_one(
    client: HookClient,
) -> None:
    async def one_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await read_request(reader)  # the next request: dropped unanswered

    async with raw_receiver(one_answer) as (url, peers):
        assert await post_twice(client, url) == [200, 200]
    assert len(peers) == 2


async def test_connection_closed_without_answer_raises(client: HookClient) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with raw_receiver(hang_up) as (url, _):
        with pytest.raises(HookError, match="closed without an answer"):
            await client.post(url, b"{}", HEADERS)


async def test_garbage_answer_raises(client: HookClient) -> None:
    async with raw_receiver(answering(b"SSH-2.0-OpenSSH\r\n\r\n", hold=True)) as (url, _):
        with pytest.raises(HookError, match=r"not an HTTP/1\.x status line"):
            await client.post(url, b"{}", HEADERS)


async def test_half_sent_answer_raises(client: HookClient) -> None:
    async with raw_receiver(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", hold=False)
    ) as (url, _):
        with pytest.raises(HookError):
            await client.post(url, b"{}", HEADERS)


async def test_refused_connection_raises(client: HookClient) -> None:
    with pytest.raises(HookError):
        await client.post(f"http://127.0.0.1:{free_port()}/hook", b"{}", HEADERS)


async def test_closed_client_refuses_to_post_and_closes_idle_connections() -> None:
    ended = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await reader.read()  # until the client closes its end
        ended.set()

    hooks = HookClient()
    async with raw_receiver(serve) as (url, _):
        assert await hooks.post(url, b"{}", HEADERS) == 200
        await hooks.aclose()
        await asyncio.wait_for(ended.wait(), 2)
        with pytest.raises(HookError, match="closed"):
            await hooks.post(url, b"{}", HEADERS)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def test_https_receiver_trusted_by_the_given_context_is_posted_to(
    tls_files: tuple[Path, Path],
) -> None:
    cert_file, key_file = tls_files
    hooks = HookClient(ssl_context=ssl.create_default_context(cafile=str(cert_file)))
    async with aiohttp_receiver(ok, server_context(cert_file, key_file)) as (url, seen):
        assert await post_twice(hooks, url) == [200, 200]
    await hooks.aclose()
    assert len(set(seen.ports)) == 1


async def test_https_receiver_with_an_untrusted_certificate_is_refused(
    tls_files: tuple[Path, Path], client: HookClient
) -> None:
    async with aiohttp_receiver(ok, server_context(*tls_files)) as (url, seen):
        with pytest.raises(HookError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post(url, b"{}", HEADERS)
    assert seen.bodies == []


async def test_url_that_is_not_http_is_refused(client: HookClient) -> None:
    with pytest.raises(HookError, match="not an http"):
        await client.post("ftp://127.0.0.1/hook", b"{}", HEADERS)


# -- pipelining ---------------------------------------------------------------------


def answering_in_turns(*turns: tuple[bytes, ...]) -> RawHandler:
    """A raw receiver that, for each turn, reads as many requests as it has answers, then answers.

    A turn of several answers is only answered once all its requests came,
    so the client must have sent them without waiting: pipelined.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answers in turns:
            for _ in answers:
                await read_request(reader)
            writer.write(b"".join(answers))
            await writer.drain()
        await reader.read()

    return handle


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_new_connection_carries_one_request_then_the_rest_pipelined(
    client: HookClient,
) -> None:
    async with raw_receiver(answering_in_turns((OK,), (OK, OK, OK))) as (url, peers):
        statuses = await client.post_many(url, [(b"{}", HEADERS)] * 4)
    assert (statuses, len(peers)) == ([200] * 4, 1)


async def test_a_kept_alive_connection_carries_the_whole_batch_pipelined(
    client: HookClient,
) -> None:
    async with raw_receiver(answering_in_turns((OK,), (OK, OK))) as (url, peers):
        assert await client.post(url, b"{}", HEADERS) == 200
        statuses = await client.post_many(url, [(b"{}", HEADERS)] * 2)
    assert (statuses, len(peers)) == ([200, 200], 1)


async def test_post_many_tells_each_answers_status_in_order(client: HookClient) -> None:
    failed = b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
    gone = b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    async with raw_receiver(answering_in_turns((OK,), (failed, gone))) as (url, _):
        assert await client.post_many(url, [(b"{}", HEADERS)] * 3) == [200, 500, 410]


async def test_a_receiver_closing_after_each_answer_gets_every_request_one_per_connection(
    client: HookClient,
) -> None:
    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    async with aiohttp_receiver(closing) as (url, seen):
        assert await client.post_many(url, [(b"{}", HEADERS)] * 3) == [200] * 3
    assert len(set(seen.ports)) == 3


async def test_a_cut_halfway_fails_the_unanswered_requests_only(client: HookClient) -> None:
    async def two_of_three(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await read_request(reader)
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with raw_receiver(two_of_three) as (url, _):
        answers = await client.post_many(url, [(b"{}", HEADERS)] * 3)
    assert answers[:2] == [200, 200]
    assert isinstance(answers[2], HookError)


async def test_pipelined_requests_each_carry_their_own_body_and_headers(
    client: HookClient,
) -> None:
    async with aiohttp_receiver(ok) as (url, seen):
        requests = [
            (f'{{"n":{n}}}'.encode(), {**HEADERS, "Chat-Webhook-Id": f"e{n}"}) for n in range(4)
        ]
        assert await client.post_many(url, requests) == [200] * 4
    assert seen.bodies == [body for body, _ in requests]
    assert [h["Chat-Webhook-Id"] for h in seen.headers] == ["e0", "e1", "e2", "e3"]
    assert len(set(seen.ports)) == 1


async def test_post_many_to_a_url_that_is_not_http_fails_every_request(
    client: HookClient,
) -> None:
    answers = await client.post_many("ftp://127.0.0.1/x", [(b"{}", HEADERS)] * 2)
    assert all(isinstance(a, HookError) for a in answers) and len(answers) == 2
