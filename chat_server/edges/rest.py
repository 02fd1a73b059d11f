"""The REST edge: bots and services post messages and read rooms over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from marshmallow import Schema
from redis.exceptions import RedisError

from chat_server.core import tokens
from chat_server.core.auth import AuthError
from chat_server.core.errors import ChatError, unavailable
from chat_server.core.ports import ONCE_SECONDS, Record
from chat_server.core.ratelimit import retry_after_header
from chat_server.core.rooms import Actor
from chat_server.core.tokens import BotGrant
from chat_server.edges import schemas
from chat_server.edges.keys import API_LIMITER, IDEMPOTENCY, METRICS, SERVICE, SETTINGS
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


def check_key(request: web.Request, *, bots: bool = False) -> BotGrant | None:
    """Refuse the request unless it carries ``CHAT_API_KEY`` or, where ``bots``, a bot token.

    Returns the bot's grant, or ``None`` for the API key (which may do
    anything). A bot token where bots are not allowed, or a genuine token
    without ``bot: true``, is ``403 forbidden``: the caller is known, the
    act is not its to do.
    """
    settings = request.app[SETTINGS]
    api_key, secret = settings.api_key, settings.secret
    if api_key is None and secret is None:
        raise HTTPError(
            503,
            ChatError(
                "api_disabled",
                "The REST API is off: set CHAT_API_KEY (or CHAT_SECRET, for bot tokens).",
            ),
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    grant: BotGrant | None = None
    if scheme.lower() != "bearer" or not given:
        raise _unauthorized("Send Authorization: Bearer <CHAT_API_KEY or a bot token>.")
    # compare_digest keeps the comparison's time independent of where keys differ.
    if api_key is not None and hmac.compare_digest(given.encode(), api_key.encode()):
        bucket = api_key
    elif secret is not None:
        grant = _bot_grant(secret, given)
        bucket = f"bot:{grant.name}"
    else:
        raise _unauthorized("Send Authorization: Bearer <CHAT_API_KEY>.")
    if grant is not None and not bots:
        raise forbidden("Bot tokens may not use this endpoint.")
    # After the key check, so that a stranger cannot spend the key's allowance.
    wait = request.app[API_LIMITER].take(bucket)
    if wait:
        request.app[METRICS].rate_limited.labels("api").inc()
        raise HTTPError(
            429,
            ChatError("rate_limited", "Too many requests for this key.", retry_after=wait),
            {"Retry-After": retry_after_header(wait)},
        )
    return grant


def _bot_grant(secret: str, token: str) -> BotGrant:
    try:
        return tokens.verify_bot_token(secret, token)
    except AuthError as exc:
        if exc.code == "not_a_bot":
            raise forbidden(exc.message) from None
        raise _unauthorized(exc.message) from None


def _unauthorized(message: str) -> HTTPError:
    return HTTPError(401, ChatError("unauthorized", message), {"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> HTTPError:
    """A ``403 forbidden`` answer: the caller is known but may not do this."""
    return HTTPError(403, ChatError("forbidden", message))


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


#: HTTP statuses of the chat rules' refusals (others are 400).
RULE_STATUSES = {"forbidden": 403, "not_found": 404, "room_exists": 409}


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
        # A refusal by the chat's rules (a bot outside a private room, say) is
        # 403/404/409 wherever it is raised; anything else the caller sent is 400.
        return error_response(RULE_STATUSES.get(exc.code, 400), exc)
    except RedisError as exc:
        log.warning("%s %s: Redis failed (%s)", request.method, request.path, exc)
        outcome = outcome_of(exc) if request.method == "POST" else None
        return error_response(503, unavailable(outcome))
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        # Keep what the error says beyond its body: a 405's Allow (RFC 9110 requires it).
        kept = {
            name: value for name, value in exc.headers.items() if name.lower() not in _BODY_HEADERS
        }
        return error_response(exc.status, ChatError(code, exc.reason), kept)


#: Headers of aiohttp's own error bodies, which the JSON body replaces.
_BODY_HEADERS = {"content-type", "content-length"}


#: What an ``Idempotency-Key`` may be: 1 to 255 visible ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}\Z")
IDEMPOTENCY_HEADER = "Idempotency-Key"


@routes.post("/api/emit")
async def emit(request: web.Request) -> web.Response:
    """Post a room message, a private message or an announcement.

    With ``Idempotency-Key`` the first answer is kept for ten minutes per
    credential: a repeat gets it again (``Idempotent-Replayed: true``) and
    delivers nothing, the same key with another body is ``409``.
    """
    grant = check_key(request, bots=True)
    key = _idempotency_key(request)
    body = await read_json(request)
    data = schemas.load(schemas.EmitSchema(), body)
    if grant is not None:
        _check_bot_emit(grant, body, data)
    if key is None:
        return web.json_response(await _deliver(request, grant, data))
    scope = "key" if grant is None else f"bot:{grant.name}"
    return await _once(request, f"{scope}:{key}", _fingerprint(body), grant, data)


async def _once(
    request: web.Request,
    key: str,
    fingerprint: str,
    grant: BotGrant | None,
    data: dict[str, Any],
) -> web.Response:
    store = request.app[IDEMPOTENCY]
    entry = await store.claim(key, fingerprint, ONCE_SECONDS)
    if entry is not None:
        if entry["fingerprint"] != fingerprint:
            raise HTTPError(
                409,
                ChatError("conflict", "This Idempotency-Key was used with another body."),
            )
        if entry["answer"] is None:
            # The racing request is still running: waiting for it could hold
            # this one for as long as Redis is slow, so the caller retries.
            raise HTTPError(
                409,
                ChatError("in_progress", "A request with this Idempotency-Key is in progress."),
                {"Retry-After": "1"},
            )
        return web.json_response(entry["answer"], headers={"Idempotent-Replayed": "true"})
    try:
        answer = await _deliver(request, grant, data)
    except BaseException:
        # Nothing was answered, so nothing is kept: a retry may run it again.
        await store.release(key)
        raise
    await store.complete(key, fingerprint, answer, ONCE_SECONDS)
    return web.json_response(answer)


def _idempotency_key(request: web.Request) -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.match(raw):
        message = "Idempotency-Key must be 1 to 255 visible ASCII characters."
        raise ChatError("invalid", message, {IDEMPOTENCY_HEADER: [message]})
    return raw


def _fingerprint(body: Any) -> str:
    # Canonical JSON: the same object sent with other spacing or key order is the same body.
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _deliver(request: web.Request, grant: BotGrant | None, data: dict[str, Any]) -> Record:
    service, sender, text = request.app[SERVICE], data["from_"], data["text"]
    bot = grant is not None
    if grant is not None:
        sender = grant.name
    if "room" in data:
        if grant is not None:  # a bot posts into a private room only as its member
            await service.check_read(Actor(grant.name), data["room"])
        message = await service.post_message(sender, data["room"], text, bot=bot)
    elif "to" in data:
        message = await service.send_private(sender, data["to"], text, bot=bot)
    else:
        message = await service.announce(sender, text)
    return {"ok": True, "id": message["id"], "ts": message["ts"]}


def _check_bot_emit(grant: BotGrant, body: dict[str, Any], data: dict[str, Any]) -> None:
    """A bot posts as itself, to its rooms or to users, and never to everyone."""
    if "from" in body and data["from_"] != grant.name:
        raise forbidden(f"A bot token posts as {grant.name} only.")
    if "broadcast" in data:
        raise forbidden("Bot tokens may not broadcast.")
    if "room" in data:
        _check_room(grant, data["room"])


def _check_room(grant: BotGrant | None, room: str) -> None:
    if grant is not None and not grant.covers(room):
        raise forbidden(f"This bot token does not cover room {room}.")


@routes.get("/api/rooms/{room}")
async def room(request: web.Request) -> web.Response:
    """A room's members and newest history (for a bot, of a room its token covers)."""
    grant = check_key(request, bots=True)
    data = schemas.load(schemas.RoomSchema(), {"room": request.match_info["room"]})
    _check_room(grant, data["room"])
    service = request.app[SERVICE]
    actor = REST_ACTOR if grant is None else Actor(grant.name)
    # Permission first: the snapshot of a private room is for its members only.
    info = await service.room_info(actor, data["room"])
    snapshot = await service.room_snapshot(data["room"])
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


