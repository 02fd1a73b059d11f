"""The REST edge: bots and services post messages and read rooms over HTTP."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from marshmallow import Schema
from redis.exceptions import RedisError

from chat_server.core.errors import ChatError, unavailable
from chat_server.core.ratelimit import retry_after_header
from chat_server.core.rooms import Actor
from chat_server.edges import schemas
from chat_server.edges.keys import API_LIMITER, METRICS, SERVICE, SETTINGS
from chat_server.stores.redis import outcome_of

__all__ = ["json_errors", "routes"]

log = logging.getLogger(__name__)

MAX_BODY = 65536
#: Where python-socketio serves Engine.IO (its default, which the app keeps).
ENGINEIO_PATH = "/socket.io/"
routes = web.RouteTableDef()


def error_response(
    status: int, error: ChatError, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error answer in the contract's shape."""
    return web.json_response(error.to_reply(), status=status, headers=headers)


def check_key(request: web.Request) -> None:
    """Refuse the request unless it carries the configured bearer key."""
    api_key = request.app[SETTINGS].api_key
    if api_key is None:
        raise HTTPError(
            503, ChatError("api_disabled", "The REST API is off: set CHAT_API_KEY to enable it.")
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest keeps the comparison's time independent of where keys differ.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), api_key.encode()
    ):
        raise HTTPError(
            401,
            ChatError("unauthorized", "Send Authorization: Bearer <CHAT_API_KEY>."),
            {"WWW-Authenticate": "Bearer"},
        )
    # After the key check, so that a stranger cannot spend the key's allowance.
    wait = request.app[API_LIMITER].take(api_key)
    if wait:
        request.app[METRICS].rate_limited.labels("api").inc()
        raise HTTPError(
            429,
            ChatError("rate_limited", "Too many requests for this key.", retry_after=wait),
            {"Retry-After": retry_after_header(wait)},
        )


class HTTPError(Exception):
    """An error answer, raised from deep in a view and rendered by ``json_errors``."""

    def __init__(self, status: int, error: ChatError, headers: dict[str, str] | None = None):
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers


async def read_json(request: web.Request, limit: int = MAX_BODY) -> Any:
    """The JSON body, refusing more than ``limit`` bytes without reading them all."""
    too_large = HTTPError(413, ChatError("too_large", f"The body exceeds {limit} bytes."))
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(
            400,
            ChatError("invalid", "The body is not valid JSON.", {"_schema": ["Not valid JSON."]}),
        ) from None


@web.middleware
def json_errors(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
    """Render ``HTTPError``, bad input and unknown ``/api`` routes as JSON errors."""
    if request.path.startswith(ENGINEIO_PATH):
        # python-engineio catches what the chat's handlers raise and raises
        # only aiohttp's own HTTP errors, which this would pass on anyway;
        # handing the request on unawaited keeps no frame alive for a
        # WebSocket's lifetime.
        passed: Awaitable[web.StreamResponse] = handler(request)
        return passed
    return _json_errors(request, handler)


async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except HTTPError as exc:
        return error_response(exc.status, exc.error, exc.headers)
    except ChatError as exc:
        return error_response(400, exc)
    except RedisError as exc:
        log.warning("%s %s: Redis failed (%s)", request.method, request.path, exc)
        outcome = outcome_of(exc) if request.method == "POST" else None
        return error_response(503, unavailable(outcome))
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, ChatError(code, exc.reason))


@routes.post("/api/emit")
async def emit(request: web.Request) -> web.Response:
    """Post a room message, a private message or an announcement."""
    check_key(request)
    data = schemas.load(schemas.EmitSchema(), await read_json(request))
    service, sender, text = request.app[SERVICE], data["from_"], data["text"]
    if "room" in data:
        message = await service.post_message(sender, data["room"], text)
    elif "to" in data:
        message = await service.send_private(sender, data["to"], text)
    else:
        message = await service.announce(sender, text)
    return web.json_response({"ok": True, "id": message["id"], "ts": message["ts"]})


