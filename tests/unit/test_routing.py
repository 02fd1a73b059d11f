"""Channel names of per-room routing: one per room and per user, the rest on control."""

from __future__ import annotations

import pytest

from chat_server.core.names import room_channel, user_channel
from chat_server.transport.routing import Channels

CONTROL = "chat:0:socketio"


@pytest.fixture
def channels() -> Channels:
    return Channels(CONTROL)


def test_a_rooms_channel_holds_the_room_in_a_hash_tag(channels: Channels) -> None:
    assert channels.of(room_channel("general")) == "chat:0:{room:general}"


def test_a_users_channel_holds_the_user_in_a_hash_tag(channels: Channels) -> None:
    assert channels.of(user_channel("alice")) == "chat:0:{user:alice}"


@pytest.mark.parametrize("group", ["Xy12sid", None, 42])
def test_anything_but_a_room_or_a_user_has_no_channel_of_its_own(
    channels: Channels, group: object
) -> None:
    assert channels.of(group) is None


def test_a_broadcast_goes_on_the_control_channel(channels: Channels) -> None:
    assert channels.for_targets(None) == [CONTROL]


def test_an_emit_to_one_connection_goes_on_the_control_channel(channels: Channels) -> None:
    assert channels.for_targets("Xy12sid") == [CONTROL]


def test_a_private_message_goes_on_both_users_channels(channels: Channels) -> None:
    to = [user_channel("bob"), user_channel("alice")]
    assert channels.for_targets(to) == ["chat:0:{user:bob}", "chat:0:{user:alice}"]


def test_targets_sharing_a_channel_publish_once(channels: Channels) -> None:
    assert channels.for_targets(["sid1", "sid2", room_channel("r")]) == [
        CONTROL,
        "chat:0:{room:r}",
    ]


def test_a_channels_group_is_read_back_from_its_name(channels: Channels) -> None:
    assert channels.group("chat:0:{room:general}") == "room:general"
    assert channels.group(CONTROL) is None


def test_single_channel_routing_puts_everything_on_the_control_channel() -> None:
    single = Channels(CONTROL, per_room=False)
    assert single.of(room_channel("general")) is None
    assert single.for_targets([user_channel("a"), room_channel("r")]) == [CONTROL]


def test_two_databases_have_distinct_room_channels() -> None:
    zero, one = Channels("chat:0:socketio"), Channels("chat:1:socketio")
    assert zero.of(room_channel("r")) != one.of(room_channel("r"))
