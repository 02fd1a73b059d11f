"""Security and caching headers of the browser client, and a Server header without versions."""

from __future__ import annotations

from collections.abc import Awaitable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["SERVER", "HeaderPolicy", "content_security_policy", "hide_versions"]

#: What every answer says in ``Server``: no versions to look up exploits by.
SERVER = "chat-server"
#: The vendored Socket.IO client, cached for a year without revalidation: a
#: new release of it must come under a new file name (static/vendor/README.md).
VENDOR_PREFIX = "/static/vendor/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class _MetaPolicy(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.policy: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "content-security-policy":
            self.policy = values.get("content")


def content_security_policy(index_html: Path, cors_origins: tuple[str, ...] | None) -> str:
    """The page's policy: its ``<meta>`` tag's, plus who may frame it.

    ``frame-ancestors`` only works as a header, so it is added here: nobody,
    unless ``CHAT_CORS_ORIGINS`` names the origins that embed the chat.
    """
    parser = _MetaPolicy()
    parser.feed(index_html.read_text(encoding="utf-8"))
    if not parser.policy:
        raise ValueError(f"{index_html} has no Content-Security-Policy <meta> tag")
    ancestors = "'none'" if cors_origins is None else " ".join(cors_origins)
    return f"{parser.policy.strip().rstrip(';')}; frame-ancestors {ancestors}"


class HeaderPolicy:
    """Adds the headers below to the answers of ``/`` and ``/static/``.

    :param csp: the ``Content-Security-Policy`` value.

    ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``
    everywhere there; the vendored client cached for a year, everything
    else revalidated each time, so a new release of the page is seen at once.
    """

    def __init__(self, csp: str) -> None:
        self.csp = csp

    def decorate(self, path: str, headers: Any) -> None:
        """Set the headers of an answer to ``path`` (a page or static file)."""
        headers["Content-Security-Policy"] = self.csp
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cache-Control"] = IMMUTABLE if path.startswith(VENDOR_PREFIX) else REVALIDATE

    @web.middleware
    def middleware(self, request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
        """The middleware: pages and static files get the headers, other paths pass."""
        if request.path != "/" and not request.path.startswith("/static/"):
            passed: Awaitable[web.StreamResponse] = handler(request)
            return passed
        return self._decorated(request, handler)

    async def _decorated(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            self.decorate(request.path, exc.headers)
            raise
        self.decorate(request.path, response.headers)
        return response


async def hide_versions(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: ``Server`` without aiohttp's and Python's versions."""
    response.headers["Server"] = SERVER
