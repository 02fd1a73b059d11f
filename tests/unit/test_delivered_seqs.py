"""The bus's record of delivered messages: copies dropped, late arrivals kept."""

from __future__ import annotations

from chat_server.transport.seqs import Delivered


def test_a_first_message_of_a_sender_is_new() -> None:
    assert Delivered().first("p1", 7) is True


def test_the_same_sequence_number_again_is_a_copy() -> None:
    seen = Delivered()
    seen.first("p1", 1)
    assert seen.first("p1", 1) is False


def test_a_message_arriving_after_a_later_one_of_its_sender_is_still_new() -> None:
    # Two cluster masters' connections: seq 2 overtook seq 1 on the way.
    seen = Delivered()
    assert [seen.first("p1", 2), seen.first("p1", 1), seen.first("p1", 1)] == [True, True, False]


def test_a_retried_batch_is_dropped_message_by_message() -> None:
    seen = Delivered()
    for seq in range(1, 11):
        seen.first("p1", seq)
    assert [seen.first("p1", seq) for seq in range(5, 13)] == [False] * 6 + [True, True]


def test_senders_are_told_apart() -> None:
    seen = Delivered()
    seen.first("p1", 3)
    assert seen.first("p2", 3) is True


def test_a_message_further_behind_than_the_window_counts_as_a_copy() -> None:
    seen = Delivered(window=4)
    seen.first("p1", 10)
    assert [seen.first("p1", 7), seen.first("p1", 6)] == [True, False]


def test_a_jump_past_the_window_forgets_what_lay_behind() -> None:
    seen = Delivered(window=4)
    seen.first("p1", 1)
    seen.first("p1", 100)
    assert [seen.first("p1", 99), seen.first("p1", 100)] == [True, False]


def test_the_least_recently_heard_sender_is_forgotten_past_the_cap() -> None:
    seen = Delivered(senders=2)
    seen.first("p1", 5)
    seen.first("p2", 5)
    seen.first("p1", 6)
    seen.first("p3", 5)  # p2 is forgotten
    assert (seen.first("p1", 5), seen.first("p2", 5)) == (False, True)


def test_a_huge_jump_costs_no_more_than_a_small_one() -> None:
    # A garbled sequence number on the bus must not build a number of 10**18 bits.
    seen = Delivered()
    seen.first("p1", 1)
    assert seen.first("p1", 10**18) is True
    assert seen.first("p1", 10**18) is False
    assert seen.first("p1", 1) is False
