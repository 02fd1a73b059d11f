"""ChatService: who may say what where, and what everyone else then receives.

It knows nothing of HTTP or Socket.IO: the socket handlers and the REST views
both call it, so a bot's message and a user's message take the same path. It
talks to the transport through the small ``Delivery`` interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from typing import Any

from chat_server.core.changes import Change
from chat_server.core.errors import ChatError
from chat_server.core.names import Conversation, conversation_key, room_channel, user_channel
from chat_server.core.ports import (
    Bans,
    Delivery,
    Directory,
    History,
    HookEvent,
    Markers,
    Presence,
    Record,
    Rooms,
)
from chat_server.core.rooms import Actor, RoomRules
from chat_server.core.webhooks import Webhooks

__all__ = ["ChatService"]

log = logging.getLogger(__name__)

JOIN_HISTORY = 50
BROADCAST_KEY = "broadcast"
#: The presence "room" of every user with a connection somewhere; no room
#: name can clash with it (room names hold no ':').
ONLINE = ":online"


@dataclass(slots=True)
class Session:
    """One connection: its user and the rooms it joined."""

    user: str
    rooms: set[str] = field(default_factory=set)
    admin: bool = False  # the token's ``admin: true`` claim


def _with_client_id(record: Record, client_id: str | None) -> Record:
    """``record``, carrying ``client_id`` when the sender gave one."""
    return record if client_id is None else {**record, "client_id": client_id}


def _as_bot(record: Record, bot: bool) -> Record:
    """``record``, marked ``bot: true`` when a bot token sent it (absent otherwise)."""
    return {**record, "bot": True} if bot else record


class _KeyedLocks:
    """One asyncio lock per key, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ChatService:
    """The chat's rules, shared by every transport.

    :param history: where messages are kept.
    :param presence: who is in which room, across processes.
    :param directory: whom each user has private conversations with.
    :param delivery: how events reach connections.
    :param bans: users refused a connection for a while.
    :param markers: each user's read marker per conversation.
    :param rooms: the registry of rooms that belong to someone.
    :param webhooks: the events a backend hears; off unless given.
    """

    def __init__(
        self,
        history: History,
        presence: Presence,
        directory: Directory,
        *,
        delivery: Delivery,
        bans: Bans,
        markers: Markers,
        rooms: Rooms,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.bans = bans
        self.markers = markers
        self.rules = RoomRules(rooms)
        self.history = history
        self.presence = presence
        self.delivery = delivery
        self.directory = directory
        self.webhooks = webhooks if webhooks is not None else Webhooks(None)
        self.sessions: dict[str, Session] = {}
        # user -> this process's connections of that user, counted only while
        # a webhook wants ``recipient_online`` (else nobody asks).
        self._online: dict[str, int] = {}
        # (room, user) -> this process's connections of that user in that room.
        self._local: dict[tuple[str, str], set[str]] = {}
        # Serialises presence changes of one user in one room, so that a join
        # racing a leave cannot reach the store in the wrong order.
        self._locks = _KeyedLocks()

    # -- connections -----------------------------------------------------

    async def connect(self, sid: str, user: str, *, admin: bool = False) -> None:
        """Register a new connection of ``user`` (an admin, when its token said so)."""
        self.sessions[sid] = Session(user, admin=admin)
        await self.delivery.enter(sid, user_channel(user))
        if self.webhooks.wants("private_message"):
            await self._count_online(user, +1)

    async def _count_online(self, user: str, step: int) -> None:
        """Count one connection of ``user`` in or out; tell presence on 0 <-> 1."""
        count = self._online.get(user, 0) + step
        if count > 0:
            self._online[user] = count
        else:
            self._online.pop(user, None)
        try:
            if count == 1 and step > 0:
                await self.presence.add(ONLINE, user)
            elif count == 0:
                await self.presence.remove(ONLINE, user)
        except Exception:
            # Only recipient_online is at stake: a missed add reads as offline
            # (a push too many), a missed remove expires with the entry's ttl.
            log.warning("could not record whether %s is online", user, exc_info=True)

    async def disconnect(self, sid: str) -> None:
        """Forget a connection; it leaves every room it was in."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        if session.user in self._online:
            await self._count_online(session.user, -1)
        for room in sorted(session.rooms):
            try:
                await self._leave(sid, session, room)
            except Exception:  # storage unreachable: keep leaving the other rooms
                # This process has forgotten the membership either way, so the
                # presence entry is no longer refreshed and expires by itself.
                log.warning("user %s left %s without telling presence", session.user, room)

    async def admit(self, user: str) -> None:
        """Refuse ``user``'s new connection with ``banned`` while a ban lasts."""
        remaining = await self.bans.remaining(user)
        if remaining > 0:
            seconds = math.ceil(remaining)
            raise ChatError(
                "banned",
                f"You are banned from this chat for another {seconds} s.",
                retry_after=seconds,
            )

    async def remove_user(self, user: str, ban_seconds: int | None = None) -> int:
        """Close every connection of ``user`` on every process; ban it for ``ban_seconds``.

        The ban is stored first, so a client reconnecting the moment it is
        closed is already refused. Returns the connections closed here.
        """
        notice: dict[str, Any] = {
            "reason": "removed",
            "message": "An administrator closed your connection.",
        }
        if ban_seconds is not None:
            await self.bans.ban(user, ban_seconds)
            notice = {
                "reason": "banned",
                "message": f"An administrator banned you from this chat for {ban_seconds} s.",
                "ban_seconds": ban_seconds,
            }
        return await self.delivery.disconnect_user(user, notice)

    def user_of(self, sid: str) -> str:
        """The username of connection ``sid``."""
        return self._session(sid).user

    def _session(self, sid: str) -> Session:
        session = self.sessions.get(sid)
        if session is None:
            raise ChatError("not_connected", "This connection is not registered.")
        return session

    def _in_room(self, sid: str, room: str) -> Session:
        session = self._session(sid)
        if room not in session.rooms:
            raise ChatError("not_in_room", f"Join {room} first.")
        return session

    # -- rooms -------------------------------------------------------------

    async def join(self, sid: str, room: str, since: str | None = None) -> dict[str, Any]:
        """Add connection ``sid`` to ``room``; the join ack."""
        session = self._session(sid)
        if room not in session.rooms:
            await self.rules.check_join(room, Actor(session.user, session.admin))
        await self._enter(sid, session, room)
        # History is read after entering, so a message stored meanwhile arrives
        # live as well as in history (clients drop the duplicate by id) rather
        # than falling into a gap.
        key = room_channel(room)
        answer: dict[str, Any] = {"ok": True, "room": room}
        if since is None:
            messages, recovered = await self.history.latest(key, JOIN_HISTORY), True
        else:
            page = await self.history.after(key, since)
            messages, recovered = page.messages, page.recovered
            answer["updates"] = page.updates
        members, (marker, unread) = await asyncio.gather(
            self.presence.members(room), self._read_state(session.user, key)
        )
        answer.update(
            members=members, history=messages, recovered=recovered, read=marker, unread=unread
        )
        return answer

    async def _read_state(self, user: str, key: str) -> tuple[str | None, int]:
        """``user``'s marker in conversation ``key`` and the unread messages after it."""
        (marker,) = await self.markers.get_many(user, [key])
        return marker, await self.history.unread(key, user, marker)

    async def _enter(self, sid: str, session: Session, room: str) -> None:
        user = session.user
        async with self._locks.hold((room, user)):
            if room in session.rooms:
                return
            local = self._local.setdefault((room, user), set())
            session.rooms.add(room)
            local.add(sid)
            try:
                await self.delivery.enter(sid, room_channel(room))
                if len(local) == 1 and await self.presence.add(room, user):
                    await self._presence(room, user, "join")
            except BaseException:
                self._forget(sid, session, room)
                await self.delivery.leave(sid, room_channel(room))
                raise

    async def leave(self, sid: str, room: str) -> dict[str, Any]:
        """Remove connection ``sid`` from ``room``; the leave ack."""
        session = self._in_room(sid, room)
        await self._leave(sid, session, room)
        return {"ok": True, "room": room}

    async def _leave(self, sid: str, session: Session, room: str) -> None:
        user = session.user
        async with self._locks.hold((room, user)):
            if room not in session.rooms:
                return
            last_here = self._forget(sid, session, room)
            await self.delivery.leave(sid, room_channel(room))
            if last_here and await self.presence.remove(room, user):
                await self._presence(room, user, "leave")

    def _forget(self, sid: str, session: Session, room: str) -> bool:
        """Drop local membership; True if that was the user's last connection here."""
        session.rooms.discard(room)
        local = self._local.get((room, session.user))
        if local is None:
            return False
        local.discard(sid)
        if local:
            return False
        del self._local[(room, session.user)]
        return True

    async def _presence(self, room: str, user: str, action: str) -> None:
        payload = {"room": room, "user": user, "action": action}
        await self.delivery.emit("presence", payload, to=room_channel(room))
        await self.webhooks.notify("presence", payload)

    # -- messages ------------------------------------------------------------

    async def send_message(
        self, sid: str, room: str, text: str, client_id: str | None = None
    ) -> Record:
        """A connection's message to a room it is in.

        With ``client_id``, a send the same user made with it in the last
        ten minutes (from any connection, on any process) is not repeated:
        the first message's record comes back and nothing is delivered.
        """
        session = self._in_room(sid, room)
        return await self.post_message(session.user, room, text, client_id)

    async def post_message(
        self, sender: str, room: str, text: str, client_id: str | None = None, *, bot: bool = False
    ) -> Record:
        """Store and deliver a room message from ``sender`` (a user or a bot).

        ``bot``: the sender holds a bot token, and the message says so with
        ``bot: true`` when delivered and in history.
        """
        record = _as_bot({"room": room, "from": sender, "text": text}, bot)
        hook = self.webhooks.prepare("message") if self.history.queues_hooks else None
        message, replayed = await self._store_and_deliver(
            room_channel(room),
            _with_client_id(record, client_id),
            "message",
            room_channel(room),
            hook,
        )
        if replayed:
            return message
        if hook is None:
            await self.webhooks.notify("message", message)
        else:
            self.webhooks.queued(hook)
        return message

    async def send_private(
        self, sender: str, to: str, text: str, client_id: str | None = None, *, bot: bool = False
    ) -> Record:
        """Store and deliver a private message to every connection of both users.

        The recipient need not be online: the message waits in the
        conversation's history. ``client_id`` as for ``send_message``,
        ``bot`` as for ``post_message``.
        """
        record = _as_bot({"from": sender, "to": to, "text": text}, bot)
        record = _with_client_id(record, client_id)
        recipients = [user_channel(to), user_channel(sender)]
        key = conversation_key(sender, to)
        message, replayed = await self._store_and_deliver(
            key, record, "private_message", recipients
        )
        if replayed:
            return message
        try:
            await self.directory.touch(sender, to, message["ts"])
        except Exception:
            # Stored and delivered already: a stale directory entry is mended by
            # the next message, while failing here would invite a duplicate resend.
            log.warning("could not index the conversation of a private message", exc_info=True)
        if self.webhooks.wants("private_message"):
            online = await self._is_online(to)
            await self.webhooks.notify("private_message", {**message, "recipient_online": online})
        return message

    async def _is_online(self, user: str) -> bool:
        """Whether ``user`` has a connection on any process now (False if unknown)."""
        if user in self._online:
            return True
        try:
            return await self.presence.present(ONLINE, user)
        except Exception:
            # Sent anyway: "offline" at worst makes the backend push once too often.
            log.warning("could not tell whether %s is online", user, exc_info=True)
            return False

    async def _store_and_deliver(
        self,
        key: str,
        record: Record,
        event: str,
        to: str | list[str],
        hook: HookEvent | None = None,
    ) -> tuple[Record, bool]:
        """Store ``record`` in conversation ``key`` and deliver it as ``event`` to ``to``.

        Every connection must receive one conversation's messages in id order.
        Across processes the store publishes each message in the same atomic
        step that gives it its id, and every process (this one too) delivers
        in the order the bus hands them out. In one process the memory store
        takes the id and the emit follows without a suspension point between.

        Returns the message and whether it was a replay of an earlier send
        with the same ``client_id`` (then nothing was stored or delivered).
        ``hook``: a webhook event the store queues with the message.
        """
        publication = self.delivery.publication(event, to)
        client_id = record.get("client_id")
        if client_id is None:
            message = await self.history.append(key, record, publication, hook)
            replayed = False
        else:
            once = f"{client_id}:{record['from']}"  # a client_id holds no ':'
            message, replayed = await self.history.append_once(
                key, record, once, publication, hook
            )
        if publication is None and not replayed:
            await self.delivery.emit(event, message, to=to)
        return message, replayed

    # -- changes and read markers -----------------------------------------------

    async def change_message(
        self, actor: Actor, conversation: Conversation, message_id: str, change: Change
    ) -> Record:
        """Edit, delete or react to a kept message; everyone there hears ``message_updated``.

        Like a send, the store publishes the new state in the step that takes
        its ``rev``, so every connection hears one message's changes in order.
        A private room's messages are out of an outsider's reach (``forbidden``),
        and a room's out of the reach of a user banned from it (``banned``).
        Returns the message as it now is.
        """
        await self._check_visible(actor, conversation)
        change = dataclasses.replace(change, actor=actor.user)
        if change.op == "delete":
            change = dataclasses.replace(
                change, moderates=await self._moderates(actor, conversation)
            )
        publication = self.delivery.publication("message_updated", conversation.to)
        result = await self.history.change(conversation.key, message_id, change, publication)
        if result.changed and publication is None:
            await self.delivery.emit("message_updated", result.message, to=conversation.to)
        if result.changed:
            await self.webhooks.notify("message_updated", result.message)
        return result.message

    async def _check_visible(self, actor: Actor, conversation: Conversation) -> None:
        """Refuse a room's outsiders (private rooms) and banned users, as ``join`` does."""
        room = conversation.where.get("room")
        if room is not None:
            await self.rules.check_join(room, actor)

    async def _moderates(self, actor: Actor, conversation: Conversation) -> bool:
        """Whether ``actor`` may delete anyone's message in ``conversation``.

        In a room: its owner, its moderators and admins; in a private
        conversation, nobody but the author.
        """
        room = conversation.where.get("room")
        return room is not None and await self.rules.moderates(room, actor)

    async def mark_read(self, actor: Actor, conversation: Conversation, message_id: str) -> str:
        """Move the actor's read marker forward to ``message_id``; the marker kept.

        When it moved, every connection of the reader hears ``read``, and in a
        private conversation so does every connection of the other user.
        """
        await self._check_visible(actor, conversation)
        user = actor.user
        kept, moved = await self.markers.mark(user, conversation.key, message_id)
        if moved:
            mine = {**conversation.where, "user": user, "id": kept}
            await self.delivery.emit("read", mine, to=user_channel(user))
            other = conversation.where.get("with")
            if other is not None and other != user:
                theirs = {"with": user, "user": user, "id": kept}
                await self.delivery.emit("read", theirs, to=user_channel(other))
        return kept

    async def announce(self, sender: str, text: str) -> Record:
        """Store and deliver an announcement to every connection."""
        message = await self.history.append(BROADCAST_KEY, {"from": sender, "text": text})
        await self.delivery.emit("announcement", message)
        return message

    async def typing(self, sid: str, room: str) -> None:
        """Tell the others in ``room`` that this connection's user is typing."""
        session = self._in_room(sid, room)
        payload = {"room": room, "user": session.user}
        await self.delivery.emit("typing", payload, to=room_channel(room), skip_sid=sid)

    # -- history ---------------------------------------------------------------

    async def room_history(self, room: str, before: str | None, limit: int) -> list[Record]:
        """A room's messages before id ``before`` (newest ``limit``), oldest first."""
        return await self.history.before(room_channel(room), before, limit)

    async def conversation_history(
        self, user: str, other: str, before: str | None, limit: int
    ) -> list[Record]:
        """The private conversation of ``user`` and ``other``, like ``room_history``."""
        return await self.history.before(conversation_key(user, other), before, limit)

    async def conversations(self, user: str, limit: int) -> list[dict[str, Any]]:
        """``user``'s private conversations, most recent first, each with its last message."""
        partners = await self.directory.partners(user, limit)
        keys = [conversation_key(user, other) for other in partners]
        lasts, markers = await asyncio.gather(
            asyncio.gather(*(self.history.latest(key, 1) for key in keys)),
            self.markers.get_many(user, keys),
        )
        unread = await asyncio.gather(
            *(self.history.unread(key, user, m) for key, m in zip(keys, markers, strict=True))
        )
        return [
            {"with": other, "last": last[-1] if last else None, "read": marker, "unread": count}
            for other, last, marker, count in zip(partners, lasts, markers, unread, strict=True)
        ]

    async def room_snapshot(self, room: str) -> dict[str, Any]:
        """Members and the newest history of a room, as a joiner would see them."""
        members = await self.presence.members(room)
        history = await self.history.latest(room_channel(room), JOIN_HISTORY)
        return {"room": room, "members": members, "history": history}

    # -- rooms that belong to someone (docs/moderation.md) ----------------------

    def actor_of(self, sid: str) -> Actor:
        """Who connection ``sid`` acts as in rooms: its user, admin or not."""
        session = self._session(sid)
        return Actor(session.user, session.admin)

    async def check_read(self, actor: Actor, room: str) -> None:
        """Refuse ``actor`` a private room's history unless a member (or an admin)."""
        await self.rules.check_read(room, actor)

    async def create_room(
        self, actor: Actor, room: str, *, private: bool, topic: str
    ) -> dict[str, Any]:
        """Create ``room`` owned by ``actor``; ``room_exists`` if created or in use."""
        in_use = bool(await self.history.latest(room_channel(room), 1)) or bool(
            await self.presence.members(room)
        )
        return await self.rules.create(
            room, actor.user, private=private, topic=topic, in_use=in_use
        )

    async def room_info(self, actor: Actor, room: str) -> dict[str, Any]:
        """The room's ``info``; ``forbidden`` for a private room's outsider."""
        return await self.rules.info(room, actor)

    async def set_topic(self, actor: Actor, room: str, topic: str) -> dict[str, Any]:
        """Replace the topic and tell the room (``room_updated``)."""
        info = await self.rules.set_topic(room, actor, topic)
        await self._room_updated(room, info)
        return info

    async def _room_updated(self, room: str, info: dict[str, Any]) -> None:
        await self.delivery.emit("room_updated", info, to=room_channel(room))
        await self.webhooks.notify("room_updated", info)

    async def set_role(self, actor: Actor, room: str, user: str, role: str) -> dict[str, Any]:
        """Make ``user`` a moderator or a member and tell the room (``room_updated``)."""
        info = await self.rules.set_role(room, actor, user, role)
        await self._room_updated(room, info)
        return info

    async def invite(self, actor: Actor, room: str, user: str) -> None:
        """Invite ``user`` (a member, if the room is private); every connection of theirs hears."""
        await self.rules.invite(room, actor, user)
        await self.delivery.emit(
            "invited", {"room": room, "by": actor.user}, to=user_channel(user)
        )

    async def kick(self, actor: Actor, room: str, user: str, reason: str) -> None:
        """Take ``user`` out of ``room`` on every process, each connection told ``kicked``."""
        await self.rules.kick(room, actor, user)
        await self._evict(room, user, {"room": room, "by": actor.user, "reason": reason})

    async def ban(
        self, actor: Actor, room: str, user: str, reason: str, seconds: int | None
    ) -> None:
        """``kick``, and refuse ``user``'s joins until unbanned or ``seconds`` have passed."""
        await self.rules.ban(room, actor, user, seconds)
        await self._evict(room, user, {"room": room, "by": actor.user, "reason": reason})

    async def unban(self, actor: Actor, room: str, user: str) -> None:
        """Lift ``user``'s ban in ``room``."""
        await self.rules.unban(room, actor, user)

    async def _evict(self, room: str, user: str, notice: dict[str, Any]) -> None:
        # The record is written first, so a connection re-joining the moment
        # it is out is already refused.
        await self.evict_local(room, user, notice)
        await self.delivery.evict(room, user, notice)

    async def evict_local(self, room: str, user: str, notice: dict[str, Any]) -> None:
        """This process's connections of ``user`` leave ``room``, each told ``kicked`` first."""
        for sid in sorted(self._local.get((room, user), set())):
            session = self.sessions.get(sid)
            if session is None:
                continue
            await self.delivery.emit("kicked", notice, to=sid)
            await self._leave(sid, session, room)