@routes.get("/api/rooms/{room}")
async def room(request: web.Request) -> web.Response:
    """A room's members and newest history."""
    check_key(request)
    data = schemas.load(schemas.RoomSchema(), {"room": request.match_info["room"]})
    service = request.app[SERVICE]
    snapshot = await service.room_snapshot(data["room"])
    info = await service.room_info(REST_ACTOR, data["room"])
    return web.json_response({"ok": True, **snapshot, "info": info})


@routes.post("/api/users/{user}/disconnect")
async def remove_user(request: web.Request) -> web.Response:
    """Close every connection of a user on every process; optionally ban it for a while."""
    check_key(request)
    # The body is optional: an empty one means "no ban".
    body = await read_json(request) if request.body_exists else {}
    if not isinstance(body, dict):
        raise ChatError("invalid", "The body must be an object.", schemas.NOT_AN_OBJECT)
    data = schemas.load(schemas.RemoveUserSchema(), {**body, "user": request.match_info["user"]})
    user = data["user"]
    closed = await request.app[SERVICE].remove_user(user, data.get("ban_seconds"))
    log.info(
        "removed user %s (ban %s s, %d connections here)", user, data.get("ban_seconds"), closed
    )
    return web.json_response({"ok": True, "user": user, "disconnected": closed})


# -- rooms that belong to someone (docs/moderation.md) ------------------------------

#: The REST API acts as an admin; its name is no valid username, so it never
#: collides with a user's, and it is the ``by`` of the events it causes.
REST_ACTOR = Actor("@api", admin=True)
#: HTTP statuses of the room rules' refusals (others are 400).
ROOM_STATUSES = {"forbidden": 403, "not_found": 404, "room_exists": 409}


async def room_body(request: web.Request, schema: Schema, **path: str) -> dict[str, Any]:
    """The checked key, then the JSON body merged with path values, validated by ``schema``."""
    check_key(request)
    body = await read_json(request) if request.body_exists or request.method == "POST" else {}
    if not isinstance(body, dict):
        raise ChatError("invalid", "The body must be an object.", schemas.NOT_AN_OBJECT)
    return schemas.load(schema, {**body, **path})


async def room_call(call: Awaitable[Any]) -> Any:
    """Await a room rule, turning its refusals into their HTTP statuses."""
    try:
        return await call
    except ChatError as exc:
        raise HTTPError(ROOM_STATUSES.get(exc.code, 400), exc) from None


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    """Create a room for ``owner``: 201 with its info, 409 when it exists."""
    data = await room_body(request, schemas.RestCreateRoomSchema())
    info = await room_call(
        request.app[SERVICE].create_room(
            Actor(data["owner"]), data["room"], private=data["private"], topic=data["topic"]
        )
    )
    return web.json_response({"ok": True, "room": info}, status=201)


@routes.post("/api/rooms/{room}/members")
async def add_member(request: web.Request) -> web.Response:
    """Invite ``user`` (a member, in a private room)."""
    data = await room_body(request, schemas.RoomUserSchema(), room=request.match_info["room"])
    await room_call(request.app[SERVICE].invite(REST_ACTOR, data["room"], data["user"]))
    return web.json_response({"ok": True})


@routes.delete("/api/rooms/{room}/members/{user}")
async def remove_member(request: web.Request) -> web.Response:
    """Kick ``user`` out of the room on every process."""
    data = await room_body(request, schemas.KickSchema(), **request.match_info)
    await room_call(
        request.app[SERVICE].kick(REST_ACTOR, data["room"], data["user"], data["reason"])
    )
    return web.json_response({"ok": True})


@routes.post("/api/rooms/{room}/bans")
async def ban(request: web.Request) -> web.Response:
    """Ban ``user`` from the room, for ``seconds`` or until unbanned."""
    data = await room_body(request, schemas.BanSchema(), room=request.match_info["room"])
    service = request.app[SERVICE]
    await room_call(
        service.ban(REST_ACTOR, data["room"], data["user"], data["reason"], data.get("seconds"))
    )
    return web.json_response({"ok": True})


@routes.delete("/api/rooms/{room}/bans/{user}")
async def unban(request: web.Request) -> web.Response:
    """Lift ``user``'s ban in the room."""
    data = await room_body(request, schemas.RoomUserSchema(), **request.match_info)
    await room_call(request.app[SERVICE].unban(REST_ACTOR, data["room"], data["user"]))
    return web.json_response({"ok": True})
