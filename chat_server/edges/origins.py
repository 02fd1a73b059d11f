"""Which browser origins may open a connection: the server's own, plus a list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OriginPolicy", "own_origins"]


def own_origins(environ: Mapping[str, Any]) -> set[str]:
    """The origins a page served by this very server has, as seen through proxies."""
    host = environ.get("HTTP_HOST")
    if not host:
        return set()
    scheme = environ.get("wsgi.url_scheme", "http")
    origins = {f"{scheme}://{host}"}
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
    origins.add(f"{forwarded_proto}://{forwarded_host}")
    return origins


class OriginPolicy:
    """An Engine.IO ``cors_allowed_origins`` callable.

    python-engineio stops allowing the server's own origin once it is given a
    list; the chat's page must keep working when an operator adds other sites,
    so this allows both.

    :param allowed: extra origins, as ``scheme://host[:port]``.
    """

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = frozenset(allowed)

    def __call__(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser: nothing to protect against
        return origin in self.allowed or origin in own_origins(environ)
