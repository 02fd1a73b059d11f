"""Who may do what in a room: one function per question, each read as a table.

The rules know a user only by ``Role`` in the room at hand; working out the
role (from the room registry, the bans and the token's ``admin`` claim) is
the caller's job. The REST API acts as an admin.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Action", "Role", "may", "may_delete_any", "may_target", "role_of"]


class Role(StrEnum):
    """What a user is in one room, the strongest that applies."""

    ADMIN = "admin"
    OWNER = "owner"
    MODERATOR = "moderator"
    BANNED = "banned"
    MEMBER = "member"
    OUTSIDER = "outsider"


class Action(StrEnum):
    """The things one may or may not do in a room."""

    JOIN = "join"
    READ = "read"  # history, room_info, the REST snapshot
    SET_TOPIC = "set_topic"
    INVITE = "invite"
    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    SET_ROLE = "set_role"


_STAFF = frozenset({Role.ADMIN, Role.OWNER, Role.MODERATOR})
_INSIDE = _STAFF | {Role.MEMBER}

# Actions on the room itself: who may, in a private room and in a public one.
# A room nobody created is public with nobody but admins on its staff, so its
# owner and moderator cells never apply.
_ACTORS: dict[Action, tuple[frozenset[Role], frozenset[Role]]] = {
    #                  private room            public room
    Action.JOIN: (_INSIDE, _INSIDE | {Role.OUTSIDER}),
    Action.READ: (_INSIDE, _INSIDE | {Role.OUTSIDER, Role.BANNED}),
    Action.SET_TOPIC: (_STAFF, _STAFF),
    Action.INVITE: (_STAFF, _INSIDE | {Role.OUTSIDER}),
    Action.KICK: (_STAFF, _STAFF),
    Action.BAN: (_STAFF, _STAFF),
    Action.UNBAN: (_STAFF, _STAFF),
    Action.SET_ROLE: (frozenset({Role.ADMIN, Role.OWNER}), frozenset({Role.ADMIN, Role.OWNER})),
}

# Roles a target may not have, per actor, for actions aimed at a user: the
# owner is out of everyone's reach, a moderator out of another moderator's,
# an admin out of everyone's but another admin's.
_SHIELDED: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.OWNER}),
    Role.OWNER: frozenset({Role.OWNER, Role.ADMIN}),
    Role.MODERATOR: frozenset({Role.OWNER, Role.MODERATOR, Role.ADMIN}),
}

#: Actions that name a target user, whose role ``may_target`` checks.
TARGETED = frozenset({Action.KICK, Action.BAN, Action.SET_ROLE})


def role_of(
    user: str,
    *,
    admin: bool,
    owner: str | None,
    moderators: frozenset[str],
    members: frozenset[str],
    banned: bool,
) -> Role:
    """The strongest role ``user`` holds in a room with these lists."""
    if admin:
        return Role.ADMIN
    if user == owner:
        return Role.OWNER
    if user in moderators:
        return Role.MODERATOR
    if banned:
        return Role.BANNED
    return Role.MEMBER if user in members else Role.OUTSIDER


def may(actor: Role, action: Action, *, private: bool) -> bool:
    """Whether a user of role ``actor`` may do ``action`` in a (private or public) room."""
    in_private, in_public = _ACTORS[action]
    return actor in (in_private if private else in_public)


def may_target(actor: Role, action: Action, target: Role, *, itself: bool) -> bool:
    """Whether ``actor``, allowed ``action`` in the room, may aim it at a ``target`` user.

    Nobody kicks, bans or changes the role of themselves (``itself``).
    Other actions name no target and always pass.
    """
    if action not in TARGETED:
        return True
    if itself:
        return False
    return target not in _SHIELDED.get(actor, frozenset(Role))


def may_delete_any(role: Role) -> bool:
    """Whether ``role`` may delete anyone's message in the room (the author always may)."""
    return role in _STAFF
