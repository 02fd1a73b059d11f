"""Editing, deleting, reactions and read markers in two pages on two processes over Redis."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.support.browser import OpenPage, Pair, expect
from tests.support.chat_page import ChatPage

pytestmark = pytest.mark.browser

# Reconnecting waits up to 5 s between attempts, and the process needs a moment to start.
RECOVERY_TIMEOUT_MS = 30_000


async def _open_private(alice: ChatPage) -> None:
    await alice.member("bob").get_by_role("button").click()
    await expect(alice.conversation("dm", "bob")).to_have_attribute("aria-current", "page")


async def test_the_edit_button_changes_the_text_for_both_and_labels_it_edited(pair: Pair) -> None:
    await pair.alice.send_and_see("helo")
    await expect(pair.bob.message("helo")).to_have_count(1)

    await pair.alice.edit("helo", "hello")

    for page in (pair.alice, pair.bob):
        await expect(page.message_texts).to_have_text(["hello"])
        edited = page.message("hello").locator(".edited")
        await expect(edited).to_contain_text("(edited)")
        await expect(edited).to_have_attribute("title", re.compile(r"^Edited "))
    await expect(pair.alice.page.locator("#edit-bar")).to_be_hidden()
    await pair.bob.screenshot("edited")


async def test_up_in_an_empty_composer_edits_the_last_own_message(pair: Pair) -> None:
    await pair.alice.send_and_see("first")
    await pair.alice.send_and_see("second")

    await pair.alice.page.press("#message-input", "ArrowUp")
    await expect(pair.alice.page.locator("#edit-bar")).to_be_visible()
    await expect(pair.alice.page.locator("#message-input")).to_have_value("second")
    await pair.alice.page.fill("#message-input", "second, corrected")
    await pair.alice.page.press("#message-input", "Enter")

    await expect(pair.bob.message_texts).to_have_text(["first", "second, corrected"])


async def test_escape_cancels_an_edit_and_leaves_the_message_as_it_was(pair: Pair) -> None:
    await pair.alice.send_and_see("keep me")
    await pair.alice.page.press("#message-input", "ArrowUp")
    await pair.alice.page.fill("#message-input", "never saved")
    await pair.alice.page.press("#message-input", "Escape")

    await expect(pair.alice.page.locator("#edit-bar")).to_be_hidden()
    await expect(pair.alice.page.locator("#message-input")).to_have_value("")
    await expect(pair.alice.message_texts).to_have_text(["keep me"])
    await expect(pair.alice.message("keep me").locator(".edited")).to_have_count(0)


async def test_an_edit_the_server_refuses_shows_its_reason_and_stays_open(pair: Pair) -> None:
    await pair.alice.send_and_see("short")
    await pair.alice.page.press("#message-input", "ArrowUp")
    await pair.alice.page.fill("#message-input", "x" * 2001)
    await pair.alice.page.press("#message-input", "Enter")

    await expect(pair.alice.page.locator("#edit-error")).to_contain_text("Not saved")
    await expect(pair.alice.page.locator("#edit-bar")).to_be_visible()
    await expect(pair.bob.message_texts).to_have_text(["short"])
    await pair.alice.screenshot("edit-refused")


async def test_deleting_after_confirming_leaves_a_tombstone_for_both(pair: Pair) -> None:
    await pair.alice.send_and_see("oops")
    await expect(pair.bob.message("oops")).to_have_count(1)

    await pair.alice.delete("oops")

    for page in (pair.alice, pair.bob):
        await expect(page.message_texts).to_have_text(["message deleted"])
        await expect(page.page.locator("#message-list .msg.deleted")).to_have_count(1)
    await pair.bob.screenshot("tombstone")


async def test_dismissing_the_delete_confirmation_keeps_the_message(pair: Pair) -> None:
    await pair.alice.send_and_see("still here")
    await pair.alice.delete("still here", confirm=False)
    await pair.alice.send_and_see("and after it")

    await expect(pair.bob.message_texts).to_have_text(["still here", "and after it"])


async def test_someone_elses_message_has_no_edit_or_delete_button(pair: Pair) -> None:
    await pair.alice.send_and_see("alice's words")
    shown = pair.bob.message("alice's words")
    await expect(shown.locator(".react-button")).to_have_count(1)
    await expect(shown.locator(".edit-button")).to_have_count(0)
    await expect(shown.locator(".delete-button")).to_have_count(0)


async def test_a_reaction_from_the_picker_shows_as_a_chip_with_its_count_for_both(
    pair: Pair,
) -> None:
    await pair.alice.send_and_see("lunch?")
    await pair.bob.react("lunch?", "👍")

    for page in (pair.alice, pair.bob):
        chip = page.reaction("lunch?", "👍")
        await expect(chip.locator(".reaction-count")).to_have_text("1")
    await expect(pair.bob.reaction("lunch?", "👍")).to_have_attribute("aria-pressed", "true")
    await expect(pair.alice.reaction("lunch?", "👍")).to_have_attribute("aria-pressed", "false")

    await pair.alice.reaction("lunch?", "👍").click()
    for page in (pair.alice, pair.bob):
        await expect(page.reaction("lunch?", "👍").locator(".reaction-count")).to_have_text("2")
    await pair.alice.screenshot("reactions")


async def test_clicking_ones_own_reaction_chip_takes_it_back(pair: Pair) -> None:
    await pair.alice.send_and_see("vote")
    await pair.bob.react("vote", "🎉")
    await expect(pair.alice.reaction("vote", "🎉")).to_have_count(1)

    await pair.bob.reaction("vote", "🎉").click()

    for page in (pair.alice, pair.bob):
        await expect(page.reaction("vote", "🎉")).to_have_count(0)


async def test_a_change_made_while_the_page_was_away_shows_after_reconnecting(
    pair: Pair,
) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.send_and_see("draft one")
    await alice.send_and_see("to be removed")
    await expect(bob.message_texts).to_have_text(["draft one", "to be removed"])

    await asyncio.to_thread(pair.processes[1].stop)
    await expect(bob.body).to_have_attribute("data-connection", "reconnecting")
    await alice.edit("draft one", "final text")
    await expect(alice.message("final text")).to_have_count(1)
    await alice.delete("to be removed")
    await expect(alice.message("message deleted")).to_have_count(1)
    await alice.react("final text", "❤️")
    await expect(alice.reaction("final text", "❤️")).to_have_count(1)

    await asyncio.to_thread(pair.processes[1].start)
    await bob.wait_online(within_ms=RECOVERY_TIMEOUT_MS)

    await expect(bob.message_texts).to_have_text(["final text", "message deleted"])
    await expect(bob.reaction("final text", "❤️").locator(".reaction-count")).to_have_text("1")
    await expect(bob.message("final text").locator(".edited")).to_have_count(1)
    await bob.screenshot("changes-recovered")


async def test_unread_counts_come_from_the_server_after_a_reload(pair: Pair) -> None:
    await pair.bob.join("side")
    await pair.alice.join("side")
    await pair.bob.open("room", "lobby")
    for text in ("one", "two", "three"):
        await pair.alice.send_and_see(text)
    await expect(pair.bob.unread("room", "side")).to_contain_text("3")

    await pair.bob.page.reload()
    await pair.bob.wait_online()

    await expect(pair.bob.unread("room", "side")).to_contain_text("3")
    await expect(pair.bob.page).to_have_title(re.compile(r"^\(3\) "))
    await pair.bob.screenshot("unread-after-reload")


async def test_reading_on_one_device_clears_the_badge_on_another(
    pair: Pair, open_page: OpenPage
) -> None:
    await pair.alice.join("side")
    await pair.bob.join("side")
    await pair.bob.open("room", "lobby")
    second = await open_page(f"{pair.processes[0].url}/", "bob-second")  # the other process
    await second.sign_in("bob")
    await second.join("side")
    await second.open("room", "lobby")
    await pair.alice.send_and_see("news")
    await expect(second.unread("room", "side")).to_contain_text("1")
    await expect(pair.bob.unread("room", "side")).to_contain_text("1")

    await pair.bob.open("room", "side")

    await expect(second.unread("room", "side")).to_have_count(0)
    await expect(second.page).not_to_have_title(re.compile(r"^\("))
    await second.screenshot("read-elsewhere")


async def test_seen_shows_under_the_last_private_message_once_the_other_side_read_it(
    pair: Pair,
) -> None:
    await _open_private(pair.alice)
    await pair.alice.send_and_see("are you there?")
    await pair.alice.send_and_see("hello?")
    await expect(pair.bob.unread("dm", "alice")).to_contain_text("2")
    seen = pair.alice.page.locator("#message-list .seen")
    await expect(seen).to_have_count(0)

    await pair.bob.open("dm", "alice")

    await expect(seen).to_have_count(1)
    await expect(pair.alice.message("hello?").locator(".seen")).to_have_text("Seen")
    await pair.alice.screenshot("seen")

    await pair.alice.send_and_see("one more")
    await expect(pair.alice.message("one more").locator(".seen")).to_have_text("Seen")
    await expect(seen).to_have_count(1)
