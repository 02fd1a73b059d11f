"""The room permission rules, checked cell by cell against one written table."""

from __future__ import annotations

import pytest

from chat_server.core.permissions import TARGETED, Action, Role, may, may_target, role_of

# Columns: who acts. "rest" is the REST API key, which acts as an admin.
COLUMNS = ("owner", "moderator", "member", "outsider", "banned", "admin", "rest")
AS_ROLE = {name: Role.ADMIN if name == "rest" else Role(name) for name in COLUMNS}

# One row per action and kind of room; y = allowed, n = refused.
ACTIONS = """
                    owner moderator member outsider banned admin rest
join      private   y     y         y      n        n      y     y
join      public    y     y         y      y        n      y     y
read      private   y     y         y      n        n      y     y
read      public    y     y         y      y        y      y     y
set_topic private   y     y         n      n        n      y     y
set_topic public    y     y         n      n        n      y     y
invite    private   y     y         n      n        n      y     y
invite    public    y     y         y      y        n      y     y
kick      private   y     y         n      n        n      y     y
kick      public    y     y         n      n        n      y     y
ban       private   y     y         n      n        n      y     y
ban       public    y     y         n      n        n      y     y
unban     private   y     y         n      n        n      y     y
unban     public    y     y         n      n        n      y     y
set_role  private   y     n         n      n        n      y     y
set_role  public    y     n         n      n        n      y     y
"""

# Whom a staff member may kick, ban or give a role to (rows: actor; columns: target).
TARGETS = """
            owner moderator member outsider banned admin
owner       n     y         y      y        y      n
moderator   n     n         y      y        y      n
admin       n     y         y      y        y      y
"""


def parse(table: str) -> tuple[list[str], list[list[str]]]:
    lines = [line.split() for line in table.strip().splitlines()]
    return lines[0], lines[1:]


def action_cells() -> list[tuple[Action, bool, str, bool]]:
    header, rows = parse(ACTIONS)
    assert tuple(header) == COLUMNS
    cells = []
    for action, room, *answers in rows:
        assert len(answers) == len(COLUMNS), f"row {action} {room} misses a cell"
        for column, answer in zip(COLUMNS, answers, strict=True):
            cells.append((Action(action), room == "private", column, answer == "y"))
    return cells


def target_cells() -> list[tuple[Role, Role, bool]]:
    header, rows = parse(TARGETS)
    cells = []
    for actor, *answers in rows:
        assert len(answers) == len(header), f"row {actor} misses a cell"
        for target, answer in zip(header, answers, strict=True):
            cells.append((Role(actor), Role(target), answer == "y"))
    return cells


def test_the_table_has_a_row_for_every_action_and_kind_of_room() -> None:
    rows = {(action, private) for action, private, _, _ in action_cells()}
    assert rows == {(action, private) for action in Action for private in (True, False)}
    assert len(action_cells()) == len(rows) * len(COLUMNS)


@pytest.mark.parametrize(
    ("action", "private", "column", "allowed"),
    action_cells(),
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_who_may_act(action: Action, private: bool, column: str, allowed: bool) -> None:
    assert may(AS_ROLE[column], action, private=private) is allowed


@pytest.mark.parametrize(("actor", "target", "allowed"), target_cells(), ids=str)
@pytest.mark.parametrize("action", sorted(TARGETED))
def test_whom_staff_may_aim_at(action: Action, actor: Role, target: Role, allowed: bool) -> None:
    assert may_target(actor, action, target, itself=False) is allowed


@pytest.mark.parametrize("action", sorted(TARGETED))
def test_nobody_aims_a_kick_ban_or_role_at_themselves(action: Action) -> None:
    assert may_target(Role.ADMIN, action, Role.ADMIN, itself=True) is False


def test_actions_without_a_target_always_pass_the_target_check() -> None:
    assert may_target(Role.MEMBER, Action.INVITE, Role.OWNER, itself=False) is True


@pytest.mark.parametrize(
    ("user", "admin", "banned", "role"),
    [
        ("root", True, True, Role.ADMIN),
        ("olga", False, False, Role.OWNER),
        ("mia", False, True, Role.MODERATOR),
        ("bob", False, True, Role.BANNED),
        ("bob", False, False, Role.MEMBER),
        ("eve", False, False, Role.OUTSIDER),
    ],
)
def test_a_user_holds_the_strongest_role_that_applies(
    user: str, admin: bool, banned: bool, role: Role
) -> None:
    found = role_of(
        user,
        admin=admin,
        owner="olga",
        moderators=frozenset({"mia"}),
        members=frozenset({"olga", "mia", "bob"}),
        banned=banned,
    )
    assert found is role
