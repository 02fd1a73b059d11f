"""The chat page in a real browser against one in-process server.

Signing in, history, unread counts, keyboard use, a phone-sized screen, reloads.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import aiohttp
import pytest

from chat_server.config import Settings
from chat_server.core.auth import issue_token
from tests.support.browser import PHONE, OpenPage, expect
from tests.support.chat import make_token
from tests.support.chat_page import ChatPage
from tests.support.clients import ConnectRefused
from tests.support.fixtures import Connect, StartServer

pytestmark = pytest.mark.browser

SECRET = "browser-test-secret-of-at-least-32-bytes"


async def emit(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], **body: object
) -> None:
    async with http.post(f"{url}/api/emit", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()


async def sign_in_with_token(page: ChatPage, token: str) -> None:
    """Sign in through the page's token field and wait until it is online."""
    await page.sign_in_with_token(token)


async def test_a_refused_username_shows_the_servers_reason(
    chat_url: str, open_page: OpenPage, connect: Connect
) -> None:
    with pytest.raises(ConnectRefused) as refused:
        await connect(chat_url, "bad name!")
    reason = refused.value.message
    assert isinstance(reason, str)
    assert reason

    page = await open_page(f"{chat_url}/", "refused")
    await page.page.fill("#username", "bad name!")
    await page.page.press("#username", "Enter")

    await expect(page.page.locator("#signin-error")).to_have_text(reason)
    await expect(page.page.locator("#signin-view")).to_be_visible()
    await expect(page.page.locator("#username")).to_be_focused()
    await page.screenshot("refused")


async def test_a_token_signs_in_as_the_tokens_subject(
    start_server: StartServer, make_settings: Callable[..., Settings], open_page: OpenPage
) -> None:
    url = await start_server(make_settings(secret=SECRET))
    page = await open_page(f"{url}/", "token")
    await sign_in_with_token(page, make_token(SECRET, "tokenuser"))

    await expect(page.page.locator("#me-name")).to_have_text("tokenuser")
    await page.send("signed by the server's secret")
    await expect(page.message("signed by the server's secret")).to_have_class(
        re.compile(r"\bown\b")
    )


async def test_a_server_in_token_mode_asks_for_a_token_and_opens_the_token_field(
    start_server: StartServer, make_settings: Callable[..., Settings], open_page: OpenPage
) -> None:
    url = await start_server(make_settings(secret=SECRET))
    page = await open_page(f"{url}/", "token-required")

    await page.page.fill("#username", "alice")
    await page.page.press("#username", "Enter")

    await expect(page.page.locator("#signin-error")).not_to_be_empty()
    await expect(page.page.locator("#token")).to_be_visible()
    await expect(page.page.locator("#token")).to_be_focused()


