#!/usr/bin/env python3
"""A webhook receiver for the chat server: verifies each POST, acts once per event id.

It shows the two things a backend usually does with the chat's webhooks:

- a bot that answers ``!help`` in a room, by calling ``POST /api/emit`` with
  its bot token (``--answer-help``);
- a notifier that would send a push notification for a private message whose
  recipient is offline (``--notify-offline``; this one only logs
  ``would push to alice: ...``).

Run it beside a server that posts to it::

    export CHAT_WEBHOOK_SECRET=change-me CHAT_SECRET=another-secret
    python -m chat_server --webhook-url http://127.0.0.1:9000/hook &
    export CHAT_URL=http://127.0.0.1:8080
    export CHAT_BOT_TOKEN=$(python -m chat_server token helper --bot)
    python examples/webhook_receiver.py --port 9000

Delivery is at least once: the same event can arrive twice (a retry after a
lost answer, a process killed mid-delivery). The receiver remembers the ids
it has acted on and answers a repeat with 200 without acting again; its bot
replies also carry the event id as ``Idempotency-Key``, so even a second
receiver process would not post the answer twice. A POST whose signature
does not verify, or whose timestamp is more than 5 minutes off, gets 401.
Only the standard library and aiohttp are needed.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("webhook_receiver")

#: Seconds a signature's timestamp may be off from this machine's clock.
TOLERANCE_SECONDS = 300
#: Event ids remembered for de-duplication (the oldest are forgotten first).
REMEMBERED_IDS = 10_000
HELP_TEXT = "Commands: !help (this text). Messages here reach everyone in the room."


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    """Whether ``signature`` is ``v1=`` + HMAC-SHA256 of ``"{timestamp}.{body}"``, and fresh."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return age <= TOLERANCE_SECONDS and hmac.compare_digest(
        signature, "v1=" + expected.hexdigest()
    )


class Seen:
    """The last ``size`` event ids acted on."""

    def __init__(self, size: int = REMEMBERED_IDS) -> None:
        self.size = size
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


class Receiver:
    """The webhook endpoint: verify, de-duplicate, then hand the event to its handler."""

    def __init__(
        self,
        secret: str,
        *,
        chat_url: str | None,
        bot_token: str | None,
        answer_help: bool,
        notify_offline: bool,
    ) -> None:
        self.secret = secret
        self.chat_url = chat_url.rstrip("/") if chat_url else None
        self.bot_token = bot_token
        self.answer_help = answer_help
        self.notify_offline = notify_offline
        self.seen = Seen()
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            self.secret,
            request.headers.get("Chat-Webhook-Timestamp", ""),
            body,
            request.headers.get("Chat-Webhook-Signature", ""),
            time.time(),
        ):
            log.warning("refused a POST whose signature does not verify")
            return web.json_response({"ok": False}, status=401)
        event = json.loads(body)
        if event["id"] in self.seen:
            log.info("event %s seen before: not acting again", event["id"])
            return web.json_response({"ok": True, "duplicate": True})
        try:
            await self.act(event)
        except aiohttp.ClientError as exc:
            # Not remembered: the server retries, and we act then.
            log.warning("event %s: could not act (%s); asking for a retry", event["id"], exc)
            return web.json_response({"ok": False}, status=502)
        self.seen.add(event["id"])
        return web.json_response({"ok": True})

    async def act(self, event: dict[str, Any]) -> None:
        """What this receiver does with one event, seen for the first time."""
        data = event["data"]
        # A bot's own messages come back as events too: never answer those.
        wants_help = data.get("text", "").strip() == "!help" and not data.get("bot")
        if event["type"] == "message" and self.answer_help and wants_help:
            await self.reply(event["id"], data["room"], HELP_TEXT)
        offline = data.get("recipient_online") is False
        if event["type"] == "private_message" and self.notify_offline and offline:
            log.info("would push to %s: %s: %s", data["to"], data["from"], data["text"])

    async def reply(self, event_id: str, room: str, text: str) -> None:
        """Post ``text`` to ``room`` as the bot; the event id makes it idempotent."""
        if self.session is None or self.chat_url is None or self.bot_token is None:
            log.warning("!help in %s, but CHAT_URL or CHAT_BOT_TOKEN is not set", room)
            return
        async with self.session.post(
            f"{self.chat_url}/api/emit",
            json={"room": room, "text": text},
            headers={"Authorization": f"Bearer {self.bot_token}", "Idempotency-Key": event_id},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            response.raise_for_status()
        log.info("answered !help in %s", room)

    async def client_ctx(self, app: web.Application) -> Any:
        self.session = aiohttp.ClientSession()
        yield
        await self.session.close()


def build_app(receiver: Receiver, path: str = "/hook") -> web.Application:
    """The receiver's aiohttp application."""
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    app.cleanup_ctx.append(receiver.client_ctx)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--answer-help", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--notify-offline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    secret = os.environ.get("CHAT_WEBHOOK_SECRET")
    if not secret:
        print("CHAT_WEBHOOK_SECRET is not set: nothing could be verified", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
    receiver = Receiver(
        secret,
        chat_url=os.environ.get("CHAT_URL"),
        bot_token=os.environ.get("CHAT_BOT_TOKEN"),
        answer_help=args.answer_help,
        notify_offline=args.notify_offline,
    )
    web.run_app(build_app(receiver), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
