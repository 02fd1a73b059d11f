"""examples/webhook_receiver.py as a real process, fed by a real chat server process."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from chat_server.core.auth import issue_token
from tests.support.chat import expect_ok, http_call, join, unique
from tests.support.fixtures import Connect
from tests.support.health import wait_for
from tests.support.ports import free_port
from tests.support.process import REPO_ROOT, ServerProcess, clean_environ
from tests.support.settings import API_KEY

RECEIVER = REPO_ROOT / "examples" / "webhook_receiver.py"
SECRET = "example-chat-secret-" + "e" * 32
HOOK_SECRET = "example-hook-secret"
HELP_TEXT = "Commands: !help (this text). Messages here reach everyone in the room."


@dataclass
class Running:
    """The receiver process, the chat server process, and what the receiver logged."""

    chat: ServerProcess
    hook_url: str
    lines: list[str] = field(default_factory=list)

    async def logged(self, text: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        async def found() -> bool:
            return any(text in line for line in self.lines)

        await wait_for(found, timeout)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/hook"
    chat = ServerProcess(
        env={
            "CHAT_SECRET": SECRET,
            "CHAT_API_KEY": API_KEY,
            "CHAT_WEBHOOK_URL": hook_url,
            "CHAT_WEBHOOK_SECRET": HOOK_SECRET,
            "CHAT_WEBHOOK_RETRY_BASE": "0.2",
        }
    )
    await asyncio.to_thread(chat.start)
    env = clean_environ(
        {
            "CHAT_URL": chat.url,
            "CHAT_BOT_TOKEN": issue_token(SECRET, "helper", 3600, bot=True),
            "CHAT_WEBHOOK_SECRET": HOOK_SECRET,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RECEIVER),
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    state = Running(chat, hook_url)

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            state.lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read())

    async def listening() -> bool:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return True

    try:
        await wait_for(listening, 15)
        yield state
    finally:
        proc.terminate()
        await proc.wait()
        await reader
        await asyncio.to_thread(chat.stop, 10.0)


def user_token(name: str) -> str:
    return issue_token(SECRET, name, 3600)


def signed(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "Chat-Webhook-Timestamp": stamp,
        "Chat-Webhook-Signature": "v1=" + mac.hexdigest(),
    }


async def test_the_example_bot_answers_help_in_the_room(
    running: Running, connect: Connect
) -> None:
    room = unique("room")
    alice = await connect(running.chat.url, auth={"token": user_token("alice")})
    await join(alice, room)
    expect_ok(await alice.call("message", {"room": room, "text": "!help"}))

    reply = await alice.next_where("message", lambda m: m["from"] == "helper", timeout=15)
    assert (reply["room"], reply["text"], reply["bot"]) == (room, HELP_TEXT, True)


async def test_the_example_notifier_logs_a_push_for_an_offline_recipient(
    running: Running, http: aiohttp.ClientSession
) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    body = {"to": "alice", "from": "billing", "text": "invoice ready"}
    status, _ = await http_call(http, "POST", f"{running.chat.url}/api/emit", body, auth)
    assert status == 200
    await running.logged("would push to alice: billing: invoice ready")


async def test_the_example_notifier_stays_quiet_for_a_connected_recipient(
    running: Running, connect: Connect, http: aiohttp.ClientSession
) -> None:
    await connect(running.chat.url, auth={"token": user_token("carol")})
    auth = {"Authorization": f"Bearer {API_KEY}"}
    for to in ("carol", "dave"):  # dave is offline: his push shows the first was handled
        body = {"to": to, "from": "billing", "text": f"for {to}"}
        status, _ = await http_call(http, "POST", f"{running.chat.url}/api/emit", body, auth)
        assert status == 200
    await running.logged("would push to dave")
    assert not any("would push to carol" in line for line in running.lines)


async def test_the_example_refuses_a_post_with_a_bad_signature(
    running: Running, http: aiohttp.ClientSession
) -> None:
    body = json.dumps({"id": "x", "type": "message", "ts": 0, "data": {}}).encode()
    async with http.post(running.hook_url, data=body, headers=signed(body, "wrong")) as response:
        assert response.status == 401


async def test_the_example_acts_once_on_an_event_delivered_twice(
    running: Running, connect: Connect, http: aiohttp.ClientSession
) -> None:
    room = unique("room")
    alice = await connect(running.chat.url, auth={"token": user_token("alice")})
    await join(alice, room)
    data = {"id": "m1", "room": room, "from": "alice", "text": "!help", "ts": 0}
    body = json.dumps({"id": unique("event"), "type": "message", "ts": 0, "data": data}).encode()
    for _ in range(2):
        async with http.post(running.hook_url, data=body, headers=signed(body)) as response:
            assert response.status == 200
    await alice.next_where("message", lambda m: m["from"] == "helper", timeout=15)
    await alice.no_event_where("message", lambda m: m["from"] == "helper", within=1.0)
