"""What the browser tests share besides the page object: viewports, fixture types, ``expect``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from tests.support.chat_page import ChatPage

__all__ = ["DESKTOP", "FAILED", "PHONE", "OpenPage", "expect"]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

#: Set on a test item once its call phase has run: did it fail?
FAILED = pytest.StashKey[bool]()

#: ``await open_page(url, label, viewport=DESKTOP) -> ChatPage``.
OpenPage = Callable[..., Awaitable[ChatPage]]

if TYPE_CHECKING:
    from playwright.async_api import expect
else:
    try:
        from playwright.async_api import expect
    except ImportError:  # the browser fixture skips (or fails under CI) with the reason
        expect = None
