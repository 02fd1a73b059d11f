"""marshmallow schemas for every payload that comes in, socket event or HTTP body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from chat_server.core.auth import USERNAME_PATTERN
from chat_server.core.errors import ChatError
from chat_server.core.ids import ID_PATTERN

__all__ = [
    "BanSchema",
    "ConversationSchema",
    "ConversationsSchema",
    "CreateRoomSchema",
    "DeleteSchema",
    "EditSchema",
    "EmitSchema",
    "HistorySchema",
    "JoinSchema",
    "KickSchema",
    "MessageSchema",
    "PrivateMessageSchema",
    "ReactSchema",
    "ReadSchema",
    "RemoveUserSchema",
    "RestCreateRoomSchema",
    "RoleSchema",
    "RoomSchema",
    "RoomUserSchema",
    "TopicSchema",
    "load",
]

ROOM_PATTERN = re.compile(r"[A-Za-z0-9_.\-#]{1,64}\Z", re.ASCII)
MAX_TEXT = 2000
MAX_EMOJI = 32
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
NOT_AN_OBJECT = {"_schema": ["Not an object."]}
#: The largest integer every JSON reader holds exactly (a double's 53 bits).
MAX_SAFE_INTEGER = 2**53 - 1


class Text(fields.String):
    """A message text: trimmed, then 1 to 2,000 code points."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=True,
            validate=validate.Length(
                min=1, max=MAX_TEXT, error="Text must be 1 to {max} characters after trimming."
            ),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = str(super()._deserialize(value, attr, data, **kwargs)).strip()
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate: JSON lets it through, no store or browser can keep it.
            raise ValidationError("Text must be valid Unicode (no lone surrogates).") from None
        return text


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, fractions and numeric strings.

    ``5.0`` is taken as ``5``: JSON has one number type, JSON Schema (and so
    the OpenAPI document) calls it an integer, and a Python client's
    ``json.dumps`` writes a float that happens to be whole that way. Only
    within +-(2**53 - 1), where a float is an exact integer (I-JSON, RFC 7493):
    ``1e308`` stays refused.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            value = int(value)
        return int(super()._deserialize(value, attr, data, **kwargs))


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, nothing that merely looks like one."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class StrictTrue(fields.Boolean):
    """A flag that must be the JSON literal ``true`` (``enum: [true]`` in the OpenAPI document)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"enum": [True]}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True:
            raise ValidationError("Must be true.")
        return True


def room_field(**kwargs: Any) -> fields.String:
    """A room name: 1 to 64 ASCII letters, digits, ``_``, ``-``, ``.``, ``#``."""
    return fields.String(
        validate=validate.Regexp(
            ROOM_PATTERN, error="A room is 1 to 64 letters, digits, '_', '-', '.' or '#'."
        ),
        **kwargs,
    )


def username_field(**kwargs: Any) -> fields.String:
    """A username: 1 to 32 ASCII letters, digits, ``_``, ``-``, ``.``."""
    return fields.String(
        validate=validate.Regexp(
            USERNAME_PATTERN, error="A username is 1 to 32 letters, digits, '_', '-' or '.'."
        ),
        **kwargs,
    )


def message_id_field(**kwargs: Any) -> fields.String:
    """A message id as the server hands them out."""
    return fields.String(
        validate=validate.Regexp(ID_PATTERN, error="Not a message id of this server."),
        **kwargs,
    )


class RoomSchema(Schema):
    """``leave`` and ``typing``: ``{room}``."""

    room = room_field(required=True)


class JoinSchema(Schema):
    """``join``: ``{room, since?}``."""

    room = room_field(required=True)
    since = message_id_field()


#: A ``client_id``: what makes a send idempotent (no ':' by design).
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z", re.ASCII)


def client_id_field() -> fields.String:
    """A send's optional idempotency key."""
    return fields.String(
        validate=validate.Regexp(
            CLIENT_ID_PATTERN, error="A client_id is 1 to 64 letters, digits, '_' or '-'."
        )
    )


class MessageSchema(Schema):
    """``message``: ``{room, text, client_id?}``."""

    room = room_field(required=True)
    text = Text()
    client_id = client_id_field()


class PrivateMessageSchema(Schema):
    """``private_message``: ``{to, text, client_id?}``."""

    to = username_field(required=True)
    text = Text()
    client_id = client_id_field()


