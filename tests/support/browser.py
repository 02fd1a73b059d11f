"""What the browser tests share besides the page object: viewports, fixture types, ``expect``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.support.chat_page import ChatPage
from tests.support.process import ServerProcess

__all__ = ["DESKTOP", "FAILED", "PHONE", "MakePair", "OpenPage", "Pair", "expect"]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

#: Set on a test item once its call phase has run: did it fail?
FAILED = pytest.StashKey[bool]()

#: ``await open_page(url, label, viewport=DESKTOP) -> ChatPage``.
OpenPage = Callable[..., Awaitable[ChatPage]]


@dataclass
class Pair:
    """alice and bob signed in on two processes sharing one Redis, both in lobby."""

    alice: ChatPage  # on processes[0]
    bob: ChatPage  # on processes[1]
    processes: list[ServerProcess]


#: ``await make_pair(env={...}) -> Pair``.
MakePair = Callable[..., Awaitable[Pair]]

if TYPE_CHECKING:
    from playwright.async_api import expect
else:
    try:
        from playwright.async_api import expect
    except ImportError:  # the browser fixture skips (or fails under CI) with the reason
        expect = None
