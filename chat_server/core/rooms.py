"""The rules of rooms that belong to someone: creation, info, topic, invites, roles, bans.

``RoomRules`` turns a request into a role (``core.permissions``), refuses it
with ``forbidden``, ``banned``, ``not_found`` or ``room_exists``, and changes
the registry (``core.ports.Rooms``). Moving connections out of a room and
telling clients is the service's part; this module touches no connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat_server.core.errors import ChatError
from chat_server.core.permissions import Action, Role, may, may_delete_any, may_target, role_of
from chat_server.core.ports import Rooms, RoomState

__all__ = ["Actor", "RoomRules", "info_of"]

#: Milliseconds since the epoch, injectable for tests.
Clock = Callable[[], int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a username, and whether their token made them an admin (REST: admin)."""

    user: str
    admin: bool = False


def info_of(room: str, state: RoomState | None) -> dict[str, Any]:
    """The contract's ``info`` of a room; a room nobody created is public and unowned."""
    if state is None:
        return {
            "name": room,
            "private": False,
            "topic": "",
            "owner": None,
            "moderators": [],
            "created_ts": None,
        }
    info: dict[str, Any] = {
        "name": room,
        "private": state.private,
        "topic": state.topic,
        "owner": state.owner,
        "moderators": sorted(state.moderators),
        "created_ts": state.created_ts,
    }
    if state.private:
        info["members"] = sorted(state.members)
    return info


def _forbidden(action: Action, room: str) -> ChatError:
    return ChatError("forbidden", f"You may not {action.value.replace('_', ' ')} in {room}.")


class RoomRules:
    """Who may do what in a room, applied to the registry.

    :param rooms: the room registry.
    :param clock: epoch milliseconds, for bans.
    """

    def __init__(self, rooms: Rooms, clock: Clock = _now_ms) -> None:
        self.rooms = rooms
        self.clock = clock

    async def _role(self, room: str, actor: Actor) -> tuple[RoomState | None, Role]:
        state = await self.rooms.state(room)
        access = await self.rooms.access(room, actor.user, self.clock())
        return state, self._role_in(state, actor, banned=access.ban_until is not None)

    @staticmethod
    def _role_in(state: RoomState | None, actor: Actor, *, banned: bool) -> Role:
        return role_of(
            actor.user,
            admin=actor.admin,
            owner=None if state is None else state.owner,
            moderators=frozenset() if state is None else state.moderators,
            members=frozenset() if state is None else state.members,
            banned=banned,
        )

    async def _allowed(self, room: str, actor: Actor, action: Action) -> RoomState | None:
        state, _ = await self._permitted(room, actor, action)
        return state

    async def _permitted(
        self, room: str, actor: Actor, action: Action
    ) -> tuple[RoomState | None, Role]:
        """The room's state and the actor's role, once ``may`` allowed ``action``."""
        state, role = await self._role(room, actor)
        if not may(role, action, private=state is not None and state.private):
            raise _forbidden(action, room)
        return state, role

    async def _aimed(self, room: str, actor: Actor, action: Action, target: str) -> None:
        """Check ``actor`` may do ``action`` to ``target`` (a user assumed not an admin)."""
        state, role = await self._permitted(room, actor, action)
        banned = (await self.rooms.access(room, target, self.clock())).ban_until is not None
        target_role = self._role_in(state, Actor(target), banned=banned)
        if not may_target(role, action, target_role, itself=target == actor.user):
            raise ChatError(
                "forbidden", f"You may not {action.value.replace('_', ' ')} {target} in {room}."
            )

    async def check_join(self, room: str, actor: Actor) -> None:
        """Refuse a join with ``banned`` or, for a private room's outsider, ``forbidden``.

        One registry read, so a join of a created room costs one round trip more.
        """
        access = await self.rooms.access(room, actor.user, self.clock())
        if actor.admin:
            return
        if access.ban_until is not None:
            raise ChatError("banned", f"You are banned from {room}.")
        if access.private and not access.member:
            raise ChatError("forbidden", f"{room} is private; ask for an invitation.")

    async def moderates(self, room: str, actor: Actor) -> bool:
        """Whether ``actor`` may delete anyone's message in ``room``."""
        _, role = await self._role(room, actor)
        return may_delete_any(role)

    async def check_read(self, room: str, actor: Actor) -> None:
        """Refuse reading a private room (history, info) to whoever is not a member."""
        await self._allowed(room, actor, Action.READ)

    async def create(
        self, room: str, owner: str, *, private: bool, topic: str, in_use: bool
    ) -> dict[str, Any]:
        """Create ``room`` owned by ``owner``; ``room_exists`` if created or ``in_use`` before."""
        exists = ChatError("room_exists", f"{room} exists already.")
        if in_use:
            raise exists
        state = await self.rooms.create(
            room, owner, private=private, topic=topic, created_ts=self.clock()
        )
        if state is None:
            raise exists
        return info_of(room, state)

    async def info(self, room: str, actor: Actor) -> dict[str, Any]:
        """The room's ``info``, ``forbidden`` for a private room's outsider."""
        return info_of(room, await self._allowed(room, actor, Action.READ))

    async def _created(self, room: str) -> RoomState:
        state = await self.rooms.state(room)
        if state is None:
            raise ChatError("not_found", f"Nobody created {room}.")
        return state

    async def set_topic(self, room: str, actor: Actor, topic: str) -> dict[str, Any]:
        """Replace the topic; the new ``info``."""
        await self._allowed(room, actor, Action.SET_TOPIC)
        if not await self.rooms.set_topic(room, topic):
            raise ChatError("not_found", f"Nobody created {room}.")
        return info_of(room, await self._created(room))

    async def invite(self, room: str, actor: Actor, user: str) -> None:
        """Invite ``user``; in a private room they become a member."""
        state = await self._allowed(room, actor, Action.INVITE)
        if state is not None and state.private:
            await self.rooms.add_member(room, user)

    async def set_role(self, room: str, actor: Actor, user: str, role: str) -> dict[str, Any]:
        """Make ``user`` a ``moderator`` or a plain ``member``; the new ``info``."""
        await self._aimed(room, actor, Action.SET_ROLE, user)
        if not await self.rooms.set_moderator(room, user, role == "moderator"):
            raise ChatError("not_found", f"Nobody created {room}.")
        return info_of(room, await self._created(room))

    async def kick(self, room: str, actor: Actor, user: str) -> None:
        """Check and record a kick: a private room's member is no longer one."""
        await self._aimed(room, actor, Action.KICK, user)
        await self.rooms.remove_member(room, user)

    async def ban(self, room: str, actor: Actor, user: str, seconds: int | None) -> None:
        """Check and record a ban, without end or lapsing after ``seconds``."""
        await self._aimed(room, actor, Action.BAN, user)
        until = 0 if seconds is None else self.clock() + seconds * 1000
        await self.rooms.ban(room, user, until)
        await self.rooms.remove_member(room, user)

    async def unban(self, room: str, actor: Actor, user: str) -> None:
        """Lift ``user``'s ban (lifting none is no error)."""
        await self._allowed(room, actor, Action.UNBAN)
        await self.rooms.unban(room, user)
