"""The Socket.IO edge: authenticate connections, validate events, call the service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from redis.exceptions import RedisError

from chat_server.core.auth import Authenticator, AuthError
from chat_server.core.changes import Change
from chat_server.core.errors import ChatError, unavailable
from chat_server.core.metrics import Metrics
from chat_server.core.names import Conversation
from chat_server.core.rooms import Actor
from chat_server.core.service import ChatService
from chat_server.edges import schemas
from chat_server.stores.redis import outcome_of
from chat_server.transport.server import ChatSocketServer

__all__ = ["SocketHandlers", "register_handlers"]

log = logging.getLogger(__name__)

NAMESPACE = "/"
Reply = dict[str, Any]
#: Events that store something new; their ``unavailable`` answers say ``outcome``.
SENDS = frozenset({"message", "private_message"})
EventHandler = Callable[[str, dict[str, Any]], Awaitable[Reply]]


def unknown_event() -> Reply:
    """The ack of an event this server does not know."""
    return ChatError("unknown_event", "This server knows no such event.").to_reply()


class SocketHandlers:
    """The handlers of every client event, each a thin shell around the service.

    :param service: the chat's rules.
    :param metrics: where events and the error codes of their answers are counted.
    :param authenticator: who a new connection is (guest or token mode).
    """

    def __init__(
        self, service: ChatService, metrics: Metrics, authenticator: Authenticator
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.authenticator = authenticator
        self.events: dict[str, EventHandler] = {
            "join": self.join,
            "leave": self.leave,
            "message": self.message,
            "private_message": self.private_message,
            "typing": self.typing,
            "history": self.history,
            "conversations": self.conversations,
            "edit": self.edit,
            "delete": self.delete,
            "react": self.react,
            "read": self.read,
            **self._room_events(),
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.metrics.event_received("connect")
        try:
            user, admin = await self.authenticator.identify_admin(auth)
        except AuthError as exc:
            log.info("refused a connection: %s", exc.code)
            self.metrics.rejected_inputs.labels(exc.code).inc()
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        try:
            await self.service.admit(user)
        except ChatError as exc:
            log.info("refused a connection of %s: %s", user, exc.code)
            self.metrics.rejected_inputs.labels(exc.code).inc()
            reply = exc.to_reply()["error"]
            data = {k: v for k, v in reply.items() if k != "message"}
            raise socketio.exceptions.ConnectionRefusedError(exc.message, data) from None
        except RedisError as exc:
            # Fail open: with Redis down the chat is degraded anyway, and
            # locking every user out for it would be worse than a banned
            # user slipping in until it is back.
            log.warning("could not check bans of %s (%s); admitting", user, exc)
        await self.service.connect(sid, user, admin=admin)
        log.info("connected sid=%s user=%s", sid, user)

    async def on_connected(self, sid: str) -> None:
        user = self.service.user_of(sid)
        await self.service.delivery.emit("welcome", {"user": user}, to=sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        await self.service.disconnect(sid)
        log.info("disconnected sid=%s reason=%s", sid, reason)

    async def dispatch(self, event: str, sid: str, *args: Any) -> Reply:
        """Run one client event and return its ack; nothing escapes as an exception."""
        self.metrics.event_received(event)
        reply = await self._run(event, sid, args)
        if reply.get("ok") is False:
            self.metrics.rejected_inputs.labels(reply["error"]["code"]).inc()
        return reply

    def unroutable(self) -> Reply:
        """The ack of an event whose name no handler may see."""
        self.metrics.event_received(None)
        return unknown_event()

    async def _run(self, event: str, sid: str, args: tuple[Any, ...]) -> Reply:
        handler = self.events.get(event)
        if handler is None:
            return unknown_event()
        try:
            if len(args) != 1:
                raise ChatError(
                    "invalid", "Send exactly one payload object.", schemas.NOT_AN_OBJECT
                )
            return await handler(sid, args[0])
        except ChatError as exc:
            return exc.to_reply()
        except RedisError as exc:
            log.warning("event %s: Redis failed (%s)", event, exc)
            return unavailable(outcome_of(exc) if event in SENDS else None).to_reply()
        except Exception:
            log.exception("event %s failed", event)
            return ChatError("internal", "The server could not handle this event.").to_reply()

    async def join(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.JoinSchema, payload)
        return await self.service.join(sid, data["room"], data.get("since"))

    async def leave(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomSchema, payload)
        return await self.service.leave(sid, data["room"])

    async def message(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.MessageSchema, payload)
        message = await self.service.send_message(
            sid, data["room"], data["text"], data.get("client_id")
        )
        return {"ok": True, "id": message["id"], "ts": message["ts"]}

    async def private_message(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.PrivateMessageSchema, payload)
        user = self.service.user_of(sid)
        message = await self.service.send_private(
            user, data["to"], data["text"], data.get("client_id")
        )
        return {"ok": True, "id": message["id"], "ts": message["ts"]}

    async def typing(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomSchema, payload)
        await self.service.typing(sid, data["room"])
        return {"ok": True}

    async def history(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.HistorySchema, payload)
        before, limit = data.get("before"), schemas.history_limit(data)
        if "room" in data:
            await self.service.check_read(self.service.actor_of(sid), data["room"])
            messages = await self.service.room_history(data["room"], before, limit)
        else:
            user = self.service.user_of(sid)
            messages = await self.service.conversation_history(user, data["with_"], before, limit)
        return {"ok": True, "messages": messages}

    async def conversations(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ConversationsSchema, payload)
        user = self.service.user_of(sid)
        found = await self.service.conversations(user, schemas.history_limit(data))
        return {"ok": True, "conversations": found}

    async def edit(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.EditSchema, payload)
        return await self._change(sid, data, Change("edit", "", text=data["text"]))

    async def delete(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.DeleteSchema, payload)
        return await self._change(sid, data, Change("delete", ""))

    async def react(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ReactSchema, payload)
        return await self._change(
            sid, data, Change("react", "", emoji=data["emoji"], add=data["add"])
        )

    async def _change(self, sid: str, data: dict[str, Any], change: Change) -> Reply:
        actor = self.service.actor_of(sid)
        conversation = self._conversation(actor.user, data)
        message = await self.service.change_message(actor, conversation, data["id"], change)
        return {"ok": True, "id": message["id"], "rev": message["rev"]}

    async def read(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ReadSchema, payload)
        actor = self.service.actor_of(sid)
        conversation = self._conversation(actor.user, data)
        return {"ok": True, "id": await self.service.mark_read(actor, conversation, data["id"])}

    @staticmethod
    def _conversation(user: str, data: dict[str, Any]) -> Conversation:
        if "room" in data:
            return Conversation.room(data["room"])
        return Conversation.private(user, data["with_"])

    # -- rooms that belong to someone (docs/moderation.md) ----------------------

    def _room_events(self) -> dict[str, EventHandler]:
        return {
            "create_room": self.create_room,
            "room_info": self.room_info,
            "set_topic": self.set_topic,
            "invite": self.invite,
            "kick": self.kick,
            "ban": self.ban,
            "unban": self.unban,
            "set_role": self.set_role,
        }

    def _actor(self, sid: str) -> Actor:
        return self.service.actor_of(sid)

    async def create_room(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.CreateRoomSchema, payload)
        info = await self.service.create_room(
            self._actor(sid), data["room"], private=data["private"], topic=data["topic"]
        )
        return {"ok": True, "room": info}

    async def room_info(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomSchema, payload)
        return {"ok": True, "room": await self.service.room_info(self._actor(sid), data["room"])}

    async def set_topic(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.TopicSchema, payload)
        info = await self.service.set_topic(self._actor(sid), data["room"], data["topic"])
        return {"ok": True, "room": info}

    async def invite(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomUserSchema, payload)
        await self.service.invite(self._actor(sid), data["room"], data["user"])
        return {"ok": True}

    async def kick(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.KickSchema, payload)
        await self.service.kick(self._actor(sid), data["room"], data["user"], data["reason"])
        return {"ok": True}

    async def ban(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.BanSchema, payload)
        await self.service.ban(
            self._actor(sid), data["room"], data["user"], data["reason"], data.get("seconds")
        )
        return {"ok": True}

    async def unban(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomUserSchema, payload)
        await self.service.unban(self._actor(sid), data["room"], data["user"])
        return {"ok": True}

    async def set_role(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoleSchema, payload)
        info = await self.service.set_role(
            self._actor(sid), data["room"], data["user"], data["role"]
        )
        return {"ok": True, "room": info}


def register_handlers(sio: ChatSocketServer, handlers: SocketHandlers) -> None:
    """Route the server's events to ``handlers``."""
    sio.on("connect", handlers.on_connect)
    sio.on("disconnect", handlers.on_disconnect)
    sio.on("*", handlers.dispatch)
    sio.on_connected = handlers.on_connected
    sio.on_unroutable = handlers.unroutable
