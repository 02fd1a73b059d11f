"""Identity: guest usernames, or the user a token vouches for (see ``tokens``)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import jwt

__all__ = ["AuthError", "Authenticator", "Verifier", "issue_token", "valid_username"]

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,32}\Z", re.ASCII)
ALGORITHM = "HS256"


class Verifier(Protocol):
    """Checks a token (``tokens.TokenVerifier``)."""

    async def verify(self, token: object) -> str:
        """The username ``token`` vouches for; ``AuthError`` otherwise."""
        ...


class AuthError(Exception):
    """A refused identity; ``code`` is what the client's ``connect_error`` carries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_username(value: object) -> bool:
    """Whether ``value`` is 1 to 32 ASCII letters, digits, ``_``, ``-`` or ``.``."""
    return isinstance(value, str) and USERNAME_PATTERN.match(value) is not None


def issue_token(
    secret: str,
    username: str,
    ttl: int,
    now: float | None = None,
    *,
    bot: bool = False,
    rooms: Sequence[str] | None = None,
) -> str:
    """An HS256 token for ``username`` valid for ``ttl`` seconds (the ``token`` command).

    With ``bot`` the token carries ``bot: true`` (it then opens the REST API
    as that bot) and, when ``rooms`` is given, the ``rooms`` it may post to.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": username, "iat": issued, "exp": issued + ttl}
    if bot:
        claims["bot"] = True
        if rooms is not None:
            claims["rooms"] = list(dict.fromkeys(rooms))
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class Authenticator:
    """Who a new connection is, from its Socket.IO ``auth`` object.

    :param verifier: checks tokens in token mode (``tokens.TokenVerifier``);
        ``None`` is guest mode.

    Guest mode trusts ``auth.username``; token mode trusts only
    ``auth.token`` and ignores any username sent beside it.
    """

    def __init__(self, verifier: Verifier | None) -> None:
        self.verifier = verifier

    async def identify(self, auth: Any) -> str:
        """The username of the connection; ``AuthError`` when refused."""
        fields = auth if isinstance(auth, dict) else {}
        if self.verifier is not None:
            if "token" not in fields:
                raise AuthError("token_required", "This server requires a token (auth.token).")
            return await self.verifier.verify(fields["token"])
        username = fields.get("username")
        if not valid_username(username):
            raise AuthError(
                "invalid_username",
                "A username is 1 to 32 characters of letters, digits, '_', '-' or '.'.",
            )
        assert isinstance(username, str)
        return username
