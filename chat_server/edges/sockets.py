"""The Socket.IO edge: authenticate connections, validate events, call the service."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from redis.exceptions import RedisError

from chat_server.core.auth import Authenticator, AuthError
from chat_server.core.changes import Change
from chat_server.core.errors import ChatError, unavailable
from chat_server.core.metrics import Metrics
from chat_server.core.service import ChatService, Conversation
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
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.metrics.event_received("connect")
        try:
            user = await self.authenticator.identify(auth)
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
        await self.service.connect(sid, user)
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
        data = schemas.load(schemas.JoinSchema(), payload)
        return await self.service.join(sid, data["room"], data.get("since"))

    async def leave(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomSchema(), payload)
        return await self.service.leave(sid, data["room"])

    async def message(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.MessageSchema(), payload)
        message = await self.service.send_message(
            sid, data["room"], data["text"], data.get("client_id")
        )
        return {"ok": True, "id": message["id"], "ts": message["ts"]}

    async def private_message(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.PrivateMessageSchema(), payload)
        user = self.service.user_of(sid)
        message = await self.service.send_private(
            user, data["to"], data["text"], data.get("client_id")
        )
        return {"ok": True, "id": message["id"], "ts": message["ts"]}

    async def typing(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.RoomSchema(), payload)
        await self.service.typing(sid, data["room"])
        return {"ok": True}

    async def history(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.HistorySchema(), payload)
        before, limit = data.get("before"), schemas.history_limit(data)
        if "room" in data:
            messages = await self.service.room_history(data["room"], before, limit)
        else:
            user = self.service.user_of(sid)
            messages = await self.service.conversation_history(user, data["with_"], before, limit)
        return {"ok": True, "messages": messages}

    async def conversations(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ConversationsSchema(), payload)
        user = self.service.user_of(sid)
        found = await self.service.conversations(user, schemas.history_limit(data))
        return {"ok": True, "conversations": found}

    async def edit(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.EditSchema(), payload)
        return await self._change(sid, data, Change("edit", "", text=data["text"]))

    async def delete(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.DeleteSchema(), payload)
        return await self._change(sid, data, Change("delete", ""))

    async def react(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ReactSchema(), payload)
        return await self._change(
            sid, data, Change("react", "", emoji=data["emoji"], add=data["add"])
        )

    async def _change(self, sid: str, data: dict[str, Any], change: Change) -> Reply:
        user = self.service.user_of(sid)
        change = dataclasses.replace(change, actor=user)
        message = await self.service.change_message(
            self._conversation(user, data), data["id"], change
        )
        return {"ok": True, "id": message["id"], "rev": message["rev"]}

    async def read(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.ReadSchema(), payload)
        user = self.service.user_of(sid)
        kept = await self.service.mark_read(user, self._conversation(user, data), data["id"])
        return {"ok": True, "id": kept}

    @staticmethod
    def _conversation(user: str, data: dict[str, Any]) -> Conversation:
        if "room" in data:
            return Conversation.room(data["room"])
        return Conversation.private(user, data["with_"])


def register_handlers(sio: ChatSocketServer, handlers: SocketHandlers) -> None:
    """Route the server's events to ``handlers``."""
    sio.on("connect", handlers.on_connect)
    sio.on("disconnect", handlers.on_disconnect)
    sio.on("*", handlers.dispatch)
    sio.on_connected = handlers.on_connected
    sio.on_unroutable = handlers.unroutable
