"""marshmallow schemas of what the REST API answers, for its OpenAPI description.

The server builds its answers from the service's records; these schemas say
what those answers hold, and ``tests/contract/test_openapi.py`` holds the
live server to them (schemathesis checks every answer against the document
built from them).
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from chat_server.edges.schemas import (
    MAX_TEXT,
    MAX_TOPIC,
    message_id_field,
    room_field,
    username_field,
)

__all__ = [
    "Answer",
    "CreatedRoomAnswer",
    "EmitAnswer",
    "ErrorAnswer",
    "ErrorDetail",
    "HealthAnswer",
    "OkAnswer",
    "RemovedUserAnswer",
    "RoomAnswer",
    "RoomInfo",
    "RoomMessage",
]


class Answer(Schema):
    """An answer: the fields below, and whatever the server adds later (the contract lets it)."""

    class Meta:
        unknown = INCLUDE


def _true() -> fields.Boolean:
    return fields.Boolean(required=True, metadata={"enum": [True]})


def _names(description: str) -> fields.List[str]:
    return fields.List(username_field(), required=True, metadata={"description": description})


class OkAnswer(Answer):
    """``{ok: true}``: the act was done."""

    ok = _true()


class EmitAnswer(OkAnswer):
    """``POST /api/emit``: the stored message's ``id`` and ``ts``."""

    id = message_id_field(required=True)
    ts = fields.Integer(required=True, metadata={"description": "milliseconds since the epoch"})


class RoomMessage(Answer):
    """A kept room message, in its current state (tombstones included)."""

    id = message_id_field(required=True)
    room = room_field(required=True)
    from_ = username_field(data_key="from", required=True)
    text = fields.String(
        required=True,
        validate=validate.Length(max=MAX_TEXT),
        metadata={"description": 'trimmed; "" for a tombstone'},
    )
    ts = fields.Integer(required=True, metadata={"description": "time of the first send, ms"})
    rev = message_id_field(required=True, metadata={"description": "id of the latest change"})
    client_id = fields.String(metadata={"description": "the sender's idempotency key"})
    bot = fields.Boolean(metadata={"description": "true when a bot token posted it"})
    edited_ts = fields.Integer(metadata={"description": "time of the latest edit, ms"})
    deleted = fields.Boolean(metadata={"description": "true for a tombstone"})
    reactions = fields.Dict(
        keys=fields.String(),
        values=fields.List(username_field()),
        metadata={"description": "emoji -> users who reacted, sorted"},
    )


class RoomInfo(Answer):
    """A room's ``info``; ``members`` only for a private room."""

    name = room_field(required=True)
    private = fields.Boolean(required=True)
    topic = fields.String(required=True, validate=validate.Length(max=MAX_TOPIC))
    owner = username_field(required=True, allow_none=True)
    moderators = _names("sorted")
    created_ts = fields.Integer(required=True, allow_none=True)
    members = fields.List(username_field(), metadata={"description": "private rooms only"})


class RoomAnswer(OkAnswer):
    """``GET /api/rooms/{room}``: who is there, the newest history, and the room's info."""

    room = room_field(required=True)
    members = _names("users present on any process, sorted")
    history = fields.List(
        fields.Nested(RoomMessage),
        required=True,
        metadata={"description": "the newest messages, oldest first (as join gives)"},
    )
    info = fields.Nested(RoomInfo, required=True)


class CreatedRoomAnswer(OkAnswer):
    """``POST /api/rooms``: the new room's info."""

    room = fields.Nested(RoomInfo, required=True)


class RemovedUserAnswer(OkAnswer):
    """``POST /api/users/{user}/disconnect``: connections closed by the process that answered."""

    user = username_field(required=True)
    disconnected = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "connections this process closed (others close theirs too)"},
    )


class ErrorDetail(Answer):
    """The ``error`` object of every refusal."""

    code = fields.String(
        required=True,
        metadata={
            "description": "invalid, unauthorized, forbidden, not_found, conflict, "
            "in_progress, room_exists, too_large, rate_limited, api_disabled, "
            "draining, unavailable, method_not_allowed, ..."
        },
    )
    message = fields.String(required=True, metadata={"description": "one readable sentence"})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "field -> messages (marshmallow's format); _schema: whole body"},
    )
    retry_after = fields.Float(metadata={"description": "seconds, with rate_limited"})
    outcome = fields.String(
        validate=validate.OneOf(["unknown", "none"]),
        metadata={"description": "with unavailable on POST: whether it may have been stored"},
    )


class ErrorAnswer(Answer):
    """``{ok: false, error}``: every 4xx and 5xx answer of the REST API."""

    ok = fields.Boolean(required=True, metadata={"enum": [False]})
    error = fields.Nested(ErrorDetail, required=True)


class HealthAnswer(Answer):
    """``GET /healthz``."""

    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded", "draining"]))
    redis = fields.String(validate=validate.OneOf(["ok", "disabled", "down"]))
