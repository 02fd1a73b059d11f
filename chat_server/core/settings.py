"""Settings: the typed, validated configuration of one server process."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "BUS_ROUTINGS",
    "REDIS_SCHEMES",
    "SPEEDUPS",
    "WEBHOOK_EVENTS",
    "ConfigError",
    "RedisTarget",
    "Settings",
]

#: Speed-ups that are on unless ``Settings.speedups_off`` names them: uvloop's
#: event loop, orjson's JSON, the direct broadcast path (transport/fanout.py),
#: and the garbage collector's tuning (transport/speedups.py).
SPEEDUPS = ("uvloop", "orjson", "fanout", "gc")
#: The values of ``Settings.bus_routing``.
BUS_ROUTINGS = ("rooms", "single")

#: Event types a webhook can carry (``CHAT_WEBHOOK_EVENTS`` picks among them).
WEBHOOK_EVENTS = ("message", "private_message", "message_updated", "presence", "room_updated")


class ConfigError(ValueError):
    """A configuration value that the server cannot start with."""


#: URL schemes of ``REDIS_URL``: one Redis (``redis``, ``rediss`` with TLS,
#: ``unix``) or a Redis Cluster (``redis+cluster``, ``rediss+cluster``).
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What ``REDIS_URL`` names: one Redis or a cluster, with or without TLS.

    :param url: the URL as redis-py takes it (``redis://`` or ``rediss://``
        for a cluster node: redis-py's cluster client takes plain schemes).
    :param cluster: a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``).
    :param tls: the connection is TLS (``rediss``).
    :param db: the database number (always 0 on a cluster).
    """

    url: str
    cluster: bool
    tls: bool
    db: int

    @classmethod
    def parse(cls, raw: str, name: str = "REDIS_URL") -> RedisTarget:
        """Read a Redis URL; raises ``ConfigError`` naming ``name`` when it is unusable."""
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ConfigError(f"{name} is not a valid URL ({exc}): {raw!r}") from None
        scheme = parts.scheme
        if scheme not in REDIS_SCHEMES:
            raise ConfigError(
                f"{name} must start with redis://, rediss://, unix://, redis+cluster:// "
                f"or rediss+cluster://, got {raw!r}"
            )
        if scheme != "unix" and not parts.hostname:
            raise ConfigError(f"{name} has no host name: {raw!r}")
        if scheme == "unix" and not parts.path:
            raise ConfigError(f"{name} has no socket path: {raw!r}")
        if scheme == "unix":
            db = parse_qs(parts.query).get("db", ["0"])[0]
        else:
            db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ConfigError(f"{name} database must be a number, got {db!r}")
        cluster = scheme.endswith("+cluster")
        if cluster and int(db) != 0:
            raise ConfigError(f"{name}: a Redis Cluster has database 0 only, got {db!r}")
        plain = scheme.removesuffix("+cluster")
        url = plain + raw[len(scheme) :] if cluster else raw
        return cls(url, cluster, plain == "rediss", int(db))


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed, validated configuration of one server process.

    The defaults are those of the public contract; tests build their own
    ``Settings(...)`` and hand it to ``create_app``.
    """

    host: str = "0.0.0.0"
    port: int = 8080
    #: Redis that links processes; ``None`` keeps everything in this process.
    #: A ``redis+cluster://`` URL names a Redis Cluster (``redis``).
    redis_url: str | None = None
    #: Bearer key of the REST API; ``None`` refuses the API with 503.
    api_key: str | None = None
    #: HS256 secret; ``None`` is guest mode, otherwise a JWT is required.
    secret: str | None = None
    #: Allowed browser origins: ``None`` same origin only, ``("*",)`` any.
    cors_origins: tuple[str, ...] | None = None
    history_size: int = 100
    log_level: str = "INFO"
    log_format: str = "text"
    rate_burst: int = 20
    rate_per_second: float = 5.0
    api_rate_per_second: float = 50.0
    max_payload: int = 65536
    send_queue_bytes: int = 1048576
    #: Seconds a process's presence entries outlive its last heartbeat.
    presence_ttl: float = 45.0
    #: Processes serving ``port`` together, linked by Redis (``--workers``).
    workers: int = 1
    #: Seconds between the server's heartbeat pings (Engine.IO ``pingInterval``).
    ping_interval: float = 25.0
    #: Seconds a client has to answer a ping before it is closed (``pingTimeout``).
    ping_timeout: float = 20.0
    #: Seconds a new connection has to send its Socket.IO CONNECT.
    connect_timeout: float = 45.0
    #: Connections of this process's Redis pool; a burst beyond waits for one.
    redis_pool_size: int = 64
    #: Seconds a Redis call waits for a free connection before it fails.
    redis_pool_wait: float = 5.0
    #: Speed-ups switched off (names from ``SPEEDUPS``), so that the benchmark
    #: can measure what each buys; each falls back to the same behaviour, slower.
    speedups_off: frozenset[str] = field(default_factory=frozenset)
    #: How the bus between processes is routed: ``rooms`` (a channel per room
    #: and per user, each process listening only to its own) or ``single``
    #: (one channel every process hears in full; kept for comparison).
    bus_routing: str = "rooms"
    #: Engine.IO connections this process holds; past it, handshakes get 503.
    max_connections: int = 10000
    #: Handshakes per second per client address (burst of the same size);
    #: ``None`` is no limit.
    connect_rate_per_ip: float | None = None
    #: Peers whose ``X-Forwarded-For`` names the client address.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: Token algorithms accepted in token mode.
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    #: PEM text of the public key of asymmetric tokens (read from a file at start-up).
    jwt_public_key: str | None = None
    #: JWKS URL the asymmetric tokens' keys are fetched from.
    jwks_url: str | None = None
    #: Allow a plain ``http://`` JWKS URL outside loopback.
    jwks_insecure: bool = False
    #: When set, tokens must carry this ``iss``.
    jwt_issuer: str | None = None
    #: When set, tokens must carry this ``aud``.
    jwt_audience: str | None = None
    #: The claim holding the username.
    jwt_username_claim: str = "sub"
    #: URLs every webhook event is POSTed to; empty is no webhooks.
    webhook_urls: tuple[str, ...] = ()
    #: HMAC-SHA256 key of the webhook signatures (required with ``webhook_urls``).
    webhook_secret: str | None = None
    #: Event types sent to the webhooks (``WEBHOOK_EVENTS`` names).
    webhook_events: frozenset[str] = frozenset(WEBHOOK_EVENTS)
    #: Seconds after an event happened past which it is no longer retried.
    webhook_max_age: float = 3600.0
    #: Seconds before a failed delivery's first retry; each further one doubles it.
    webhook_retry_base: float = 1.0
    #: Seconds the delay between two retries grows to at most.
    webhook_retry_cap: float = 60.0
    #: Deliveries in flight at once to one URL, per process.
    webhook_concurrency: int = 8
    #: Events waiting for delivery at most (the Redis stream's length cap).
    webhook_queue_size: int = 100_000
    #: Seconds an event taken by a process that stopped answering stays its
    #: own before another process claims it (Redis mode).
    webhook_claim_idle: float = 30.0

    @property
    def token_mode(self) -> bool:
        """Whether connections must present a token (a secret or a public key is set)."""
        return any(k is not None for k in (self.secret, self.jwt_public_key, self.jwks_url))

    @property
    def webhooks(self) -> bool:
        """Whether events are POSTed to webhooks (a URL and a secret are set)."""
        return bool(self.webhook_urls) and self.webhook_secret is not None

    @property
    def redis(self) -> RedisTarget | None:
        """``redis_url`` read (``config.py`` checked it), or None without Redis."""
        return None if self.redis_url is None else RedisTarget.parse(self.redis_url)

    def speedup(self, name: str) -> bool:
        """Whether speed-up ``name`` (one of ``SPEEDUPS``) is on."""
        return name not in self.speedups_off
