"""Fixtures for the browser tests: Debian's chromium driven by Playwright, one page per user."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import DESKTOP, FAILED, MakePair, OpenPage, Pair, expect
from tests.support.chat_page import ChatPage
from tests.support.process import REPO_ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed (pip install -r requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium); browsers are never downloaded"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Remembered so that the page fixture can take failure screenshots.
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Debian chromium (skipped when absent, a failure under CI=true)."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: required under CI=true", pytrace=False)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """``artifacts/screenshots/`` (git ignores ``/artifacts/``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
async def open_page(
    browser: Any, request: pytest.FixtureRequest, screenshot_dir: Path
) -> AsyncIterator[OpenPage]:
    """``await open_page(url, label, viewport=DESKTOP) -> ChatPage``, one browser context each.

    Every page must end the test without an uncaught script error; when the
    test fails, each page leaves a screenshot behind.
    """
    pages: list[ChatPage] = []
    test_name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)

    async def open_one(url: str, label: str, viewport: dict[str, int] | None = None) -> ChatPage:
        context = await browser.new_context(viewport=viewport or DESKTOP, locale="en-GB")
        page = await context.new_page()
        page.set_default_timeout(10_000)
        chat = ChatPage(page, url, label, screenshot_dir / test_name)
        pages.append(chat)
        await page.goto(url)
        return chat

    yield open_one

    if request.node.stash.get(FAILED, False):
        for chat in pages:
            await chat.screenshot("failure")
            print(await chat.diagnosis())
    errors = [f"{chat.label}: {error}" for chat in pages for error in chat.errors]
    for chat in pages:
        await chat.page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def make_pair(
    server_processes: Callable[..., Awaitable[list[ServerProcess]]],
    open_page: OpenPage,
    request: pytest.FixtureRequest,
) -> MakePair:
    """``await make_pair(env={...})``: alice and bob signed in, both seeing each other in lobby.

    A failed test prints both processes' logs.
    """

    async def make(env: dict[str, str] | None = None) -> Pair:
        processes = await server_processes(2, env={"LOG_LEVEL": "INFO", **(env or {})})
        request.addfinalizer(lambda: _print_logs_on_failure(request, processes))
        alice = await open_page(f"{processes[0].url}/", "alice")
        await alice.sign_in("alice")
        bob = await open_page(f"{processes[1].url}/", "bob")
        await bob.sign_in("bob")
        await expect(alice.member("bob")).to_be_visible()
        await expect(bob.member("alice")).to_be_visible()
        return Pair(alice, bob, processes)

    return make


def _print_logs_on_failure(request: pytest.FixtureRequest, processes: list[ServerProcess]) -> None:
    if request.node.stash.get(FAILED, False):
        for n, process in enumerate(processes):
            print(f"---- process {n} ({process.url}) log:\n{process.log_tail(60)}")


@pytest.fixture
async def pair(make_pair: MakePair) -> Pair:
    """alice on process 0 and bob on process 1, both signed in and in lobby."""
    return await make_pair()
