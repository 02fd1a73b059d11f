"""Rooms that belong to someone, in real pages on two processes (token mode).

The owner works on process 0, the others on process 1, so everything a page
shows of another person's action crossed the Redis bus.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.browser import OpenPage, expect
from tests.support.chat import make_token
from tests.support.chat_page import ChatPage
from tests.support.fixtures import StartProcesses

pytestmark = pytest.mark.browser

SECRET = "browser-rooms-secret-of-at-least-32-bytes"

#: ``await person(name, process=0, admin=False) -> ChatPage``: a page signed in with a
#: token for ``name`` (with the claim ``admin: true`` when ``admin``) on that process.
Person = Callable[..., Awaitable[ChatPage]]


@pytest.fixture
async def person(server_processes: StartProcesses, open_page: OpenPage) -> Person:
    processes = await server_processes(2, env={"CHAT_SECRET": SECRET})

    async def sign_in(name: str, process: int = 0, *, admin: bool = False) -> ChatPage:
        page = await open_page(f"{processes[process].url}/", name)
        token = make_token(SECRET, name, admin=True) if admin else make_token(SECRET, name)
        await page.sign_in_with_token(token)
        return page

    return sign_in


async def private_team(person: Person) -> tuple[ChatPage, ChatPage]:
    """olga (process 0) owns private ``team`` and invited bob (process 1), who opened it."""
    olga = await person("olga")
    await olga.create_room("team", private=True, topic="Plans for Friday")
    await expect(olga.conversation("room", "team")).to_have_attribute("aria-current", "page")
    bob = await person("bob", 1)
    await olga.settings("invite", "bob")
    await expect(olga.page.locator("#settings-message")).to_have_text("bob is invited to #team.")
    await bob.page.locator(".invitation[data-name='team']").click()
    await expect(bob.conversation("room", "team")).to_have_attribute("aria-current", "page")
    await expect(olga.member("bob")).to_be_visible()
    return olga, bob


async def carol_in_olgas_room(person: Person) -> tuple[ChatPage, ChatPage, Any]:
    """olga (process 0) owns public ``open``, carol (process 1) is in it; olga's tools for her."""
    olga = await person("olga")
    await olga.create_room("open")
    carol = await person("carol", 1)
    await carol.join("open")
    await expect(olga.member("carol")).to_be_visible()
    return olga, carol, await olga.open_member_tools("carol")


