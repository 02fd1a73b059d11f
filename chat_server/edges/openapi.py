"""The REST API's OpenAPI 3.1 description, built by apispec from the server's own schemas.

Request bodies and path parameters come from the marshmallow schemas the
views validate with (``edges/schemas.py``), answers from ``edges/answers.py``,
so a changed rule changes the document with it. ``tests/contract/test_openapi.py``
checks that every route the app serves is described here, and runs
schemathesis against a live server to check that it answers as described.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from chat_server.edges import answers, schemas
from chat_server.edges.keys import OPENAPI
from chat_server.edges.rest import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY, MAX_BODY

__all__ = ["OPENAPI_PATH", "add_routes", "document", "ecma_pattern"]

OPENAPI_PATH = "/api/openapi.json"
TITLE = "chat-server REST API"
#: The contract's version (shared/CONTRACT.md "Version 2 additions"), not the package's.
VERSION = "2"

#: Who may call what: the API key (an admin), or also a bot token.
KEY_ONLY: list[dict[str, list[str]]] = [{"ApiKey": []}]
KEY_OR_BOT: list[dict[str, list[str]]] = [{"ApiKey": []}, {"BotToken": []}]


def ecma_pattern(regex: re.Pattern[str]) -> str:
    """``regex`` (matched with ``re.match``, ending in ``\\Z``) as an anchored JSON Schema pattern.

    JSON Schema patterns are ECMA-262 and match anywhere in the string, so the
    whole-string match of the server's checks needs ``^`` and ``$``; ``\\Z``
    does not exist there.
    """
    body = regex.pattern.removesuffix(r"\Z")
    return f"^(?:{body})$"


def _anchored_patterns(
    self: Any, field: Any, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """An apispec attribute function: the server's regexes as anchored ECMA patterns."""
    for validator in field.validators:
        regex = getattr(validator, "regex", None)
        if isinstance(regex, re.Pattern):
            return {"pattern": ecma_pattern(regex)}
    return {}


def _json(schema: Schema | dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answer(description: str, schema: Schema, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json(schema)}
    if headers:
        answer["headers"] = {
            name: {"$ref": f"#/components/headers/{ref}"} for name, ref in headers.items()
        }
    return answer


def _error(description: str, **headers: str) -> dict[str, Any]:
    return _answer(description, answers.ErrorAnswer(), **headers)


#: The refusals, as components: an operation names the ones it can give.
ERRORS: dict[str, dict[str, Any]] = {
    "Invalid": _error(
        "The body, a path value or a header is not valid (`error.code` = `invalid`, "
        "`error.fields` says which; `_schema` for the whole body)."
    ),
    "Unauthorized": _error(
        "No, a wrong or an expired credential (`unauthorized`).",
        **{"WWW-Authenticate": "WWW-Authenticate"},
    ),
    "Forbidden": _error(
        "The caller is known but may not do this (`forbidden`): a bot token outside its "
        "scope, a user's token without `bot: true`, or a room rule."
    ),
    "TooLarge": _error(f"The body exceeds {MAX_BODY} bytes (`too_large`)."),
    "RateLimited": _error(
        "Over `CHAT_API_RATE_PER_SECOND` for this credential (`rate_limited`).",
        **{"Retry-After": "Retry-After"},
    ),
    "Unavailable": _error(
        "The REST API is off (`api_disabled`: neither `CHAT_API_KEY` nor `CHAT_SECRET` "
        "is set), the process is draining (`draining`, with `Retry-After`), or Redis "
        "did not answer (`unavailable`, with `outcome` on POST).",
        **{"Retry-After": "Retry-After"},
    ),
}

HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WWW-Authenticate": {
        "description": "Always `Bearer`.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the kept answer of an earlier request "
        "with the same `Idempotency-Key`; nothing was delivered again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <CHAT_API_KEY>`. The key acts as an admin.",
    },
    "BotToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <token>` from `python -m chat_server token "
        "NAME --bot [--room R]...`, signed with `CHAT_SECRET`: posts as NAME only, to its "
        "rooms (all without the claim) and to any user; never broadcasts or administers.",
    },
}

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "description": "Makes the emit idempotent for 10 minutes per credential: a repeat "
    "answers the first answer (with `Idempotent-Replayed: true`) and delivers nothing.",
    "schema": {"type": "string", "pattern": ecma_pattern(IDEMPOTENCY_KEY)},
}


