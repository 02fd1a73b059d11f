"""The Socket.IO edge: authenticate connections, validate events, call the service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from redis.exceptions import RedisError
from socketio import packet as sio_packet

from . import schemas
from .auth import AuthError, authenticate
from .config import Settings
from .errors import ChatError
from .guard import GuardedSocketServer
from .service import ChatService

__all__ = ["ChatSocketServer", "SocketDelivery", "register_handlers"]

log = logging.getLogger(__name__)

NAMESPACE = "/"
Reply = dict[str, Any]
UNAVAILABLE = ChatError("unavailable", "Storage is unreachable; try again shortly.")
EventHandler = Callable[[str, dict[str, Any]], Awaitable[Reply]]


class ChatSocketServer(GuardedSocketServer):
    """A python-socketio server that keeps clients out of its internal events.

    A client may name an event anything; python-socketio would route the names
    ``connect``, ``disconnect`` and ``*`` to handlers with other signatures, so
    those, and names that are not strings, never reach a handler here. It also
    calls ``on_connected`` once the client has been told it is connected, the
    first moment an emit to it is sure to arrive after the handshake.
    """

    on_connected: Callable[[str], Awaitable[None]] | None = None
    on_unroutable: Callable[[], Reply] | None = None

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        if (
            isinstance(data, list)
            and data
            and isinstance(data[0], str)
            and data[0] not in self.reserved_events
            and data[0] != "*"
        ):
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        if id is not None and self.on_unroutable is not None:
            reply = self.on_unroutable()
            ack = self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=[reply])
            await self._send_packet(eio_sid, ack)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        namespace = namespace or NAMESPACE
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace) and self.on_connected:
            await self.on_connected(sid)


class SocketDelivery:
    """``service.Delivery`` over python-socketio rooms (and its Redis manager)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def enter(self, sid: str, channel: str) -> None:
        await self.sio.enter_room(sid, channel)

    async def leave(self, sid: str, channel: str) -> None:
        await self.sio.leave_room(sid, channel)

    async def emit(
        self,
        event: str,
        data: dict[str, Any],
        *,
        to: str | list[str] | None = None,
        skip_sid: str | None = None,
    ) -> None:
        await self.sio.emit(event, data, to=to, skip_sid=skip_sid)


def unknown_event() -> Reply:
    """The ack of an event this server does not know."""
    return ChatError("unknown_event", "This server knows no such event.").to_reply()


class SocketHandlers:
    """The handlers of every client event, each a thin shell around the service."""

    def __init__(self, settings: Settings, service: ChatService) -> None:
        self.settings = settings
        self.service = service
        self.events: dict[str, EventHandler] = {
            "join": self.join,
            "leave": self.leave,
            "message": self.message,
            "private_message": self.private_message,
            "typing": self.typing,
            "history": self.history,
            "conversations": self.conversations,
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            user = authenticate(auth, self.settings.secret)
        except AuthError as exc:
            log.info("refused a connection: %s", exc.code)
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
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
            return ChatError(
                "unavailable", "Storage is unreachable; try again shortly."
            ).to_reply()
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
        message = await self.service.send_message(sid, data["room"], data["text"])
        return {"ok": True, "id": message["id"], "ts": message["ts"]}

    async def private_message(self, sid: str, payload: dict[str, Any]) -> Reply:
        data = schemas.load(schemas.PrivateMessageSchema(), payload)
        user = self.service.user_of(sid)
        message = await self.service.send_private(user, data["to"], data["text"])
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


def register_handlers(sio: ChatSocketServer, handlers: SocketHandlers) -> None:
    """Route the server's events to ``handlers``."""
    sio.on("connect", handlers.on_connect)
    sio.on("disconnect", handlers.on_disconnect)
    sio.on("*", handlers.dispatch)
    sio.on_connected = handlers.on_connected
    sio.on_unroutable = unknown_event
