"""Two people in two browser pages, each on a different server process sharing one Redis."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tests.support.browser import MakePair, Pair, expect

pytestmark = pytest.mark.browser

OWN = re.compile(r"\bown\b")
XSS = '<img src=x onerror="window.__xss=1">'
# Reconnecting waits up to 5 s between attempts, and the process needs a moment to start.
RECOVERY_TIMEOUT_MS = 30_000


async def test_room_messages_cross_processes_with_sender_time_and_own_mark(pair: Pair) -> None:
    await pair.alice.send("hello from process one")
    await pair.bob.send("and hello from process two")

    for page in (pair.alice, pair.bob):
        await expect(page.message_texts).to_have_text(
            ["hello from process one", "and hello from process two"]
        )
    from_alice = pair.bob.message("hello from process one")
    await expect(from_alice.locator(".sender")).to_have_text("alice")
    await expect(from_alice.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    await expect(from_alice).not_to_have_class(OWN)
    await expect(pair.alice.message("hello from process one")).to_have_class(OWN)
    await expect(pair.alice.message("and hello from process two")).not_to_have_class(OWN)
    await pair.alice.screenshot("room")
    await pair.bob.screenshot("room")


async def test_private_message_reaches_the_other_process_in_its_own_conversation(
    pair: Pair,
) -> None:
    await pair.alice.member("bob").get_by_role("button").click()
    await expect(pair.alice.conversation("dm", "bob")).to_have_attribute("aria-current", "page")
    await pair.alice.send("just between us")

    unread = pair.bob.conversation("dm", "alice").locator(".badge")
    await expect(unread).to_contain_text("1")
    await expect(pair.bob.message("just between us")).to_have_count(0)  # not in the lobby
    await pair.bob.open("dm", "alice")
    await expect(pair.bob.message_texts).to_have_text(["just between us"])
    await expect(unread).to_have_count(0)
    await expect(pair.bob.page.locator("#timeline-start")).to_contain_text(
        "beginning of your conversation with alice"
    )

    await pair.bob.send("agreed")
    await expect(pair.alice.message_texts).to_have_text(["just between us", "agreed"])
    await pair.bob.screenshot("private")


async def test_presence_shows_a_user_of_the_other_process_joining_and_leaving(pair: Pair) -> None:
    await pair.alice.join("games")
    await expect(pair.alice.page.locator("#member-list li")).to_have_count(1)

    await pair.bob.join("games")
    await expect(pair.alice.member("bob")).to_be_visible()
    await expect(pair.alice.page.locator(".notice-line", has_text="bob joined")).to_be_visible()
    await expect(pair.alice.page.locator("#members-count")).to_have_text("2")

    await pair.bob.page.click("#leave-button")
    await expect(pair.alice.member("bob")).to_have_count(0)
    await expect(pair.alice.page.locator(".notice-line", has_text="bob left")).to_be_visible()
    await expect(pair.bob.conversation("room", "games")).to_have_count(0)


async def test_typing_on_one_process_shows_on_the_other_until_the_message_arrives(
    pair: Pair,
) -> None:
    await pair.bob.page.locator("#message-input").press_sequentially("thinking")
    await expect(pair.alice.page.locator("#typing")).to_have_text("bob is typing…")
    await pair.alice.screenshot("typing")

    await pair.bob.page.press("#message-input", "Enter")
    await expect(pair.alice.message("thinking")).to_have_count(1)
    await expect(pair.alice.page.locator("#typing")).to_have_text("")


async def test_rest_emit_to_a_room_appears_on_both_pages(
    pair: Pair, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    body = {"room": "lobby", "text": "deploy finished", "from": "ci-bot"}
    async with http.post(
        f"{pair.processes[0].url}/api/emit", json=body, headers=api_headers
    ) as response:
        assert response.status == 200, await response.text()

    for page in (pair.alice, pair.bob):
        shown = page.message("deploy finished")
        await expect(shown).to_have_count(1)
        await expect(shown.locator(".sender")).to_have_text("ci-bot")


async def test_rest_broadcast_stands_out_on_both_pages(
    pair: Pair, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    body = {"broadcast": True, "text": "maintenance at 22:00"}
    async with http.post(
        f"{pair.processes[1].url}/api/emit", json=body, headers=api_headers
    ) as response:
        assert response.status == 200, await response.text()

    for page in (pair.alice, pair.bob):
        banner = page.page.locator("#announcement-banner")
        await expect(banner).to_be_visible()
        await expect(banner.locator(".announcement-text")).to_have_text("maintenance at 22:00")
        await expect(banner.locator(".sender")).to_have_text("bot")
        await expect(page.conversation("news", "announcements")).to_be_visible()
    await pair.alice.screenshot("announcement")


async def test_markup_in_a_message_shows_as_text_and_runs_nothing(pair: Pair) -> None:
    await pair.alice.send(XSS)

    for page in (pair.alice, pair.bob):
        await expect(page.message(XSS)).to_have_count(1)
        assert await page.page.locator("#message-list img").count() == 0
        assert await page.page.evaluate("window.__xss") is None
    await pair.bob.screenshot("markup-as-text")


async def test_a_page_whose_process_restarts_recovers_what_was_sent_meanwhile(
    pair: Pair,
) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.send_and_see("before the restart")
    await alice.member("bob").get_by_role("button").click()
    await alice.send_and_see("private, before")
    await expect(bob.conversation("dm", "alice")).to_be_visible()

    await asyncio.to_thread(pair.processes[1].stop)
    await expect(bob.body).to_have_attribute("data-connection", "reconnecting")
    await expect(bob.page.locator("#connection-banner")).to_contain_text("Reconnecting")
    await bob.screenshot("reconnecting")

    await alice.send_and_see("private, while bob was away")
    await alice.open("room", "lobby")
    missed = [f"while bob was away {i}" for i in range(5)]
    for text in missed:
        await alice.send_and_see(text)

    await asyncio.to_thread(pair.processes[1].start)
    await bob.wait_online(within_ms=RECOVERY_TIMEOUT_MS)
    await expect(bob.page.locator("#connection-banner")).to_contain_text("Back online")
    await bob.send("bob is back")

    expected = ["before the restart", *missed, "bob is back"]
    for page in (alice, bob):
        await expect(page.message_texts).to_have_text(expected)
    ids = await bob.shown_ids()
    assert len(set(ids)) == len(ids) == len(expected)
    assert ids == sorted(ids)
    await bob.screenshot("recovered")

    await bob.open("dm", "alice")
    await expect(bob.message_texts).to_have_text(
        ["private, before", "private, while bob was away"]
    )


async def test_incomplete_recovery_reloads_the_history_and_says_so(make_pair: MakePair) -> None:
    pair = await make_pair(env={"CHAT_HISTORY_SIZE": "4"})
    await pair.alice.send_and_see("soon forgotten")
    await expect(pair.bob.message("soon forgotten")).to_have_count(1)

    await asyncio.to_thread(pair.processes[1].stop)
    await expect(pair.bob.body).to_have_attribute("data-connection", "reconnecting")
    sent = [f"burst {i}" for i in range(7)]
    for text in sent:
        await pair.alice.send_and_see(text)
    await asyncio.to_thread(pair.processes[1].start)
    await pair.bob.wait_online(within_ms=RECOVERY_TIMEOUT_MS)

    notice = pair.bob.page.locator("#conv-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("could not be recovered")
    await expect(pair.bob.message_texts).to_have_text(sent[-4:])
    await expect(pair.bob.page.locator("#timeline-start")).to_be_visible()
    await pair.bob.screenshot("history-reloaded")


async def test_a_private_conversation_pages_back_over_a_long_gap_after_a_restart(
    pair: Pair, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.member("bob").get_by_role("button").click()
    await alice.send_and_see("first")
    await bob.open("dm", "alice")
    await expect(bob.message_texts).to_have_text(["first"])

    await asyncio.to_thread(pair.processes[1].stop)
    await expect(bob.body).to_have_attribute("data-connection", "reconnecting")
    # more than one page (50) of history, so the page must walk back to "first"
    missed = [f"while away {i:02}" for i in range(70)]
    for text in missed:
        body = {"to": "bob", "from": "alice", "text": text}
        async with http.post(
            f"{pair.processes[0].url}/api/emit", json=body, headers=api_headers
        ) as response:
            assert response.status == 200, await response.text()
    await asyncio.to_thread(pair.processes[1].start)
    await bob.wait_online(within_ms=RECOVERY_TIMEOUT_MS)

    await expect(bob.message_texts).to_have_text(["first", *missed])
    await expect(bob.page.locator("#conv-notice")).to_be_hidden()
    ids = await bob.shown_ids()
    assert ids == sorted(ids)
    assert len(set(ids)) == len(missed) + 1


async def test_a_private_conversation_started_while_the_page_was_away_appears_after_reconnecting(
    pair: Pair, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    bob = pair.bob
    await asyncio.to_thread(pair.processes[1].stop)
    await expect(bob.body).to_have_attribute("data-connection", "reconnecting")
    body = {"to": "bob", "from": "carol", "text": "are you around?"}
    async with http.post(
        f"{pair.processes[0].url}/api/emit", json=body, headers=api_headers
    ) as response:
        assert response.status == 200, await response.text()
    await asyncio.to_thread(pair.processes[1].start)
    await bob.wait_online(within_ms=RECOVERY_TIMEOUT_MS)

    await expect(bob.page.locator("#connection-banner")).to_contain_text(
        "1 missed message filled in"
    )
    await expect(bob.conversation("dm", "carol").locator(".badge")).to_contain_text("1")
    await bob.open("dm", "carol")
    await expect(bob.message_texts).to_have_text(["are you around?"])
