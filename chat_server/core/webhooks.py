"""Webhooks: the events a backend hears, their signature, and the rules of their retries.

The chat path only builds an event and hands it to a ``WebhookQueue``
(``Webhooks.notify``); a delivery worker (``transport/webhooks.py``) takes it
from there, so a slow or dead receiver never delays an acknowledgement.
Each event is queued once per URL, as one ``Job``: URLs succeed and fail
independently, and the receiver de-duplicates by the event's ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chat_server.core.metrics import Metrics
from chat_server.core.ports import HookEvent, Job, WebhookQueue
from chat_server.core.settings import Settings

__all__ = [
    "Job",
    "RetryPolicy",
    "WebhookQueue",
    "Webhooks",
    "sign",
]

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Chat-Webhook-Signature`` of one attempt: ``v1=`` + hex HMAC-SHA256."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, until an event is ``max_age`` seconds old.

    The n-th retry waits ``min(cap, base * 2**(n-1))`` seconds, less a random
    part of up to half of it, so that many events failing together do not
    retry together.
    """

    base: float = 1.0
    cap: float = 60.0
    max_age: float = 3600.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 = the first)."""
        full = min(self.cap, self.base * 2.0 ** min(attempt - 1, 62))
        return full * (1 - rand() / 2)

    def gives_up(self, job: Job, delay: float, now_ms: int) -> bool:
        """Whether the next attempt, ``delay`` s away, would come past the event's max age."""
        return (now_ms - job.ts) / 1000 + delay > self.max_age


class Webhooks:
    """What the chat service tells the webhooks: the chosen events, queued per URL.

    :param queue: where the jobs wait; ``None`` when webhooks are off.
    :param urls: every URL an event goes to.
    :param events: the event types sent.
    :param metrics: ``chat_webhook_queued`` and ``chat_webhook_dropped`` count here.
    """

    def __init__(
        self,
        queue: WebhookQueue | None,
        urls: Iterable[str] = (),
        events: Iterable[str] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.queue = queue
        self.urls = tuple(urls)
        self.events = frozenset(events) if queue is not None else frozenset()
        self.metrics = metrics
        #: ``chat_webhook_queued_total`` per type, looked up once (``labels()`` is not free).
        self._queued: dict[str, Any] = {}
        # Event ids need to be unique, not secret (the signature is what a
        # receiver trusts): a seeded PRNG spares a getrandom() call per event.
        self._ids = random.Random()

    @classmethod
    def from_settings(
        cls, settings: Settings, queue: WebhookQueue | None, metrics: Metrics
    ) -> Webhooks:
        """Webhooks as configured; off (nothing wanted) without a URL and a secret."""
        if not settings.webhooks:
            return cls(None)
        return cls(queue, settings.webhook_urls, settings.webhook_events, metrics)

    def wants(self, type: str) -> bool:
        """Whether events of ``type`` are sent (cheap: the chat path asks first)."""
        return type in self.events

    def prepare(self, type: str) -> HookEvent | None:
        """An event of ``type`` for a store to queue with its message, if wanted.

        The caller hands it to ``History.append`` and then to ``queued``.
        """
        if self.queue is None or type not in self.events:
            return None
        return HookEvent(type, self._new_id(), self.urls)

    def queued(self, hook: HookEvent) -> None:
        """Count what a store queued of ``hook``; what it could not is dropped, and said."""
        missing = len(hook.urls) - hook.queued
        if missing:
            log.warning(
                "webhook event %s (%s) not queued for %d URL(s)", hook.event_id, hook.type, missing
            )
            self._count_dropped("unavailable", missing)
        if hook.queued:
            self._count_queued(hook.type, hook.queued)

    async def notify(self, type: str, data: dict[str, Any]) -> None:
        """Queue event ``type`` with ``data`` for every URL, if that type is wanted.

        Never raises: the chat's own work is done by now, and a queue that
        cannot be reached must not turn it into an error the sender would retry.
        """
        if self.queue is None or type not in self.events:
            return
        ts = int(time.time() * 1000)
        event_id = self._new_id()
        body = json.dumps(
            {"id": event_id, "type": type, "ts": ts, "data": data},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        jobs = [Job(url, event_id, type, ts, body) for url in self.urls]
        try:
            taken = await self.queue.put(jobs)
        except Exception as exc:
            taken = 0
            log.warning("webhook event %s (%s) not queued: %s", event_id, type, exc)
            self._count_dropped("unavailable", len(jobs))
        else:
            if taken < len(jobs):
                log.warning("webhook queue full: event %s (%s) dropped", event_id, type)
                self._count_dropped("queue_full", len(jobs) - taken)
        if taken:
            self._count_queued(type, taken)

    def _new_id(self) -> str:
        return f"{self._ids.getrandbits(128):032x}"

    def _count_queued(self, type: str, n: int) -> None:
        if self.metrics is not None:
            counter = self._queued.get(type)
            if counter is None:
                counter = self._queued[type] = self.metrics.webhook_queued.labels(type)
            counter.inc(n)

    def _count_dropped(self, reason: str, n: int) -> None:
        if self.metrics is not None:
            self.metrics.webhook_dropped.labels(reason).inc(n)
