"""Token mode: which JWTs the server believes, and the settings that choose them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from chat_server.core.auth import AuthError, valid_username
from chat_server.core.jwks import JwksCache, fetch_signing_keys
from chat_server.core.settings import ConfigError, Settings

__all__ = [
    "BotGrant",
    "TokenVerifier",
    "build_verifier",
    "check_algorithms",
    "check_jwks_url",
    "check_token_settings",
    "load_public_key",
    "symmetric",
    "verify_bot_token",
]

#: Bot tokens are the ``token --bot`` command's, always HMAC with ``CHAT_SECRET``.
BOT_ALGORITHM = "HS256"


def symmetric(algorithm: str) -> bool:
    """Whether ``algorithm`` is an HMAC one, keyed with a shared secret."""
    return algorithm.startswith("HS")


def known_algorithms() -> list[str]:
    """What PyJWT can verify here ("none" never counts; RS/ES need cryptography)."""
    return sorted(set(jwt.algorithms.get_default_algorithms()) - {"none"})


def check_algorithms(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated algorithm names, each one PyJWT knows; ``ConfigError`` otherwise."""
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not names:
        raise ConfigError(f"{name} lists no algorithm: {raw!r}")
    known = known_algorithms()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"{name} names unknown algorithms {unknown}; known: {', '.join(known)}")
    return names


def load_public_key(pem: str) -> Any:
    """The key in PEM text ``pem``; ``ValueError`` if it is not a PEM public key."""
    try:
        return serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None


def check_jwks_url(name: str, raw: str, insecure: bool) -> str:
    """``raw`` if it is an https URL, or http on loopback, or http with ``insecure``.

    A JWKS fetched over plain HTTP can be swapped by anyone on the path, who
    could then sign tokens for any user.
    """
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an https:// URL, got {raw!r}")
    if parts.scheme == "http" and not insecure and not _loopback(parts.hostname):
        raise ConfigError(
            f"{name} must use https:// outside loopback (or set CHAT_JWKS_INSECURE=1), got {raw!r}"
        )
    return raw


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_settings(settings: Settings) -> None:
    """Refuse algorithm lists that no configured key can verify.

    HS* tokens are checked only with ``CHAT_SECRET`` and RS/ES/PS/EdDSA
    tokens only with the public key or the JWKS, so a public key can never
    be used as an HMAC secret (the classic algorithm confusion).
    """
    if settings.jwt_public_key is not None and settings.jwks_url is not None:
        raise ConfigError("set CHAT_JWT_PUBLIC_KEY or CHAT_JWKS_URL, not both")
    asymmetric_key = settings.jwt_public_key is not None or settings.jwks_url is not None
    if asymmetric_key and all(symmetric(a) for a in settings.jwt_algorithms):
        raise ConfigError(
            "CHAT_JWT_PUBLIC_KEY or CHAT_JWKS_URL needs an RS*/ES* algorithm in "
            f"CHAT_JWT_ALGORITHMS (now {','.join(settings.jwt_algorithms)})"
        )
    for algorithm in settings.jwt_algorithms:
        # Without any key the server is in guest mode and the default HS256 is moot.
        if symmetric(algorithm) and settings.secret is None and settings.token_mode:
            raise ConfigError(
                f"CHAT_JWT_ALGORITHMS lists {algorithm}, which needs CHAT_SECRET "
                "(or list only RS*/ES* algorithms)"
            )
        if not symmetric(algorithm) and not asymmetric_key:
            raise ConfigError(
                f"CHAT_JWT_ALGORITHMS lists {algorithm}, which needs CHAT_JWT_PUBLIC_KEY "
                "or CHAT_JWKS_URL"
            )