async def test_scrolling_up_loads_older_history_in_order(
    chat_url: str, open_page: OpenPage, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    texts = [f"message {i:03}" for i in range(75)]
    for text in texts:
        await emit(http, chat_url, api_headers, room="lobby", text=text)
    page = await open_page(f"{chat_url}/", "history")
    await page.sign_in("reader")
    await expect(page.message_texts).to_have_count(50)  # the newest page, as join gives it
    await expect(page.message_texts.last).to_have_text("message 074")

    await page.page.locator("#timeline").evaluate("t => { t.scrollTop = 0; }")

    await expect(page.message_texts).to_have_text(texts)
    await expect(page.page.locator("#timeline-start")).to_contain_text("beginning of #lobby")
    ids = await page.shown_ids()
    assert ids == sorted(ids)
    assert len(set(ids)) == len(texts)


async def test_unread_counts_mark_rooms_not_shown_and_clear_on_opening(
    chat_url: str, open_page: OpenPage, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    page = await open_page(f"{chat_url}/", "unread")
    await page.sign_in("carol")
    await page.join("games")
    await page.open("room", "lobby")

    for text in ("one", "two", "three"):
        await emit(http, chat_url, api_headers, room="games", text=text)

    badge = page.conversation("room", "games").locator(".badge")
    await expect(badge).to_contain_text("3")
    await expect(page.page).to_have_title(re.compile(r"^\(3\) "))
    await page.screenshot("unread")
    await page.open("room", "games")
    await expect(badge).to_have_count(0)
    await expect(page.page.locator(".new-divider")).to_be_visible()


async def test_keyboard_alone_signs_in_joins_sends_and_switches(
    chat_url: str, open_page: OpenPage
) -> None:
    page = await open_page(f"{chat_url}/", "keyboard")
    keyboard = page.page.keyboard
    await expect(page.page.locator("#username")).to_be_focused()
    await keyboard.type("kim")
    await keyboard.press("Enter")
    await page.wait_online()
    await expect(page.page.locator("#message-input")).to_be_focused()

    await keyboard.press("Control+k")
    await expect(page.page.locator("#join-room")).to_be_focused()
    await keyboard.type("quiet")
    await keyboard.press("Enter")
    await expect(page.conversation("room", "quiet")).to_have_attribute("aria-current", "page")
    await expect(page.page.locator("#message-input")).to_be_focused()
    await keyboard.type("typed without a mouse")
    await keyboard.press("Enter")
    await expect(page.message("typed without a mouse")).to_have_count(1)

    await keyboard.press("Alt+ArrowUp")
    await expect(page.conversation("room", "lobby")).to_have_attribute("aria-current", "page")
    await expect(page.message("typed without a mouse")).to_have_count(0)


async def test_a_phone_sized_screen_keeps_the_conversation_list_behind_a_menu(
    chat_url: str, open_page: OpenPage
) -> None:
    page = await open_page(f"{chat_url}/", "phone", viewport=PHONE)
    await page.screenshot("sign-in")
    await page.sign_in("pat")
    await page.send("hello from a small screen")
    await expect(page.page.locator("#sidebar")).not_to_be_in_viewport()
    await page.screenshot("chat")

    await page.page.click("#sidebar-open")
    await expect(page.page.locator("#sidebar")).to_be_in_viewport()
    await page.screenshot("menu")
    await page.join("garden")
    await expect(page.page.locator("#sidebar")).not_to_be_in_viewport()
    await expect(page.page.locator("#conv-title")).to_contain_text("garden")
    width = await page.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]


async def test_a_reload_keeps_the_session_and_the_rooms(
    chat_url: str, open_page: OpenPage
) -> None:
    page = await open_page(f"{chat_url}/", "reload")
    await page.sign_in("robin")
    await page.join("books")
    await page.send("still here after a reload")

    await page.page.reload()
    await page.wait_online()
    await expect(page.conversation("room", "books")).to_have_attribute("aria-current", "page")
    await expect(page.conversation("room", "lobby")).to_be_visible()
    await expect(page.message("still here after a reload")).to_have_count(1)


async def test_a_private_conversation_started_before_signing_in_shows_up_unread(
    chat_url: str, open_page: OpenPage, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    await emit(http, chat_url, api_headers, to="erin", text="are you there?", **{"from": "dana"})
    await emit(http, chat_url, api_headers, to="dana", text="yes, here", **{"from": "erin"})

    page = await open_page(f"{chat_url}/", "discovered")  # a fresh context: no localStorage
    await page.sign_in("dana")

    badge = page.conversation("dm", "erin").locator(".badge")
    await expect(badge).to_contain_text("1")
    await expect(page.page).to_have_title(re.compile(r"^\(1\) "))
    await page.screenshot("discovered")
    await page.open("dm", "erin")
    await expect(page.message_texts).to_have_text(["are you there?", "yes, here"])
    await expect(badge).to_have_count(0)
    await expect(page.message("are you there?")).to_have_class(re.compile(r"\bown\b"))


async def test_a_closed_private_conversation_stays_closed_until_something_new_arrives(
    chat_url: str, open_page: OpenPage, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    await emit(http, chat_url, api_headers, to="fay", text="old news")
    page = await open_page(f"{chat_url}/", "closed")
    await page.sign_in("fay")
    bot = page.conversation("dm", "bot")
    await expect(bot).to_be_visible()
    await bot.hover()  # the close button shows on hover, as for a person with a mouse
    await page.page.get_by_role("button", name="Close the conversation with bot").click()
    await expect(bot).to_have_count(0)

    await page.page.goto("about:blank")  # the tab keeps its session
    # A conversation started meanwhile shows that the page has listed them on its return.
    await emit(http, chat_url, api_headers, to="fay", text="meanwhile", **{"from": "gus"})
    await page.page.goto(page.url)
    await expect(page.conversation("dm", "gus")).to_be_visible()
    await expect(bot).to_have_count(0)

    await emit(http, chat_url, api_headers, to="fay", text="fresh news")
    await expect(bot.locator(".badge")).to_contain_text("1")


async def test_every_message_the_page_sends_carries_its_own_client_id(
    chat_url: str, open_page: OpenPage, connect: Connect
) -> None:
    page = await open_page(f"{chat_url}/", "client-id")
    await page.sign_in("alice")
    await page.send("same words")
    await page.send("same words")
    await expect(page.message("same words")).to_have_count(2)

    reader = await connect(chat_url, "reader")
    ack = await reader.call("history", {"room": "lobby"})
    client_ids = [m.get("client_id") for m in ack["messages"] if m["text"] == "same words"]
    assert len(client_ids) == 2
    assert len(set(client_ids)) == 2
    assert all(isinstance(c, str) and re.fullmatch(r"[A-Za-z0-9_-]{22}", c) for c in client_ids)


async def test_a_bot_tokens_message_shows_a_bot_badge_and_a_named_key_message_none(
    start_server: StartServer,
    make_settings: Callable[..., Settings],
    open_page: OpenPage,
    http: aiohttp.ClientSession,
    api_headers: dict[str, str],
) -> None:
    url = await start_server(make_settings(secret=SECRET))
    page = await open_page(f"{url}/", "bot-badge")
    await sign_in_with_token(page, make_token(SECRET, "reader"))

    bot = {"Authorization": f"Bearer {issue_token(SECRET, 'helper', 600, bot=True)}"}
    await emit(http, url, bot, room="lobby", text="I am a bot")
    # The API key may post under any name, but only a bot token earns the badge.
    await emit(
        http, url, api_headers, room="lobby", text="I only look like one", **{"from": "ci-bot"}
    )

    await expect(page.message("I am a bot").locator(".bot-badge")).to_have_text("bot")
    await expect(page.message("I only look like one")).to_be_visible()
    await expect(page.message("I only look like one").locator(".bot-badge")).to_have_count(0)
    await page.screenshot("bot-badge")
