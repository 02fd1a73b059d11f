"""examples/bot.py, run as a real subprocess against a real in-process server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from chat_server.config import Settings
from tests.support.fixtures import Connect, StartServer
from tests.support.ports import free_port
from tests.support.process import REPO_ROOT
from tests.support.settings import API_KEY

BOT = REPO_ROOT / "examples" / "bot.py"


@dataclass
class BotRun:
    returncode: int
    stdout: str
    stderr: str


async def run_bot(*args: str, url: str, key: str = API_KEY, stdin: str = "") -> BotRun:
    """Run the example as a user would, with CHAT_URL and CHAT_API_KEY in its environment."""
    env = {**os.environ, "CHAT_URL": url, "CHAT_API_KEY": key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BOT),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 30)
    assert proc.returncode is not None
    return BotRun(proc.returncode, out.decode(), err.decode())


async def test_bot_posts_to_a_room_and_its_members_receive_it(
    start_server: StartServer, make_settings: Callable[..., Settings], connect: Connect
) -> None:
    url = await start_server(make_settings())
    alice = await connect(url, "alice")
    assert (await alice.call("join", {"room": "lobby"}))["ok"] is True

    run = await run_bot("--room", "lobby", "--from", "ci", "Build 1234 passed", url=url)

    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    message = await alice.next("message")
    assert message == {
        "id": answer["id"],
        "room": "lobby",
        "from": "ci",
        "text": "Build 1234 passed",
        "ts": answer["ts"],
        "rev": answer["id"],
    }


async def test_bot_sends_a_private_message_to_a_user(
    start_server: StartServer, make_settings: Callable[..., Settings], connect: Connect
) -> None:
    url = await start_server(make_settings())
    alice = await connect(url, "alice")

    run = await run_bot("--to", "alice", "Your report is ready", url=url)

    assert run.returncode == 0, run.stderr
    message = await alice.next("private_message")
    assert (message["from"], message["to"], message["text"]) == (
        "bot",
        "alice",
        "Your report is ready",
    )


async def test_bot_broadcast_reaches_a_client_in_no_room(
    start_server: StartServer, make_settings: Callable[..., Settings], connect: Connect
) -> None:
    url = await start_server(make_settings())
    bob = await connect(url, "bob")

    run = await run_bot("--broadcast", "--from", "ops", "-", url=url, stdin="Maintenance\n")

    assert run.returncode == 0, run.stderr
    announcement = await bob.next("announcement")
    assert (announcement["from"], announcement["text"]) == ("ops", "Maintenance")


async def test_bot_with_a_wrong_key_exits_1_and_says_so(
    start_server: StartServer, make_settings: Callable[..., Settings]
) -> None:
    url = await start_server(make_settings())

    run = await run_bot("--room", "lobby", "hello", url=url, key="wrong")

    assert run.returncode == 1
    assert run.stdout == ""
    assert "HTTP 401" in run.stderr
    assert "CHAT_API_KEY" in run.stderr


async def test_bot_reports_an_invalid_body_with_the_servers_fields(
    start_server: StartServer, make_settings: Callable[..., Settings]
) -> None:
    url = await start_server(make_settings())

    run = await run_bot("--room", "no spaces allowed", "hello", url=url)

    assert run.returncode == 1
    assert "HTTP 400" in run.stderr
    assert '"room"' in run.stderr


async def test_bot_exits_1_when_the_server_cannot_be_reached() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = await run_bot("--room", "lobby", "hello", url=url)

    assert run.returncode == 1
    assert "cannot reach" in run.stderr
    assert run.stderr.count("\n") == 1