class TokenVerifier:
    """Checks a token and says which user it vouches for.

    :param algorithms: the accepted algorithms; the token's header picks one.
    :param secret: the key of HS* tokens (``None``: HS* tokens are refused).
    :param public_key: the key of asymmetric tokens, as loaded by ``load_public_key``.
    :param jwks: where asymmetric keys are looked up by ``kid`` instead.
    :param issuer: the ``iss`` every token must carry, if set.
    :param audience: the ``aud`` every token must carry, if set.
    :param username_claim: the claim that holds the username (``sub``).
    """

    def __init__(
        self,
        algorithms: tuple[str, ...],
        *,
        secret: str | None = None,
        public_key: Any = None,
        jwks: JwksCache | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        username_claim: str = "sub",
    ) -> None:
        self.algorithms = frozenset(algorithms)
        self.secret = secret
        self.public_key = public_key
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.username_claim = username_claim
        required = ["exp", username_claim]
        required += ["iss"] if issuer is not None else []
        required += ["aud"] if audience is not None else []
        self._required = required

    async def verify(self, token: object) -> str:
        """The username ``token`` vouches for; ``AuthError(invalid_token)`` otherwise."""
        if not isinstance(token, str) or not token:
            raise AuthError("invalid_token", "The token is empty or not a string.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", f"The token is not valid: {exc}.") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise AuthError("invalid_token", f"Tokens signed with {algorithm!r} are not accepted.")
        key = await self._key(algorithm, header.get("kid"))
        try:
            # One algorithm, the header's, already checked against the list:
            # "alg: none" and HS/RS confusion never get this far.
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": self._required},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("invalid_token", "The token has expired.") from None
        except jwt.InvalidIssuerError:
            raise AuthError("invalid_token", "The token's issuer is not accepted.") from None
        except jwt.InvalidAudienceError:
            raise AuthError("invalid_token", "The token is meant for another audience.") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthError("invalid_token", f"The token is not valid: {exc}.") from None
        username = claims.get(self.username_claim)
        if not valid_username(username):
            raise AuthError(
                "invalid_token", f"The token's {self.username_claim} is not a valid username."
            )
        assert isinstance(username, str)
        return username

    async def _key(self, algorithm: str, kid: object) -> Any:
        if symmetric(algorithm):
            if self.secret is None:
                raise AuthError("invalid_token", "HMAC-signed tokens are not accepted.")
            return self.secret
        if self.public_key is not None:
            return self.public_key
        if self.jwks is None:
            raise AuthError("invalid_token", f"Tokens signed with {algorithm} are not accepted.")
        if not isinstance(kid, str) or not kid:
            raise AuthError("invalid_token", "The token names no key (kid).")
        key = await self.jwks.key(kid)
        if key is None:
            raise AuthError("invalid_token", "The token's key (kid) is not known.")
        return key


def build_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier token mode needs, or ``None`` in guest mode."""
    if not settings.token_mode:
        return None
    public_key = None
    if settings.jwt_public_key is not None:
        public_key = load_public_key(settings.jwt_public_key)
    jwks = None
    if settings.jwks_url is not None:
        jwks = JwksCache(fetch_signing_keys(settings.jwks_url))
    return TokenVerifier(
        settings.jwt_algorithms,
        secret=settings.secret,
        public_key=public_key,
        jwks=jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        username_claim=settings.jwt_username_claim,
    )


@dataclass(frozen=True, slots=True)
class BotGrant:
    """What a bot token lets its holder do on the REST API.

    :param name: the bot's username (the token's ``sub``), the only ``from`` it may use.
    :param rooms: the rooms it may post to; ``None`` when the claim is absent (every room).
    """

    name: str
    rooms: frozenset[str] | None

    def covers(self, room: str) -> bool:
        """Whether the grant covers ``room``."""
        return self.rooms is None or room in self.rooms


def verify_bot_token(secret: str, token: str) -> BotGrant:
    """The grant of bot token ``token`` signed with ``secret``.

    Raises ``AuthError("invalid_token")`` for a token that is malformed,
    forged or expired, and ``AuthError("not_a_bot")`` for a genuine token
    without ``bot: true`` (a user's token, which the REST API refuses).
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[BOT_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("invalid_token", "The token has expired.") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise AuthError("invalid_token", f"The token is not valid: {exc}.") from None
    name = claims.get("sub")
    if not valid_username(name):
        raise AuthError("invalid_token", "The token's sub is not a valid username.")
    assert isinstance(name, str)
    if claims.get("bot") is not True:
        raise AuthError("not_a_bot", "This token is not a bot token (it lacks bot: true).")
    rooms = claims.get("rooms")
    if rooms is None:
        return BotGrant(name, None)
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise AuthError("invalid_token", "The token's rooms claim is not a list of room names.")
    return BotGrant(name, frozenset(rooms))