async def test_creating_a_private_room_shows_its_topic_privacy_and_the_owner_badge(
    person: Person,
) -> None:
    olga = await person("olga")
    await olga.create_room("team", private=True, topic="Plans for Friday")
    page = olga.page
    await expect(olga.conversation("room", "team")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#conv-topic")).to_have_text("Plans for Friday")
    await expect(page.locator("#conv-privacy")).to_be_visible()
    await expect(page.locator("#conv-role")).to_have_text("owner")
    await expect(olga.member("olga").locator(".role-tag")).to_have_text("owner")
    await olga.screenshot("created")


async def test_an_invitation_from_another_process_appears_and_opens_the_room(
    person: Person,
) -> None:
    olga = await person("olga")
    await olga.create_room("team", private=True, topic="Plans for Friday")
    bob = await person("bob", 1)
    await olga.settings("invite", "bob")
    invitation = bob.page.locator(".invitation[data-name='team']")
    await expect(invitation).to_contain_text("from olga")
    await bob.screenshot("invited")
    await invitation.click()
    await expect(bob.conversation("room", "team")).to_have_attribute("aria-current", "page")
    await expect(bob.page.locator("#conv-topic")).to_have_text("Plans for Friday")
    await expect(bob.page.locator("#conv-role")).to_be_hidden()
    await expect(invitation).to_have_count(0)
    await expect(olga.member("bob")).to_be_visible()


async def test_a_new_topic_reaches_the_other_members_header_live(person: Person) -> None:
    olga, bob = await private_team(person)
    await olga.settings("topic", "Moved to Saturday")
    await expect(bob.page.locator("#conv-topic")).to_have_text("Moved to Saturday")
    await expect(olga.page.locator("#settings-message")).to_have_text("Topic saved.")
    await olga.screenshot("settings")


async def test_making_a_member_moderator_shows_the_badge_on_both_pages(person: Person) -> None:
    olga, bob = await private_team(person)
    tools = await olga.open_member_tools("bob")
    await tools.locator(".role-button").click()
    await expect(olga.member("bob").locator(".role-tag")).to_have_text("mod")
    await expect(bob.page.locator("#conv-role")).to_have_text("moderator")
    await expect(bob.member("bob").locator(".role-tag")).to_have_text("mod")
    await expect(bob.page.locator("#room-settings-toggle")).to_be_visible()
    await bob.screenshot("moderator")


async def test_a_member_without_a_role_is_offered_no_moderation(person: Person) -> None:
    _, bob = await private_team(person)
    await expect(bob.member("olga")).to_be_visible()
    await expect(bob.member("olga").locator(".member-tools-toggle")).to_have_count(0)
    await bob.page.click("#room-settings-toggle")
    await expect(bob.page.locator("#topic-form")).to_be_hidden()
    await expect(bob.page.locator("#unban-form")).to_be_hidden()


async def test_a_banned_user_sees_the_notice_and_a_rejoin_refused_in_words(
    person: Person,
) -> None:
    olga, carol, tools = await carol_in_olgas_room(person)
    await tools.locator(".member-reason").fill("spam")
    await tools.locator(".member-ban-length").select_option("3600")
    await olga.screenshot("member-tools")
    await tools.locator(".ban-button").click()
    notice = carol.page.locator("#room-out-text")
    await expect(notice).to_have_text("olga removed you from #open. Reason: spam")
    await expect(carol.page.locator("#composer")).to_be_hidden()
    await expect(olga.member("carol")).to_have_count(0)
    await carol.page.click("#rejoin-button")
    await expect(notice).to_have_text(re.compile(r"^You are banned from #open\."))
    await carol.screenshot("banned")


async def test_a_kicked_user_can_join_again(person: Person) -> None:
    olga, carol, tools = await carol_in_olgas_room(person)
    await tools.locator(".kick-button").click()
    await expect(carol.page.locator("#room-out-text")).to_have_text("olga removed you from #open.")
    await carol.page.click("#rejoin-button")
    await expect(carol.page.locator("#room-out")).to_be_hidden()
    await expect(carol.page.locator("#composer")).to_be_visible()
    await expect(olga.member("carol")).to_be_visible()


async def test_an_outsider_joining_a_private_room_is_told_why_in_words(person: Person) -> None:
    olga = await person("olga")
    await olga.create_room("team", private=True)
    eve = await person("eve", 1)
    await eve.page.fill("#join-room", "team")
    await eve.page.press("#join-room", "Enter")
    await expect(eve.page.locator("#join-error")).to_have_text(
        "#team is a private room: only its members can join."
        " Ask its owner or a moderator to invite you."
    )
    await expect(eve.conversation("room", "team")).to_have_count(0)


async def test_creating_a_room_that_exists_is_refused_in_words(person: Person) -> None:
    await (await person("olga")).create_room("team")
    eve = await person("eve", 1)
    await eve.create_room("team")
    await expect(eve.page.locator("#create-error")).to_have_text(
        "#team exists already: pick another name, or join it."
    )


async def test_an_admin_token_moderates_a_room_nobody_created(person: Person) -> None:
    root = await person("root", admin=True)
    carol = await person("carol", 1)
    await expect(root.page.locator("#conv-role")).to_have_text("admin")
    tools = await root.open_member_tools("carol")
    await tools.locator(".kick-button").click()
    await expect(carol.page.locator("#room-out-text")).to_have_text(
        "root removed you from #lobby."
    )


async def test_a_banned_users_reload_shows_the_ban_instead_of_the_room(person: Person) -> None:
    olga, carol, tools = await carol_in_olgas_room(person)
    await tools.locator(".ban-button").click()
    await expect(carol.page.locator("#room-out")).to_be_visible()
    await carol.page.reload()
    await carol.wait_online()
    await carol.open("room", "open")
    await expect(carol.page.locator("#room-out-text")).to_have_text(
        re.compile(r"^You are banned from #open\.")
    )
    await expect(olga.member("carol")).to_have_count(0)
