"""Prometheus metrics of one app, kept in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "KNOWN_EVENTS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Event names that get a label of their own; any other name counts as
#: ``other``, so a client inventing names cannot grow the label set.
KNOWN_EVENTS = frozenset(
    {
        "join",
        "leave",
        "message",
        "private_message",
        "typing",
        "history",
        "conversations",
        "connect",
    }
)
REDIS_STATES = ("ok", "down", "disabled")


class Metrics:
    """Every metric the server exports, registered in ``registry``.

    :param registry: where to register; a fresh ``CollectorRegistry`` unless
        given. Never the process-global default registry, so that many apps
        (one per test) can live in one process without name clashes.

    Label values are chosen by the server (event names from ``KNOWN_EVENTS``,
    error codes, HTTP statuses), never copied from client input.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "chat_connections", "Socket.IO connections open on this process.", registry=r
        )
        self.users = Gauge(
            "chat_users", "Distinct users with a connection on this process.", registry=r
        )
        self.rooms = Gauge(
            "chat_rooms", "Rooms with at least one connection on this process.", registry=r
        )
        self.events_received = Counter(
            "chat_events_received",
            "Client events received, by event name (unknown names count as other).",
            ["event"],
            registry=r,
        )
        self._events_by_label: dict[str, Any] = {}
        self.messages_delivered = Counter(
            "chat_messages_delivered",
            "Chat packets written to connections of this process, by kind.",
            ["kind"],
            registry=r,
        )
        self.rejected_inputs = Counter(
            "chat_rejected_inputs",
            "Inputs refused, by reason (the error code, or the transport rule broken).",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "chat_rate_limited",
            "Requests refused by a rate limit, by scope (socket or api).",
            ["scope"],
            registry=r,
        )
        self.disconnects = Counter(
            "chat_forced_disconnects",
            "Connections closed by the server, by reason.",
            ["reason"],
            registry=r,
        )
        self.redis_state = Enum(
            "chat_redis",
            "State of the link to Redis.",
            states=list(REDIS_STATES),
            registry=r,
        )
        self.redis_publish_failures = Counter(
            "chat_redis_publish_failures",
            "Attempts to publish to Redis that failed (each retry counts).",
            registry=r,
        )
        self.redis_publish_dropped = Counter(
            "chat_redis_publish_dropped",
            "Fan-out packets given up on after Redis stayed unreachable.",
            registry=r,
        )
        self.redis_publish_pending = Gauge(
            "chat_redis_publish_pending",
            "Fan-out packets waiting for Redis to come back.",
            registry=r,
        )
        self.redis_resubscribes = Counter(
            "chat_redis_resubscribes",
            "Times the pub/sub subscription was lost and made again.",
            registry=r,
        )
        self.redis_gap_filled = Counter(
            "chat_redis_gap_filled_messages",
            "Messages delivered from history after a lost subscription came back.",
            registry=r,
        )
        self.bus_messages_received = Counter(
            "chat_bus_messages_received",
            "Messages this process's pub/sub subscription brought (what it paid to hear).",
            registry=r,
        )
        self.bus_channels = Gauge(
            "chat_bus_channels",
            "Pub/sub channels this process is subscribed to (control, rooms and users).",
            registry=r,
        )
        self.redis_pool_wait = Histogram(
            "chat_redis_pool_wait_seconds",
            "Time a Redis call waited for a free connection of the pool.",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.http_requests = Counter(
            "chat_http_requests",
            "REST API requests answered, by status code.",
            ["status"],
            registry=r,
        )
        self.handshakes_refused = Counter(
            "chat_handshakes_refused",
            "Engine.IO handshakes refused before a session was made, by reason.",
            ["reason"],
            registry=r,
        )
        self.webhook_queued = Counter(
            "chat_webhook_queued",
            "Webhook deliveries queued (one per event and URL), by event type.",
            ["type"],
            registry=r,
        )
        self.webhook_delivered = Counter(
            "chat_webhook_delivered",
            "Webhook deliveries a receiver answered with 2xx, by this process.",
            registry=r,
        )
        self.webhook_retried = Counter(
            "chat_webhook_retried",
            "Webhook attempts that failed and were scheduled again.",
            registry=r,
        )
        self.webhook_dropped = Counter(
            "chat_webhook_dropped",
            "Webhook deliveries given up on, by reason (max_age, queue_full, unavailable).",
            ["reason"],
            registry=r,
        )
        self.webhook_latency = Histogram(
            "chat_webhook_delivery_seconds",
            "Time from an event to the 2xx answer of its webhook, retries included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 3600),
            registry=r,
        )
        self.webhook_held = Gauge(
            "chat_webhook_held",
            "Webhook deliveries this process holds (in flight or waiting to retry).",
            registry=r,
        )
        self.redis_state.state("disabled")

    def event_received(self, name: object) -> None:
        """Count one client event under a bounded label."""
        label = name if isinstance(name, str) and name in KNOWN_EVENTS else "other"
        # labels() looks the child up under a lock every time; the labels are
        # bounded (KNOWN_EVENTS), so each child is looked up once.
        child = self._events_by_label.get(label)
        if child is None:
            child = self._events_by_label[label] = self.events_received.labels(label)
        child.inc()

    def set_redis_state(self, state: str) -> None:
        """Record the Redis link as ``ok``, ``down`` or ``disabled``."""
        self.redis_state.state(state)

    def track(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Have ``gauge`` read its value from ``read`` at every scrape."""
        gauge.set_function(read)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample, or ``None`` if absent (for tests and logs)."""
        value = self.registry.get_sample_value(name, labels or {})
        return None if value is None else float(value)

    def samples(self) -> Iterable[tuple[str, dict[str, str], float]]:
        """Every sample in the registry as ``(name, labels, value)``."""
        for family in self.registry.collect():
            for s in family.samples:
                yield s.name, dict(s.labels), float(s.value)