def _refusals(*names: str) -> dict[str, str]:
    """The operation's error answers by status, naming ``ERRORS`` components."""
    statuses = {
        "Invalid": "400",
        "Unauthorized": "401",
        "Forbidden": "403",
        "TooLarge": "413",
        "RateLimited": "429",
        "Unavailable": "503",
    }
    return {statuses[name]: name for name in names}


#: Every credentialed operation can be refused these ways.
GUARDED = ("Unauthorized", "Forbidden", "RateLimited", "Unavailable")


#: The room and user operations of the API key, by the name of their body: the
#: schema their view validates path and body with (merged), and which of its
#: fields the path gives.
ADMINISTERED: dict[str, tuple[type[Schema], tuple[str, ...]]] = {
    "AddMember": (schemas.RoomUserSchema, ("room",)),
    "Kick": (schemas.KickSchema, ("room", "user")),
    "Ban": (schemas.BanSchema, ("room",)),
    "Unban": (schemas.RoomUserSchema, ("room", "user")),
    "RemoveUser": (schemas.RemoveUserSchema, ("user",)),
}


def _path(schema: type[Schema], *names: str) -> list[dict[str, Any]]:
    """Path parameters ``names``, as ``schema`` (the view's) checks them."""
    return [{"in": "path", "schema": schema(only=names)}]


def _body(name: str) -> Schema:
    """The body of ``ADMINISTERED[name]``: its schema less the path's fields.

    apispec knows a schema by its class and exclusions, so every such
    instance refers to the component registered under ``name``.
    """
    schema, path = ADMINISTERED[name]
    return schema(exclude=path)


