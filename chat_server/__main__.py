"""Command line: ``python -m chat_server`` serves; ``... token NAME`` prints a JWT."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from chat_server import lifecycle, logs, workers
from chat_server.app import create_app
from chat_server.config import Command, ConfigError, Settings, parse_command_line
from chat_server.core.auth import issue_token, valid_username
from chat_server.edges.schemas import ROOM_PATTERN
from chat_server.stores.redis import check_server, redacted
from chat_server.transport import speedups

log = logging.getLogger("chat_server")


def configure_logging(settings: Settings) -> None:
    """Send logs to stderr at the configured level, as text or JSON lines."""
    logs.configure_logging(settings.log_level, settings.log_format)


def print_token(command: Command) -> int:
    """Print one line: a token for the command's user, signed with the secret."""
    secret, username = command.settings.secret, command.username
    if secret is None:
        raise ConfigError("signing a token needs CHAT_SECRET or --secret")
    if not valid_username(username):
        raise ConfigError(f"not a valid username: {username!r}")
    assert username is not None
    for room in command.rooms or ():
        if not ROOM_PATTERN.match(room):
            raise ConfigError(f"not a valid room name: {room!r}")
    print(
        issue_token(
            secret,
            username,
            command.ttl,
            bot=command.bot,
            rooms=command.rooms,
            admin=command.admin,
        )
    )
    return 0


def serve(settings: Settings, reuse_port: bool = False) -> int:
    """Run the server until it is stopped (``reuse_port``: one of ``--workers``)."""
    configure_logging(settings)
    mode = "Redis " + redacted(settings.redis_url) if settings.redis_url else "single process"
    log.info("chat server on %s:%d (%s)", settings.host, settings.port, mode)
    app = create_app(settings)
    app.on_startup.append(lifecycle.drain_on_sigterm)
    speedups.tune_gc(settings.speedup("gc"))
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
        loop=speedups.new_event_loop(settings.speedup("uvloop")),
        reuse_port=reuse_port or None,
    )
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the process's exit status."""
    try:
        command = parse_command_line(
            sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
        )
        if command.name == "token":
            return print_token(command)
        target = command.settings.redis
        if target is not None:
            # Before any worker starts: a URL of the wrong kind is one clear
            # line, not a server that fails on every command.
            refusal = asyncio.run(check_server(target))
            if refusal is not None:
                raise ConfigError(refusal)
        return workers.serve(command.settings, serve, os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"chat_server: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Typically the port is taken or the address cannot be bound.
        print(f"chat_server: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
