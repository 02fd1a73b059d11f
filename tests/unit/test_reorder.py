"""A private conversation's events published after their script are delivered in order."""

from __future__ import annotations

from typing import Any

from chat_server.transport.reorder import Reorder

KEY = "dm:ann:bob"


def event(ms: int, seq: int) -> str:
    return f"{ms:015d}-{seq:016d}"


def published(this: str, before: str | None) -> dict[str, Any]:
    return {"method": "emit", "data": [{"id": this}], "order": [KEY, this, before]}


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["order"][1] for m in messages]


def test_events_arriving_in_order_go_out_at_once() -> None:
    reorder = Reorder()
    a, b = event(1000, 1), event(1001, 2)
    assert ids(reorder.offer(published(a, None), 0.0)) == [a]
    assert ids(reorder.offer(published(b, a), 0.0)) == [b]


def test_an_event_that_overtook_the_one_before_it_waits_for_it() -> None:
    reorder = Reorder()
    a, b, c = event(1000, 1), event(1001, 2), event(1002, 3)
    reorder.offer(published(a, None), 0.0)
    assert reorder.offer(published(c, b), 0.1) == []
    assert ids(reorder.offer(published(b, a), 0.2)) == [b, c]
    assert reorder.next_deadline() is None


def test_a_held_event_goes_out_after_the_window_when_the_one_before_never_comes() -> None:
    reorder = Reorder(window=1.0)
    a, c = event(1000, 1), event(1002, 3)
    reorder.offer(published(a, None), 0.0)
    assert reorder.offer(published(c, event(1001, 2)), 0.1) == []
    assert reorder.due(1.0) == []
    assert ids(reorder.due(1.2)) == [c]


def test_an_event_whose_predecessor_is_older_than_the_window_is_not_held() -> None:
    reorder = Reorder(window=1.0)
    late = event(5000, 9)
    assert ids(reorder.offer(published(late, event(3000, 4)), 0.0)) == [late]


def test_the_copy_from_the_other_users_channel_is_not_held_twice() -> None:
    reorder = Reorder()
    a, b, c = event(1000, 1), event(1001, 2), event(1002, 3)
    reorder.offer(published(a, None), 0.0)
    reorder.offer(published(c, b), 0.0)
    assert reorder.offer(published(c, b), 0.0) == []
    assert ids(reorder.offer(published(b, a), 0.0)) == [b, c]


def test_messages_without_an_order_pass_through() -> None:
    message = {"method": "emit", "data": ["x"]}
    assert Reorder().offer(message, 0.0) == [message]
