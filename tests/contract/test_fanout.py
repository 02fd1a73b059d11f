"""Room broadcasts: direct WebSocket writes and the queue keep every connection's order."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chat_server.transport import fanout
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import chat_settings

ROOM = "fan"
SENDERS = 3
PER_SENDER = 40


class DeflateClient:
    """A bare Engine.IO/Socket.IO client over a WebSocket that offers permessage-deflate."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.connected = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            text: str = msg.data
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith("0{"):
                await self.ws.send_str('40{"username":"squeezed"}')
            elif text.startswith("40") and not self.connected.done():
                self.connected.set_result(None)
            elif text.startswith('42["message",'):
                self.messages.append(json.loads(text[2:])[1])
            elif text.startswith("43"):
                i = text.index("[")
                self.acks.pop(int(text[2:i])).set_result(json.loads(text[i:])[0])

    async def call(self, ack_id: int, event: str, data: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, 5)


@pytest.fixture
async def deflate_client(
    start_server: StartServer,
) -> AsyncIterator[tuple[str, DeflateClient]]:
    url = await start_server(chat_settings())
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket", compress=15) as ws,
    ):
        client = DeflateClient(ws)
        await asyncio.wait_for(client.connected, 5)
        yield url, client
        client.reader.cancel()


def in_sender_order(messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each sender's sequence numbers, in the order they arrived."""
    order: dict[str, list[int]] = {}
    for message in messages:
        sender, seq = message["text"].split(":")
        order.setdefault(sender, []).append(int(seq))
    return order


async def flood(senders: list[ChatClient]) -> None:
    async def send_all(index: int, client: ChatClient) -> None:
        for seq in range(PER_SENDER):
            ack = await client.call("message", {"room": ROOM, "text": f"s{index}:{seq}"})
            assert ack["ok"], ack

    await asyncio.gather(*(send_all(i, c) for i, c in enumerate(senders)))


async def test_the_server_declines_permessage_deflate_like_node_socketio(
    deflate_client: tuple[str, DeflateClient],
) -> None:
    _, squeezed = deflate_client
    assert squeezed.ws.compress == 0


async def test_every_transport_gets_each_senders_messages_in_order(
    deflate_client: tuple[str, DeflateClient], connect: Connect
) -> None:
    url, squeezed = deflate_client
    assert (await squeezed.call(1, "join", {"room": ROOM}))["ok"]
    websocket = [await connect(url, f"ws{i}") for i in range(3)]
    polling = [await connect(url, f"poll{i}", transports=["polling"]) for i in range(2)]
    senders = [await connect(url, f"sender{i}") for i in range(SENDERS)]
    for client in websocket + polling + senders:
        assert (await client.call("join", {"room": ROOM}))["ok"]
    await flood(senders)
    expected = {f"s{i}": list(range(PER_SENDER)) for i in range(SENDERS)}
    for client in websocket + polling + senders:
        received = [await client.next("message") for _ in range(SENDERS * PER_SENDER)]
        assert in_sender_order(received) == expected
    for _ in range(50):
        if len(squeezed.messages) == SENDERS * PER_SENDER:
            break
        await asyncio.sleep(0.1)
    assert in_sender_order(squeezed.messages) == expected


def test_frames_use_the_shortest_length_encoding() -> None:
    assert fanout.websocket_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert fanout.websocket_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert fanout.websocket_frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")


async def read_frames(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Unmasked server frames from a raw WebSocket, as text."""
    while True:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        yield (await reader.readexactly(length)).decode()


async def test_a_client_that_falls_behind_and_catches_up_keeps_its_order(
    start_server: StartServer, connect: Connect
) -> None:
    url = await start_server(chat_settings(send_queue_bytes=64 * 1024 * 1024))
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    # A tiny receive buffer: the server's writes back up into its transport
    # and queue quickly, then drain once this client reads again.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    frames = read_frames(reader)

    def send(text: str) -> None:
        data = text.encode()
        assert len(data) < 126
        writer.write(bytes((0x81, 0x80 | len(data))) + b"\0\0\0\0" + data)

    assert (await anext(frames)).startswith("0{")
    send('40{"username":"laggard"}')
    assert (await anext(frames)).startswith("40")
    send('421["join",{"room":"fan"}]')
    while not (await anext(frames)).startswith("431"):
        pass
    sender = await connect(url, "sender")
    assert (await sender.call("join", {"room": ROOM}))["ok"]
    total = 600
    for seq in range(total):
        text = f"{seq:05d}:" + "x" * 1900
        assert (await sender.call("message", {"room": ROOM, "text": text}))["ok"]
        if seq == total // 2:
            await asyncio.sleep(0.2)  # let part of the backlog drain meanwhile
    seqs: list[int] = []
    while len(seqs) < total:
        frame = await asyncio.wait_for(anext(frames), 10)
        if frame == "2":
            send("3")
        elif frame.startswith('42["message",'):
            seqs.append(int(json.loads(frame[2:])[1]["text"][:5]))
    writer.close()
    assert seqs == list(range(total))
