"""The kinds of value a setting holds: how each one's text becomes its value.

Each takes the setting's name (the variable or flag the text came from) and
the text, and returns the value or raises ``ConfigError`` naming the setting,
so that ``config.py``'s table of options can say what each setting is in one line.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from chat_server.core import tokens
from chat_server.core.addresses import Network, parse_networks
from chat_server.core.settings import (
    BUS_ROUTINGS,
    SPEEDUPS,
    WEBHOOK_EVENTS,
    ConfigError,
    RedisTarget,
)

__all__ = [
    "bus_routing",
    "claim",
    "cors_origins",
    "log_format",
    "log_level",
    "networks",
    "pem_file",
    "port",
    "positive_float",
    "positive_int",
    "presence_ttl",
    "redis_url",
    "speedups_off",
    "switch",
    "text",
    "webhook_events",
    "webhook_urls",
]

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def positive_int(name: str, raw: str) -> int:
    """A whole number above 0."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def positive_float(name: str, raw: str) -> float:
    """A finite number above 0."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value


def presence_ttl(name: str, raw: str) -> float:
    """Seconds between 1 and 60: how long a process's presence lasts unrefreshed."""
    # Above 60 s the contract's promise (a dead process's users leave
    # ``members`` within 60 s) would break; below 1 s the refresh traffic
    # (every third of it, per user and room) is pointless.
    value = positive_float(name, raw)
    if not 1 <= value <= 60:
        raise ConfigError(f"{name} must be between 1 and 60 seconds, got {raw!r}")
    return value


def port(name: str, raw: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name} must be between 1 and 65535, got {raw!r}")
    return value


def redis_url(name: str, raw: str) -> str:
    """A Redis URL the server can use (``RedisTarget.parse`` says why not)."""
    RedisTarget.parse(raw, name)
    return raw


def cors_origins(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated ``scheme://host[:port]`` origins, or ``*``."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins:
        raise ConfigError(f"{name} lists no origin: {raw!r}")
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name} entries must look like https://example.com, got {origin!r}")
    return ("*",) if "*" in origins else origins


def log_level(name: str, raw: str) -> str:
    """A logging level name, upper-cased."""
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def log_format(name: str, raw: str) -> str:
    """``text`` or ``json``."""
    fmt = raw.strip().lower()
    if fmt not in ("text", "json"):
        raise ConfigError(f"{name} must be text or json, got {raw!r}")
    return fmt


def text(name: str, raw: str) -> str:
    """Any text, as given."""
    return raw


def speedups_off(name: str, raw: str) -> frozenset[str]:
    """Comma-separated names of speed-ups to switch off."""
    names = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    unknown = sorted(names - set(SPEEDUPS))
    if unknown:
        raise ConfigError(
            f"{name} names unknown speed-ups {unknown}; known: {', '.join(SPEEDUPS)}"
        )
    return names


def bus_routing(name: str, raw: str) -> str:
    """How the bus routes: one of ``BUS_ROUTINGS``."""
    value = raw.strip().lower()
    if value not in BUS_ROUTINGS:
        raise ConfigError(f"{name} must be one of {', '.join(BUS_ROUTINGS)}, got {raw!r}")
    return value


def networks(name: str, raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks."""
    try:
        return parse_networks(part for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def pem_file(name: str, raw: str) -> str:
    """The contents of a readable PEM file holding a public key."""
    # Read here, once: a key that cannot be read or parsed stops start-up
    # instead of refusing every token later.
    try:
        with open(raw, encoding="ascii") as file:
            pem = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise ConfigError(f"{name}: cannot read {raw!r} ({reason})") from None
    try:
        tokens.load_public_key(pem)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} holds no PEM public key") from None
    return pem


def switch(name: str, raw: str) -> bool:
    """1/true/yes or 0/false/no."""
    value = raw.strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return value in ("1", "true", "yes")


def webhook_urls(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated http(s) URLs."""
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    if not urls:
        raise ConfigError(f"{name} lists no URL: {raw!r}")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ConfigError(f"{name} holds an invalid URL ({exc}): {url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name} entries must be http:// or https:// URLs, got {url!r}")
    return urls


def webhook_events(name: str, raw: str) -> frozenset[str]:
    """Comma-separated webhook event types, among ``WEBHOOK_EVENTS``."""
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(names - set(WEBHOOK_EVENTS))
    if not names or unknown:
        raise ConfigError(
            f"{name} must list event types among {', '.join(WEBHOOK_EVENTS)}, got {raw!r}"
        )
    return names


def claim(name: str, raw: str) -> str:
    """A token claim name (not blank)."""
    if not raw.strip():
        raise ConfigError(f"{name} names no claim: {raw!r}")
    return raw.strip()
