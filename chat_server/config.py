"""The command line: flags and environment parsed once into a ``Settings``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from chat_server import kinds
from chat_server.core import tokens
from chat_server.core.settings import (
    ConfigError,
    Settings,
)

__all__ = ["Command", "ConfigError", "Settings", "parse_command_line"]

DEFAULT_TOKEN_TTL = 24 * 3600


@dataclass(frozen=True, slots=True)
class Command:
    """What ``python -m chat_server`` was asked to do."""

    name: str  # "serve" or "token"
    settings: Settings
    username: str | None = None
    ttl: int = DEFAULT_TOKEN_TTL
    bot: bool = False  # token --bot: a bot token for the REST API
    rooms: tuple[str, ...] | None = None  # token --bot --room R...: the rooms it may post to
    admin: bool = False


@dataclass(frozen=True, slots=True)
class _Option:
    field: str
    env: str
    flag: str
    parse: Callable[[str, str], Any]
    help: str


OPTIONS: tuple[_Option, ...] = (
    _Option("port", "PORT", "--port", kinds.port, "TCP port (8080)"),
    _Option("host", "HOST", "--host", kinds.text, "bind address (0.0.0.0)"),
    _Option("redis_url", "REDIS_URL", "--redis-url", kinds.redis_url, "Redis linking processes"),
    _Option("api_key", "CHAT_API_KEY", "--api-key", kinds.text, "bearer key of the REST API"),
    _Option("secret", "CHAT_SECRET", "--secret", kinds.text, "HS256 secret: require JWTs"),
    _Option(
        "cors_origins",
        "CHAT_CORS_ORIGINS",
        "--cors-origins",
        kinds.cors_origins,
        "comma-separated allowed browser origins, or *",
    ),
    _Option(
        "history_size",
        "CHAT_HISTORY_SIZE",
        "--history-size",
        kinds.positive_int,
        "messages kept per room and per conversation (100)",
    ),
    _Option("log_level", "LOG_LEVEL", "--log-level", kinds.log_level, "logging level (INFO)"),
    _Option("log_format", "LOG_FORMAT", "--log-format", kinds.log_format, "text or json (text)"),
    _Option(
        "rate_burst",
        "CHAT_RATE_BURST",
        "--rate-burst",
        kinds.positive_int,
        "client events a connection may send at once (20)",
    ),
    _Option(
        "rate_per_second",
        "CHAT_RATE_PER_SECOND",
        "--rate-per-second",
        kinds.positive_float,
        "client events per second a connection may keep sending (5)",
    ),
    _Option(
        "api_rate_per_second",
        "CHAT_API_RATE_PER_SECOND",
        "--api-rate-per-second",
        kinds.positive_float,
        "REST requests per second per key (50)",
    ),
    _Option(
        "max_payload",
        "CHAT_MAX_PAYLOAD",
        "--max-payload",
        kinds.positive_int,
        "bytes in one incoming Engine.IO packet (65536)",
    ),
    _Option(
        "send_queue_bytes",
        "CHAT_SEND_QUEUE_BYTES",
        "--send-queue-bytes",
        kinds.positive_int,
        "outgoing bytes held for one connection (1048576)",
    ),
    _Option(
        "presence_ttl",
        "CHAT_PRESENCE_TTL",
        "--presence-ttl",
        kinds.presence_ttl,
        "seconds a dead process's users stay in members, 1 to 60 (45)",
    ),
    _Option(
        "workers",
        "WEB_CONCURRENCY",
        "--workers",
        kinds.positive_int,
        "processes sharing the port, linked by REDIS_URL, WebSocket only (1)",
    ),
    _Option(
        "ping_interval",
        "CHAT_PING_INTERVAL",
        "--ping-interval",
        kinds.positive_float,
        "seconds between heartbeat pings (25)",
    ),
    _Option(
        "ping_timeout",
        "CHAT_PING_TIMEOUT",
        "--ping-timeout",
        kinds.positive_float,
        "seconds a client has to answer a ping (20)",
    ),
    _Option(
        "connect_timeout",
        "CHAT_CONNECT_TIMEOUT",
        "--connect-timeout",
        kinds.positive_float,
        "seconds a new connection has to send its Socket.IO CONNECT (45)",
    ),
    _Option(
        "redis_pool_size",
        "CHAT_REDIS_POOL_SIZE",
        "--redis-pool-size",
        kinds.positive_int,
        "connections in this process's Redis pool; a burst beyond waits (64)",
    ),
    _Option(
        "redis_pool_wait",
        "CHAT_REDIS_POOL_WAIT",
        "--redis-pool-wait",
        kinds.positive_float,
        "seconds a Redis call may wait for a pooled connection (5)",
    ),
    _Option(
        "speedups_off",
        "CHAT_SPEEDUPS_OFF",
        "--speedups-off",
        kinds.speedups_off,
        "comma-separated speed-ups to switch off: uvloop, orjson, fanout, gc (none)",
    ),
    _Option(
        "bus_routing",
        "CHAT_BUS_ROUTING",
        "--bus-routing",
        kinds.bus_routing,
        "rooms: each process hears only its rooms and users; single: one channel for all (rooms)",
    ),
    _Option(
        "max_connections",
        "CHAT_MAX_CONNECTIONS",
        "--max-connections",
        kinds.positive_int,
        "connections one process holds; past it handshakes get 503 (10000)",
    ),
    _Option(
        "connect_rate_per_ip",
        "CHAT_CONNECT_RATE_PER_IP",
        "--connect-rate-per-ip",
        kinds.positive_float,
        "handshakes per second per client address, burst the same; past it 429 (no limit)",
    ),
    _Option(
        "trusted_proxies",
        "CHAT_TRUSTED_PROXIES",
        "--trusted-proxies",
        kinds.networks,
        "comma-separated addresses or CIDRs whose X-Forwarded-For is believed (none)",
    ),
    _Option(
        "jwt_algorithms",
        "CHAT_JWT_ALGORITHMS",
        "--jwt-algorithms",
        tokens.check_algorithms,
        "comma-separated accepted token algorithms (HS256)",
    ),
    _Option(
        "jwt_public_key",
        "CHAT_JWT_PUBLIC_KEY",
        "--jwt-public-key",
        kinds.pem_file,
        "PEM file with the public key of RS*/ES* tokens",
    ),
    _Option(
        "jwks_url", "CHAT_JWKS_URL", "--jwks-url", kinds.text, "JWKS URL of RS*/ES* token keys"
    ),
    _Option(
        "jwks_insecure",
        "CHAT_JWKS_INSECURE",
        "--jwks-insecure",
        kinds.switch,
        "1 allows an http:// JWKS URL outside loopback (0)",
    ),
    _Option("jwt_issuer", "CHAT_JWT_ISSUER", "--jwt-issuer", kinds.text, "required token iss"),
    _Option(
        "jwt_audience", "CHAT_JWT_AUDIENCE", "--jwt-audience", kinds.text, "required token aud"
    ),
    _Option(
        "jwt_username_claim",
        "CHAT_JWT_USERNAME_CLAIM",
        "--jwt-username-claim",
        kinds.claim,
        "the token claim holding the username (sub)",
    ),
    _Option(
        "webhook_urls",
        "CHAT_WEBHOOK_URL",
        "--webhook-url",
        kinds.webhook_urls,
        "comma-separated http(s) URLs every webhook event is POSTed to (none)",
    ),
    _Option(
        "webhook_secret",
        "CHAT_WEBHOOK_SECRET",
        "--webhook-secret",
        kinds.text,
        "key of the webhooks' HMAC-SHA256 signatures",
    ),
    _Option(
        "webhook_events",
        "CHAT_WEBHOOK_EVENTS",
        "--webhook-events",
        kinds.webhook_events,
        "comma-separated event types sent to webhooks (all)",
    ),
    _Option(
        "webhook_max_age",
        "CHAT_WEBHOOK_MAX_AGE",
        "--webhook-max-age",
        kinds.positive_float,
        "seconds a webhook event is retried for, then dropped (3600)",
    ),
    _Option(
        "webhook_retry_base",
        "CHAT_WEBHOOK_RETRY_BASE",
        "--webhook-retry-base",
        kinds.positive_float,
        "seconds before a webhook's first retry, doubling after (1)",
    ),
    _Option(
        "webhook_retry_cap",
        "CHAT_WEBHOOK_RETRY_CAP",
        "--webhook-retry-cap",
        kinds.positive_float,
        "seconds between two webhook retries at most (60)",
    ),
    _Option(
        "webhook_concurrency",
        "CHAT_WEBHOOK_CONCURRENCY",
        "--webhook-concurrency",
        kinds.positive_int,
        "webhook deliveries in flight per URL and process (8)",
    ),
    _Option(
        "webhook_queue_size",
        "CHAT_WEBHOOK_QUEUE_SIZE",
        "--webhook-queue-size",
        kinds.positive_int,
        "webhook events waiting at most; the Redis stream's length cap (100000)",
    ),
    _Option(
        "webhook_claim_idle",
        "CHAT_WEBHOOK_CLAIM_IDLE",
        "--webhook-claim-idle",
        kinds.positive_float,
        "seconds before another process takes over a silent process's webhook events (30)",
    ),
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, raised, never printed."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _add_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps absent flags out of the namespace, so a flag given before
    # the sub-command is not overwritten by the sub-command's defaults.
    for opt in OPTIONS:
        parser.add_argument(
            opt.flag,
            dest=opt.field,
            default=argparse.SUPPRESS,
            help=f"{opt.help}; env {opt.env}",
        )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m chat_server", description="Real-time chat server.")
    _add_options(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    serve = commands.add_parser("serve", help="run the server (the default)")
    _add_options(serve)
    token = commands.add_parser("token", help="print a JWT for a user")
    _add_options(token)
    token.add_argument("username")
    token.add_argument("--ttl", default=str(DEFAULT_TOKEN_TTL), help="seconds (86400)")
    token.add_argument("--bot", action="store_true", help="a bot token for the REST API")
    token.add_argument(
        "--room",
        action="append",
        dest="rooms",
        help="with --bot: a room the bot may post to (repeatable; default every room)",
    )
    token.add_argument("--admin", action="store_true", help="add the claim admin: true")
    return parser


def parse_command_line(argv: Sequence[str], environ: Mapping[str, str]) -> Command:
    """Parse flags and environment into a ``Command``; flags win over variables.

    Raises ``ConfigError`` with a one-line message on any bad value.
    """
    args = vars(_build_parser().parse_args(list(argv)))
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for opt in OPTIONS:
        if opt.field in args:
            raw, name = args[opt.field], opt.flag
        elif environ.get(opt.env, "") != "":
            # An empty variable counts as unset, as platforms often leave them so.
            raw, name = environ[opt.env], opt.env
        else:
            continue
        values[opt.field] = opt.parse(name, raw)
        names[opt.field] = name
    if "jwks_url" in values:
        values["jwks_url"] = tokens.check_jwks_url(
            names["jwks_url"], values["jwks_url"], values.get("jwks_insecure", False)
        )
    if values.get("workers", 1) > 1 and "redis_url" not in values:
        if "workers" in args:
            raise ConfigError(
                "--workers above 1 needs REDIS_URL (or --redis-url): "
                "the processes share one chat through Redis"
            )
        # Platforms set WEB_CONCURRENCY whatever the app; without Redis the
        # only correct choice is one process (workers.py logs that it chose so).
        values["workers"] = 1
    if "webhook_urls" in values and values.get("webhook_secret") is None:
        raise ConfigError(
            f"{names['webhook_urls']} needs CHAT_WEBHOOK_SECRET (or --webhook-secret)"
            " to sign the webhooks"
        )
    settings = Settings(**values)
    tokens.check_token_settings(settings)
    if args.get("command") == "token":
        username = str(args["username"])
        rooms = args["rooms"]
        if rooms is not None and not args["bot"]:
            raise ConfigError("--room needs --bot: only bot tokens are limited to rooms")
        ttl = kinds.positive_int("--ttl", args["ttl"])
        return Command(
            "token",
            settings,
            username,
            ttl,
            args["bot"],
            None if rooms is None else tuple(rooms),
            admin=bool(args["admin"]),
        )
    return Command("serve", settings)
