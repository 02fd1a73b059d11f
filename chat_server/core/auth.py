"""Identity: guest usernames and HS256 tokens whose ``sub`` is the username."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt

__all__ = ["AuthError", "authenticate", "issue_token", "valid_username", "verify_token"]

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,32}\Z", re.ASCII)
ALGORITHM = "HS256"


class AuthError(Exception):
    """A refused identity; ``code`` is what the client's ``connect_error`` carries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_username(value: object) -> bool:
    """Whether ``value`` is 1 to 32 ASCII letters, digits, ``_``, ``-`` or ``.``."""
    return isinstance(value, str) and USERNAME_PATTERN.match(value) is not None


def issue_token(secret: str, username: str, ttl: int, now: float | None = None) -> str:
    """A token for ``username`` valid for ``ttl`` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": username, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: object) -> str:
    """The username a token vouches for; ``AuthError(invalid_token)`` otherwise."""
    if not isinstance(token, str) or not token:
        raise AuthError("invalid_token", "The token is empty or not a string.")
    try:
        # Pinning the algorithm list is what refuses "alg: none" and RS/HS confusion.
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("invalid_token", "The token has expired.") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError("invalid_token", f"The token is not valid: {exc}.") from None
    username = claims.get("sub")
    if not valid_username(username):
        raise AuthError("invalid_token", "The token's sub is not a valid username.")
    assert isinstance(username, str)
    return username


def authenticate(auth: Any, secret: str | None) -> str:
    """The username of a connection from its Socket.IO ``auth`` object.

    Guest mode (no secret) trusts ``auth.username``; token mode trusts only
    ``auth.token`` and ignores any username sent beside it.
    """
    fields = auth if isinstance(auth, dict) else {}
    if secret is not None:
        if "token" not in fields:
            raise AuthError("token_required", "This server requires a token (auth.token).")
        return verify_token(secret, fields["token"])
    username = fields.get("username")
    if not valid_username(username):
        raise AuthError(
            "invalid_username",
            "A username is 1 to 32 characters of letters, digits, '_', '-' or '.'.",
        )
    assert isinstance(username, str)
    return username