async def room_body(request: web.Request, schema: Schema, **path: str) -> dict[str, Any]:
    """The checked key, then the JSON body merged with path values, validated by ``schema``."""
    check_key(request)
    body = await read_json(request) if request.body_exists or request.method == "POST" else {}
    if not isinstance(body, dict):
        raise ChatError("invalid", "The body must be an object.", schemas.NOT_AN_OBJECT)
    return schemas.load(schema, {**body, **path})


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    """Create a room for ``owner``: 201 with its info, 409 when it exists."""
    data = await room_body(request, schemas.RestCreateRoomSchema())
    info = await request.app[SERVICE].create_room(
        Actor(data["owner"]), data["room"], private=data["private"], topic=data["topic"]
    )
    return web.json_response({"ok": True, "room": info}, status=201)


@routes.post("/api/rooms/{room}/members")
async def add_member(request: web.Request) -> web.Response:
    """Invite ``user`` (a member, in a private room)."""
    data = await room_body(request, schemas.RoomUserSchema(), room=request.match_info["room"])
    await request.app[SERVICE].invite(REST_ACTOR, data["room"], data["user"])
    return web.json_response({"ok": True})


@routes.delete("/api/rooms/{room}/members/{user}")
async def remove_member(request: web.Request) -> web.Response:
    """Kick ``user`` out of the room on every process."""
    data = await room_body(request, schemas.KickSchema(), **request.match_info)
    await request.app[SERVICE].kick(REST_ACTOR, data["room"], data["user"], data["reason"])
    return web.json_response({"ok": True})


@routes.post("/api/rooms/{room}/bans")
async def ban(request: web.Request) -> web.Response:
    """Ban ``user`` from the room, for ``seconds`` or until unbanned."""
    data = await room_body(request, schemas.BanSchema(), room=request.match_info["room"])
    service = request.app[SERVICE]
    await service.ban(REST_ACTOR, data["room"], data["user"], data["reason"], data.get("seconds"))
    return web.json_response({"ok": True})


@routes.delete("/api/rooms/{room}/bans/{user}")
async def unban(request: web.Request) -> web.Response:
    """Lift ``user``'s ban in the room."""
    data = await room_body(request, schemas.RoomUserSchema(), **request.match_info)
    await request.app[SERVICE].unban(REST_ACTOR, data["room"], data["user"])
    return web.json_response({"ok": True})
