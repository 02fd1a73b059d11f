"""A page object for the chat client: what a person does on the page, as methods."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def _expect() -> Any:
    from playwright.async_api import expect

    return expect


class ChatPage:
    """One user's tab. ``errors`` collects uncaught script errors."""

    def __init__(self, page: Any, url: str, label: str, shots: Path) -> None:
        self.page = page
        self.url = url
        self.label = label
        self.shots = shots
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    # -- looking --------------------------------------------------------------------

    @property
    def body(self) -> Any:
        return self.page.locator("body")

    @property
    def message_texts(self) -> Any:
        """The text of every message shown in the open conversation, in order."""
        return self.page.locator("#message-list .msg .text")

    def message(self, text: str) -> Any:
        """The shown message whose whole text is ``text``."""
        return self.page.locator(
            "#message-list .msg", has=self.page.locator(".text", has_text=_exactly(text))
        )

    def conversation(self, kind: str, name: str) -> Any:
        return self.page.locator(f".conv-item[data-kind='{kind}'][data-name='{name}']")

    def member(self, name: str) -> Any:
        return self.page.locator(f"#member-list li[data-user='{name}']")

    def reaction(self, text: str, emoji: str) -> Any:
        """The reaction chip ``emoji`` under the shown message ``text``."""
        return self.message(text).locator(f".reaction[data-emoji='{emoji}']")

    def unread(self, kind: str, name: str) -> Any:
        """The unread badge of a conversation in the sidebar."""
        return self.conversation(kind, name).locator(".badge")

    async def shown_ids(self) -> list[str]:
        ids: list[str] = await self.page.locator("#message-list .msg").evaluate_all(
            "nodes => nodes.map(n => n.dataset.id)"
        )
        return ids

    async def diagnosis(self) -> str:
        """The page's connection state and console, for a failed test's report."""
        state = await self.page.evaluate(
            """() => {
                const s = window.chat && window.chat.store;
                if (!s) return "no store";
                return JSON.stringify({
                    me: s.me, connection: s.connection, active: s.activeKey,
                    socket: s.socket ? { id: s.socket.id, connected: s.socket.connected } : null,
                    conversations: [...s.conversations.values()].map(c => ({
                        key: c.key, synced: c.synced, ids: c.ids.length, members: [...c.members],
                    })),
                    outbox: s.outbox.map(i => ({ text: i.text, state: i.state, error: i.error })),
                });
            }"""
        )
        console = "\n    ".join(self.console[-30:])
        return f"{self.label}: {state}\n  console:\n    {console}"

    async def screenshot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{self.label}-{name}.png"
        await self.page.screenshot(path=str(path), animations="disabled")
        return path

    # -- doing ----------------------------------------------------------------------

    async def sign_in(self, username: str) -> None:
        await self.page.fill("#username", username)
        await self.page.press("#username", "Enter")
        await self.wait_online()

    async def wait_online(self, within_ms: float = 10_000) -> None:
        await _expect()(self.body).to_have_attribute(
            "data-connection", "online", timeout=within_ms
        )

    async def send(self, text: str) -> None:
        await self.page.fill("#message-input", text)
        await self.page.press("#message-input", "Enter")

    async def send_and_see(self, text: str) -> None:
        """Send ``text`` and wait until the server confirmed it (no longer pending)."""
        await self.send(text)
        await _expect()(self.message(text)).to_have_count(1)
        await _expect()(self.page.locator("#pending-list .msg")).to_have_count(0)

    async def edit(self, text: str, new_text: str) -> None:
        """Edit our shown message ``text`` with its Edit button, and save ``new_text``."""
        await self.message(text).hover()
        await self.message(text).locator(".edit-button").click()
        await self.page.fill("#message-input", new_text)
        await self.page.press("#message-input", "Enter")

    async def delete(self, text: str, *, confirm: bool = True) -> None:
        """Delete our shown message ``text``, accepting or dismissing the confirmation."""
        self.page.once("dialog", lambda dialog: dialog.accept() if confirm else dialog.dismiss())
        await self.message(text).hover()
        await self.message(text).locator(".delete-button").click()

    async def react(self, text: str, emoji: str) -> None:
        """Pick ``emoji`` for the shown message ``text`` from its reaction picker."""
        await self.message(text).hover()
        await self.message(text).locator(".react-button").click()
        await self.message(text).locator(f".emoji-choice[data-emoji='{emoji}']").click()

    async def open(self, kind: str, name: str) -> None:
        await self.conversation(kind, name).click()
        await _expect()(self.conversation(kind, name)).to_have_attribute("aria-current", "page")

    async def sign_in_with_token(self, token: str) -> None:
        """Sign in through the page's token field and wait until it is online."""
        await self.page.click("#token-details summary")
        await self.page.fill("#token", token)
        await self.page.click("#signin-button")
        await self.wait_online()

    # -- rooms that belong to someone -------------------------------------------------

    async def create_room(self, room: str, *, private: bool = False, topic: str = "") -> None:
        """Fill the sidebar's "Create a room" form and submit it."""
        if await self.page.locator("#create-details").get_attribute("open") is None:
            await self.page.click("#create-details summary")
        await self.page.fill("#create-name", room)
        await self.page.fill("#create-topic", topic)
        await self.page.set_checked("#create-private", private)
        await self.page.click("#create-form button[type='submit']")

    async def settings(self, form: str, value: str) -> None:
        """Submit ``value`` in the room settings form ``form`` (topic, invite, unban, role)."""
        if await self.page.locator("#room-settings").is_hidden():
            await self.page.click("#room-settings-toggle")
        field = self.page.locator(f"#{form}-form input").first
        await field.fill(value)
        await field.press("Enter")

    def member_tools(self, user: str) -> Any:
        """The moderation tools of ``user`` in the member list (once opened)."""
        return self.member(user).locator(".member-tools")

    async def open_member_tools(self, user: str) -> Any:
        await self.member(user).locator(".member-tools-toggle").click()
        return self.member_tools(user)

    async def join(self, room: str) -> None:
        await self.page.fill("#join-room", room)
        await self.page.press("#join-room", "Enter")
        await _expect()(self.conversation("room", room)).to_have_attribute("aria-current", "page")


def _exactly(text: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(text)}$")