def _administer(
    operation_id: str, summary: str, body: str, *, answer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An operation of the API key alone on a room or a user (``ADMINISTERED[body]``).

    The body is required where the schema requires one of its fields (a POST
    naming its ``user``); otherwise it may be left out.
    """
    schema, path = ADMINISTERED[body]
    content = _body(body)
    required = any(field.required for field in content.load_fields.values())
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": KEY_ONLY,
        "parameters": _path(schema, *path),
        "requestBody": {"required": required, "content": _json(content)},
        "responses": {
            "200": answer or _answer("Done.", answers.OkAnswer()),
            **_refusals("Invalid", "TooLarge", *GUARDED),
        },
    }


def _operations() -> dict[str, dict[str, dict[str, Any]]]:
    """Every path and method the REST API serves, with what it takes and answers."""
    return {
        "/api/emit": {
            "post": {
                "operationId": "emit",
                "summary": "Post a room message, a private message or an announcement",
                "description": "Exactly one target: `room`, `to` or `broadcast: true`. "
                "`from` defaults to `bot`; with a bot token it is always the bot's name.",
                "security": KEY_OR_BOT,
                "parameters": [IDEMPOTENCY_PARAMETER],
                "requestBody": {"required": True, "content": _json(_ref("Emit"))},
                "responses": {
                    "200": _answer(
                        "Stored and delivered (or the replayed first answer).",
                        answers.EmitAnswer(),
                        **{"Idempotent-Replayed": "Idempotent-Replayed"},
                    ),
                    "409": _error(
                        "The `Idempotency-Key` was used with another body (`conflict`), "
                        "or its first request is still running (`in_progress`, retry after "
                        "`Retry-After`).",
                        **{"Retry-After": "Retry-After"},
                    ),
                    **_refusals("Invalid", "TooLarge", *GUARDED),
                },
            }
        },
        "/api/rooms": {
            "post": {
                "operationId": "createRoom",
                "summary": "Create a room for its owner",
                "security": KEY_ONLY,
                "requestBody": {
                    "required": True,
                    "content": _json(schemas.RestCreateRoomSchema()),
                },
                "responses": {
                    "201": _answer("Created.", answers.CreatedRoomAnswer()),
                    "409": _error("The room was created before, or is in use (`room_exists`)."),
                    **_refusals("Invalid", "TooLarge", *GUARDED),
                },
            }
        },
        "/api/rooms/{room}": {
            "get": {
                "operationId": "getRoom",
                "summary": "A room's members, newest history and info",
                "description": "A room nobody used answers empty lists. A bot reads only "
                "rooms its token covers, and a private room only as its member.",
                "security": KEY_OR_BOT,
                "parameters": _path(schemas.RoomSchema, "room"),
                "responses": {
                    "200": _answer("The room.", answers.RoomAnswer()),
                    **_refusals("Invalid", *GUARDED),
                },
            }
        },
        "/api/rooms/{room}/members": {
            "post": _administer(
                "addMember", "Invite a user (a member, in a private room)", "AddMember"
            )
        },
        "/api/rooms/{room}/members/{user}": {
            "delete": _administer(
                "kick",
                "Kick a user out of the room on every process (never its owner: `403`)",
                "Kick",
            )
        },
        "/api/rooms/{room}/bans": {
            "post": _administer(
                "ban",
                "Ban a user for `seconds` or until unbanned (never the owner: `403`)",
                "Ban",
            )
        },
        "/api/rooms/{room}/bans/{user}": {
            "delete": _administer("unban", "Lift a user's ban in the room", "Unban")
        },
        "/api/users/{user}/disconnect": {
            "post": _administer(
                "removeUser",
                "Close every connection of a user; optionally ban it for a while",
                "RemoveUser",
                answer=_answer("Disconnected.", answers.RemovedUserAnswer()),
            )
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 description of the REST API.",
                        "content": _json({"type": "object"}),
                    },
                    **_refusals("Unavailable"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of this process",
                "security": KEY_ONLY,
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_refusals(*GUARDED),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness, and whether the configured Redis answers",
                "security": [],
                "responses": {
                    "200": _answer("Serving.", answers.HealthAnswer()),
                    "503": _answer(
                        "Redis is down (`redis: down`) or the process is draining.",
                        answers.HealthAnswer(),
                    ),
                },
            }
        },
    }


FROM_DEFAULT = (
    "The sender's name. Left out: `bot` with the API key, the bot's own name with a "
    "bot token (which may send no other)."
)
#: ``POST /api/emit``'s body, one schema per target (``EmitSchema`` with that target only).
EMIT_VARIANTS = {"EmitToRoom": "room", "EmitToUser": "to", "Broadcast": "broadcast"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _emit_variants(spec: APISpec) -> None:
    """``Emit``: one of three closed bodies, each ``EmitSchema`` less the other targets.

    The schema's own validator (exactly one target) is no field, so apispec
    cannot see it; three closed variants say it in a way that validators
    and client generators read alike.
    """
    assert set(EMIT_VARIANTS.values()) == set(schemas.EMIT_TARGETS)
    for name, target in EMIT_VARIANTS.items():
        spec.components.schema(name, schema=schemas.EmitSchema(only=(target, "text", "from_")))
        component = spec.components.schemas[name]
        component["required"] = sorted({*component.get("required", []), target})
        # No schema default: generated clients send defaults, and a bot token
        # that sends "from": "bot" posts under another name than its own (403).
        sender = component["properties"]["from"]
        del sender["default"]
        sender["description"] = FROM_DEFAULT
    spec.components.schema(
        "Emit",
        {
            "description": "Exactly one target: `room`, `to` or `broadcast: true`.",
            "oneOf": [_ref(name) for name in EMIT_VARIANTS],
        },
    )


def build_spec() -> APISpec:
    """The apispec ``APISpec`` of the whole REST API."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Bots and services post into the chat and administer rooms. "
            "Every refusal is `{ok: false, error: {code, message, fields?}}`."
        },
    )
    assert plugin.converter is not None  # set by APISpec's init_spec
    # apispec leaves this method unannotated.
    plugin.converter.add_attribute_function(_anchored_patterns)  # type: ignore[no-untyped-call]
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    for name in ADMINISTERED:
        spec.components.schema(name, schema=_body(name))
    _emit_variants(spec)
    for name, error in ERRORS.items():
        spec.components.response(name, error)
    for path, operations in _operations().items():
        spec.path(path=path, operations=operations)
    return spec


@functools.cache
def document() -> bytes:
    """The document as JSON, built once per process (it depends on no setting)."""
    return json.dumps(build_spec().to_dict(), indent=1).encode()


async def openapi_view(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: public, like any service description."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Build the document (once) and serve it."""
    app[OPENAPI] = document()
    app.router.add_get(OPENAPI_PATH, openapi_view)