class ConversationSchema(Schema):
    """A conversation, addressed as ``{room}`` or ``{with}`` (exactly one)."""

    room = room_field()
    with_ = username_field(data_key="with")

    @validates_schema
    def one_conversation(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Exactly one of ``room`` and ``with``."""
        if ("room" in data) == ("with_" in data):
            raise ValidationError("Give exactly one of room and with.")


class HistorySchema(ConversationSchema):
    """``history``: ``{room | with, before?, limit?}``; limits above 200 are capped."""

    before = message_id_field()
    limit = StrictInteger(validate=validate.Range(min=1, error="Limit must be at least 1."))


class DeleteSchema(ConversationSchema):
    """``delete``: ``{room | with, id}``."""

    id = message_id_field(required=True)


class ReadSchema(DeleteSchema):
    """``read``: ``{room | with, id}``; the id need not be kept."""


class EditSchema(DeleteSchema):
    """``edit``: ``{room | with, id, text}``, the text as for ``message``."""

    text = Text()


class Emoji(fields.String):
    """A reaction: 1 to 32 characters with no white space anywhere, not trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=True,
            validate=validate.Length(
                min=1, max=MAX_EMOJI, error="An emoji is 1 to {max} characters."
            ),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        emoji = str(super()._deserialize(value, attr, data, **kwargs))
        if any(char.isspace() for char in emoji):
            raise ValidationError("An emoji holds no white space.")
        try:
            emoji.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("An emoji must be valid Unicode.") from None
        return emoji


class ReactSchema(DeleteSchema):
    """``react``: ``{room | with, id, emoji, add}``; ``add`` a JSON boolean."""

    emoji = Emoji()
    add = StrictBoolean(required=True)


class ConversationsSchema(Schema):
    """``conversations``: ``{limit?}``; limits above 200 are capped."""

    limit = StrictInteger(validate=validate.Range(min=1, error="Limit must be at least 1."))


#: The longest server-wide ban: 30 days.
MAX_BAN_SECONDS = 30 * 24 * 3600


class RemoveUserSchema(Schema):
    """``POST /api/users/{user}/disconnect``: ``{ban_seconds?}``."""

    user = username_field(required=True)
    ban_seconds = StrictInteger(
        validate=validate.Range(
            min=1, max=MAX_BAN_SECONDS, error="ban_seconds must be {min} to {max}."
        )
    )


#: The targets of ``POST /api/emit``, of which a body names exactly one.
EMIT_TARGETS = ("room", "to", "broadcast")


class EmitSchema(Schema):
    """``POST /api/emit``: one target among ``room``, ``to``, ``broadcast``."""

    room = room_field()
    to = username_field()
    broadcast = StrictTrue()
    text = Text()
    from_ = username_field(data_key="from", load_default="bot")

    @validates_schema
    def one_target(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Exactly one of ``room``, ``to`` and ``broadcast``."""
        targets = [name for name in EMIT_TARGETS if name in data]
        if len(targets) != 1:
            raise ValidationError("Give exactly one target: room, to or broadcast: true.")


#: One instance of each schema class handed to ``load`` as a class: building a
#: marshmallow schema copies its declared fields, which cost more than the
#: validation of a small payload, and these schemas hold no state between loads.
_SHARED: dict[type[Schema], Schema] = {}


def load(schema: Schema | type[Schema], payload: object) -> dict[str, Any]:
    """Validate ``payload``; ``ChatError(invalid)`` with marshmallow's fields if bad.

    ``schema`` is an instance, or a class whose one shared instance is used.
    """
    if isinstance(schema, type):
        shared = _SHARED.get(schema)
        if shared is None:
            shared = _SHARED[schema] = schema()
        schema = shared
    if not isinstance(payload, dict):
        # Checked here so the answer is the same whatever marshmallow's version says.
        raise ChatError(
            "invalid", "The payload must be an object.", {"_schema": ["Not an object."]}
        )
    try:
        data: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ChatError("invalid", "The payload is not valid.", messages) from None
    return data


def history_limit(data: Mapping[str, Any]) -> int:
    """The number of messages a ``history`` request asks for, capped at 200."""
    return min(int(data.get("limit", HISTORY_DEFAULT_LIMIT)), HISTORY_MAX_LIMIT)


# -- rooms that belong to someone (docs/moderation.md) ---------------------------

#: The longest topic, in code points.
MAX_TOPIC = 200
#: The longest kick or ban reason, in code points.
MAX_REASON = 200
#: The longest room ban with an end: one year (without ``seconds`` it never ends).
MAX_ROOM_BAN_SECONDS = 365 * 24 * 3600


def short_text(limit: int, what: str, **kwargs: Any) -> fields.String:
    """A trimmed-free text of 0 to ``limit`` code points (topics, reasons)."""
    return fields.String(
        validate=validate.Length(max=limit, error=f"{what} must be at most {{max}} characters."),
        **kwargs,
    )


class CreateRoomSchema(Schema):
    """``create_room``: ``{room, private?, topic?}``."""

    room = room_field(required=True)
    private = StrictBoolean(load_default=False)
    topic = short_text(MAX_TOPIC, "A topic", load_default="")


class TopicSchema(Schema):
    """``set_topic``: ``{room, topic}``."""

    room = room_field(required=True)
    topic = short_text(MAX_TOPIC, "A topic", required=True)


class RoomUserSchema(Schema):
    """``invite`` and ``unban``: ``{room, user}``."""

    room = room_field(required=True)
    user = username_field(required=True)


class KickSchema(RoomUserSchema):
    """``kick``: ``{room, user, reason?}``."""

    reason = short_text(MAX_REASON, "A reason", load_default="")


class BanSchema(KickSchema):
    """``ban``: ``{room, user, reason?, seconds?}``; without ``seconds`` until unbanned."""

    seconds = StrictInteger(
        validate=validate.Range(
            min=1, max=MAX_ROOM_BAN_SECONDS, error="seconds must be {min} to {max}."
        )
    )


class RoleSchema(RoomUserSchema):
    """``set_role``: ``{room, user, role}``, role ``moderator`` or ``member``."""

    role = fields.String(
        required=True,
        validate=validate.OneOf(["moderator", "member"], error="role is moderator or member."),
    )


class RestCreateRoomSchema(CreateRoomSchema):
    """``POST /api/rooms``: ``{room, owner, private?, topic?}``."""

    owner = username_field(required=True)
