"""The permission matrix over a real server: every room action by every role, from one table.

Each cell runs in a fresh room owned by olga, with mia its moderator, bob and
tim members, troll banned, eve outside and root an admin (token claim); the
REST key's column runs the actions the REST API offers.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.contract.test_rest import AUTH
from tests.support.chat import expect_ok, http_call, make_token, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, MakeSettings, StartServer

SECRET = "room-matrix-secret-" + "s" * 32
ROLES = ("owner", "moderator", "member", "outsider", "banned", "admin", "rest")
USERS = {"owner": "olga", "moderator": "mia", "member": "bob", "outsider": "eve"}
USERS |= {"banned": "troll", "admin": "root"}

# ok, or the error code; "-" where the REST API has no such request.
MATRIX = """
                    owner moderator member    outsider  banned    admin rest
join      private   ok    ok        ok        forbidden banned    ok    -
join      public    ok    ok        ok        ok        banned    ok    -
history   private   ok    ok        ok        forbidden forbidden ok    -
history   public    ok    ok        ok        ok        ok        ok    -
room_info private   ok    ok        ok        forbidden forbidden ok    ok
room_info public    ok    ok        ok        ok        ok        ok    ok
set_topic private   ok    ok        forbidden forbidden forbidden ok    -
set_topic public    ok    ok        forbidden forbidden forbidden ok    -
invite    private   ok    ok        forbidden forbidden forbidden ok    ok
invite    public    ok    ok        ok        ok        forbidden ok    ok
kick      private   ok    ok        forbidden forbidden forbidden ok    ok
kick      public    ok    ok        forbidden forbidden forbidden ok    ok
ban       private   ok    ok        forbidden forbidden forbidden ok    ok
ban       public    ok    ok        forbidden forbidden forbidden ok    ok
unban     private   ok    ok        forbidden forbidden forbidden ok    ok
unban     public    ok    ok        forbidden forbidden forbidden ok    ok
set_role  private   ok    forbidden forbidden forbidden forbidden ok    -
set_role  public    ok    forbidden forbidden forbidden forbidden ok    -
delete    private   ok    ok        forbidden forbidden banned    ok    -
delete    public    ok    ok        forbidden forbidden banned    ok    -
react     private   ok    ok        ok        forbidden banned    ok    -
react     public    ok    ok        ok        ok        banned    ok    -
read      private   ok    ok        ok        forbidden banned    ok    -
read      public    ok    ok        ok        ok        banned    ok    -
"""

#: Actions on a message: root (an admin) posts one in the fresh room, and the
#: cell's user acts on it; delete is of someone else's message but the admin's.
MESSAGE_ACTIONS = {"delete": {}, "react": {"emoji": "👍", "add": True}, "read": {}}


def cells() -> list[tuple[str, bool, str, str]]:
    header, *rows = [line.split() for line in MATRIX.strip().splitlines()]
    assert tuple(header) == ROLES
    found = []
    for action, room, *answers in rows:
        assert len(answers) == len(ROLES), f"row {action} {room} misses a cell"
        found += [(action, room == "private", r, a) for r, a in zip(ROLES, answers, strict=True)]
    return found


def payload(action: str, room: str, message_id: str | None = None) -> dict[str, Any]:
    if action in MESSAGE_ACTIONS:
        return {"room": room, "id": message_id, **MESSAGE_ACTIONS[action]}
    extra = {
        "set_topic": {"topic": "new"},
        "invite": {"user": "newbie"},
        "kick": {"user": "tim"},
        "ban": {"user": "tim"},
        "unban": {"user": "troll"},
        "set_role": {"user": "tim", "role": "moderator"},
    }
    return {"room": room, **extra.get(action, {})}


def rest_request(action: str, room: str) -> tuple[str, str, Any]:
    return {
        "room_info": ("GET", f"/api/rooms/{room}", None),
        "invite": ("POST", f"/api/rooms/{room}/members", {"user": "newbie"}),
        "kick": ("DELETE", f"/api/rooms/{room}/members/tim", None),
        "ban": ("POST", f"/api/rooms/{room}/bans", {"user": "tim"}),
        "unban": ("DELETE", f"/api/rooms/{room}/bans/troll", None),
    }[action]


@pytest.fixture
async def world(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> tuple[str, dict[str, ChatClient]]:
    url = await start_server(make_settings(secret=SECRET))
    clients = {}
    for role, user in USERS.items():
        token = make_token(SECRET, user, admin=role == "admin")
        clients[role] = await connect(url, auth={"token": token})
    return url, clients


async def fresh_room(clients: dict[str, ChatClient], private: bool) -> str:
    room, owner = unique("room"), clients["owner"]
    expect_ok(await owner.call("create_room", {"room": room, "private": private}))
    calls = [
        ("set_role", {"room": room, "user": "mia", "role": "moderator"}),
        ("invite", {"room": room, "user": "bob"}),
        ("invite", {"room": room, "user": "tim"}),
        ("ban", {"room": room, "user": "troll"}),
    ]
    for event, body in calls:
        expect_ok(await owner.call(event, body))
    return room


def test_the_matrix_has_every_cell() -> None:
    rows = {(action, private) for action, private, _, _ in cells()}
    assert len(rows) == 12 * 2 and len(cells()) == len(rows) * len(ROLES)


async def test_every_action_by_every_role_answers_as_the_table_says(
    world: tuple[str, dict[str, ChatClient]], http: aiohttp.ClientSession
) -> None:
    url, clients = world
    wrong = []
    for action, private, role, expected in cells():
        if expected == "-":
            continue
        room, message_id = await fresh_room(clients, private), None
        if action in MESSAGE_ACTIONS:
            expect_ok(await clients["admin"].call("join", {"room": room}))
            posted = {"room": room, "text": "from root"}
            message_id = expect_ok(await clients["admin"].call("message", posted))["id"]
        if role == "rest":
            method, path, body = rest_request(action, room)
            status, reply = await http_call(http, method, f"{url}{path}", body, AUTH)
            assert (status == 200) is (reply["ok"] is True), (action, status, reply)
        else:
            reply = await clients[role].call(action, payload(action, room, message_id))
        got = "ok" if reply.get("ok") else reply["error"]["code"]
        if got != expected:
            wrong.append((action, "private" if private else "public", role, expected, got))
    assert wrong == []
