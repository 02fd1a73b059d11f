#!/usr/bin/env python3
"""A chat bot that posts through the REST API, using only the standard library.

It sends one message per run, to a room, to a user or to everyone:

    export CHAT_URL=http://localhost:8080 CHAT_API_KEY=change-me
    python examples/bot.py --room lobby "Build 1234 passed"
    python examples/bot.py --to alice "Your report is ready"
    python examples/bot.py --broadcast "Maintenance in 10 minutes"
    uptime | python examples/bot.py --room ops --from monitor -

On success it prints the server's JSON answer (``{"ok": true, "id": ..., "ts": ...}``)
and exits 0. On any failure it prints one line saying what went wrong to stderr
(with the server's JSON error, when there is one) and exits 1; bad command-line
usage exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_URL = "http://localhost:8080"
TIMEOUT_SECONDS = 10.0


class BotError(Exception):
    """A failure worth one line on stderr and exit status 1."""


def build_body(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """The JSON body of ``POST /api/emit`` for the chosen target."""
    body: dict[str, Any] = {"text": text}
    if args.room is not None:
        body["room"] = args.room
    elif args.to is not None:
        body["to"] = args.to
    else:
        body["broadcast"] = True
    if args.sender is not None:
        body["from"] = args.sender
    return body


def describe_error(status: int, payload: bytes, retry_after: str | None) -> str:
    """One line explaining an HTTP error answer from the server."""
    try:
        answer = json.loads(payload)
        error = answer["error"]
        detail = f"{error['code']}: {error['message']}"
        if error.get("fields"):
            detail += f" {json.dumps(error['fields'], ensure_ascii=False)}"
    except (ValueError, KeyError, TypeError):
        # Not our JSON error shape (a proxy's HTML page, for instance).
        detail = payload.decode("utf-8", "replace").strip()[:200] or "(empty body)"
    hint = ""
    if status == 401:
        hint = " (check CHAT_API_KEY or --key)"
    elif status == 429 and retry_after:
        hint = f" (retry after {retry_after} s)"
    return f"HTTP {status}: {detail}{hint}"


def post_emit(base_url: str, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``{base_url}/api/emit`` and return the decoded answer."""
    url = base_url.rstrip("/") + "/api/emit"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After")
        raise BotError(describe_error(exc.code, exc.read(), retry_after)) from None
    except urllib.error.URLError as exc:
        raise BotError(f"cannot reach {url}: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:
        raise BotError(f"cannot reach {url}: {exc}") from None
    try:
        answer = json.loads(payload)
    except ValueError:
        raise BotError(f"{url} answered something that is not JSON") from None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        raise BotError(f"unexpected answer from {url}: {payload.decode('utf-8', 'replace')}")
    return answer


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bot.py",
        description="Post one chat message through POST /api/emit.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--room", help="post to every connection in this room")
    target.add_argument("--to", metavar="USER", help="send a private message to this user")
    target.add_argument(
        "--broadcast", action="store_true", help="send an announcement to everyone"
    )
    parser.add_argument(
        "--from", dest="sender", metavar="NAME", help="sender name shown to users (bot)"
    )
    parser.add_argument(
        "--url",
        default=environ.get("CHAT_URL") or DEFAULT_URL,
        help=f"server base URL (env CHAT_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--key",
        default=environ.get("CHAT_API_KEY") or None,
        help="bearer key of the REST API (env CHAT_API_KEY)",
    )
    parser.add_argument("text", help="the message; - reads it from standard input")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("no API key: set CHAT_API_KEY or pass --key")
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(
        sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
    )
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        answer = post_emit(args.url, args.key, build_body(args, text))
    except BotError as exc:
        print(f"bot.py: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
