"""``HookClient``: a small HTTP/1.1 client for webhook POSTs, over kept-alive asyncio streams.

A webhook POST needs little of HTTP: one request with a ``Content-Length``
body, the status of the answer, and a connection fit to use again. aiohttp's
client does much more, and costs about eight times the CPU per request
(``bench/README.md``, "Webhooks"); this one does only that:

- ``http`` and ``https`` (certificates checked against ``ssl_context``,
  by default ``ssl.create_default_context()``: system CAs, SNI, host name);
- answers with ``Content-Length``, ``Transfer-Encoding: chunked`` or a body
  that ends with the connection; ``1xx`` interim answers skipped;
- bodies read and discarded, at most ``max_body`` bytes: past it the
  connection is closed rather than read to the end;
- a connection goes back to its pool only after a complete answer, without
  ``Connection: close``, over HTTP/1.1; anything else (an error, a time-out,
  a cancellation, a half-read answer) closes it;
- no redirects, no cookies, no proxies: a webhook URL is called as written;
- several requests to one URL can go pipelined (``post_many``): written in
  one go on one connection, their answers read in order, so a busy chat's
  webhooks cost one send and one receive per batch rather than per event.

A kept-alive connection the receiver closed while idle is met by an empty
answer; the request is then sent again once on a new connection (harmless:
receivers de-duplicate by event ``id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["HookClient", "HookError"]

#: Bytes of an answer's body read at most; past it the connection is dropped.
MAX_BODY = 64 * 1024
#: Bytes of an answer's status line and headers, together, at most.
MAX_HEAD = 16 * 1024
_NO_BODY = frozenset({204, 304})
#: Seconds between two looks for a request past its time-out, which
#: therefore fires up to this much late.
TICK = 0.1


class HookError(Exception):
    """A webhook POST that got no usable answer: refused, cut, malformed or too slow."""


@dataclass(frozen=True, slots=True)
class _Target:
    """What a URL says about where and how to connect, parsed once."""

    host: str
    port: int
    tls: bool
    #: The request's first line and ``Host`` header, ready to send.
    head: bytes


@dataclass(slots=True)
class _Batch:
    """Requests for one connection, and the answers read so far (in order)."""

    requests: list[bytes]
    answers: list[int | HookError] = field(default_factory=list)

    def unanswered(self, most: int) -> tuple[bytes, int]:
        """The next ``most`` requests without an answer, written together, and their count."""
        start = len(self.answers)
        chosen = self.requests[start : start + most]
        return b"".join(chosen), len(chosen)


@dataclass(slots=True)
class _Pool:
    """Idle kept-alive connections to one origin."""

    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)


def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HookError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        shown += f":{parts.port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    head = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\n".encode("ascii")
    return _Target(host, port, tls, head)


class HookClient:
    """POSTs bodies to webhook URLs and tells their answer's status.

    :param per_url: idle connections kept per origin at most: the worker's
        per-URL cap on requests in flight, so every request it allows can
        find a connection without opening one.
    :param timeout: seconds one ``post`` may take in all: connecting, TLS,
        writing the request and reading the whole answer (5; it fires up
        to ``TICK`` late).
    :param ssl_context: what ``https`` certificates are checked against
        (``ssl.create_default_context()``).
    :param max_body: bytes of an answer's body read at most (``MAX_BODY``).
    """

    def __init__(
        self,
        *,
        per_url: int = 8,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.per_url = per_url
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.max_body = max_body
        self._targets: dict[str, _Target] = {}
        self._pools: dict[tuple[str, int, bool], _Pool] = {}
        self._closed = False
        # Time-outs: one watchdog for all requests in flight rather than an
        # ``asyncio.timeout`` each, whose timer handle cost more CPU than the
        # request's own parsing.
        self._deadlines: dict[asyncio.StreamWriter, float] = {}
        self._expired: set[asyncio.StreamWriter] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` with ``headers`` to ``url``; the answer's status code.

        Raises ``HookError`` when no complete answer came within ``timeout``.
        ``headers`` must not hold CR or LF (ours are hex, digits and a
        content type); ``Host`` and ``Content-Length`` are added here.
        """
        status = (await self.post_many(url, [(body, headers)]))[0]
        if isinstance(status, HookError):
            raise status
        return status

    async def post_many(
        self, url: str, requests: Sequence[tuple[bytes, Mapping[str, str]]]
    ) -> list[int | HookError]:
        """POST each ``(body, headers)`` to ``url``, pipelined on one connection, in order.

        One status code or ``HookError`` per request, in order, all within
        ``timeout``: an answer that closes the connection, or an error
        halfway, leaves the requests after it with a ``HookError`` (the
        receiver may or may not have seen them; webhooks are at least once).
        """
        if self._closed:
            return [HookError("the webhook client is closed")] * len(requests)
        target = self._targets.get(url)
        if target is None:
            try:
                target = self._targets[url] = _parse(url)
            except HookError as exc:
                return [exc] * len(requests)
        batch = _Batch([_request(target, body, headers) for body, headers in requests])
        deadline = asyncio.get_running_loop().time() + self.timeout
        error: HookError | None = None
        try:
            await self._exchange(target, batch, deadline)
        except (TimeoutError, _Expired):
            error = HookError(f"no answer within {self.timeout:g} s")
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
            error = HookError(str(exc) or type(exc).__name__)
        except HookError as exc:
            error = exc
        unanswered = len(requests) - len(batch.answers)
        if unanswered:
            error = error or HookError("the connection closed before this answer")
            batch.answers.extend([error] * unanswered)
        return batch.answers

    async def aclose(self) -> None:
        """Close every idle connection; later ``post`` calls fail."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            for _, writer in pool.idle:
                writer.close()
            for _, writer in pool.idle:
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()

    async def _exchange(self, target: _Target, batch: _Batch, deadline: float) -> None:
        """Send ``batch``, appending each answer's status to its ``answers``.

        Goes on over further connections while the receiver closes one after
        an answer, so that a receiver that never keeps a connection alive
        still gets every request of the batch, one per connection.
        """
        key = (target.host, target.port, target.tls)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
        while len(batch.answers) < len(batch.requests):
            reader, writer, fresh = await self._connection(pool, target, deadline)
            try:
                # A new connection carries one request until its answer shows
                # it can go on (HTTP/1.1, no ``close``): a pipeline sent to a
                # receiver that closes after each answer would be cut short.
                reusable = await self._watched(
                    reader, writer, batch, deadline, 1 if fresh else None
                )
                if fresh and reusable and len(batch.answers) < len(batch.requests):
                    reusable = await self._watched(reader, writer, batch, deadline)
            except _Stale:
                if fresh:
                    raise HookError("the connection closed without an answer") from None
                continue  # closed by the receiver while idle: once more, on another
            self._put_back(pool, reader, writer, reusable)

    async def _connection(
        self, pool: _Pool, target: _Target, deadline: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """An idle kept-alive connection of ``pool``, or a new one (then True)."""
        while pool.idle:
            reader, writer = pool.idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            return reader, writer, False
        async with asyncio.timeout_at(deadline):  # connecting is rare: kept alive after
            reader, writer = await asyncio.open_connection(
                target.host,
                target.port,
                ssl=self._ssl() if target.tls else None,
                server_hostname=target.host if target.tls else None,
                limit=MAX_HEAD,
            )
        return reader, writer, True

    async def _watched(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        batch: _Batch,
        deadline: float,
        most: int | None = None,
    ) -> bool:
        """``_roundtrips`` under the watchdog; on any error the connection is closed."""
        self._deadlines[writer] = deadline
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch())
        try:
            return await self._roundtrips(reader, writer, batch, most)
        except Exception:
            writer.close()
            if writer in self._expired:
                raise _Expired from None
            raise
        except BaseException:
            writer.close()
            raise
        finally:
            del self._deadlines[writer]
            self._expired.discard(writer)

    async def _watch(self) -> None:
        """Cut the connection of every request past its deadline, while any is in flight."""
        loop = asyncio.get_running_loop()
        try:
            while self._deadlines:
                await asyncio.sleep(TICK)
                now = loop.time()
                for writer, deadline in list(self._deadlines.items()):
                    if now >= deadline and writer not in self._expired:
                        self._expired.add(writer)
                        writer.transport.abort()
        finally:
            self._watchdog = None

    def _ssl(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    def _put_back(
        self,
        pool: _Pool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reusable: bool,
    ) -> None:
        if reusable and not self._closed and len(pool.idle) < self.per_url:
            pool.idle.append((reader, writer))
        else:
            writer.close()

    async def _roundtrips(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        batch: _Batch,
        most: int | None,
    ) -> bool:
        """Send ``batch``'s unanswered requests (``most`` of them) and read their answers in order.

        Each status is appended to the batch's ``answers`` as it is read; returns whether
        the connection may be used again. An empty answer to the first
        request of a kept-alive connection is ``_Stale``; an answer that
        does not let the connection go on ends the reading there.
        """
        payload, count = batch.unanswered(len(batch.requests) if most is None else most)
        writer.write(payload)
        await writer.drain()
        for n in range(count):
            try:
                status, reusable = await self._answer(reader)
            except asyncio.IncompleteReadError as exc:
                if n == 0 and not exc.partial:
                    raise _Stale from None
                raise
            batch.answers.append(status)
            if not reusable:
                return False
        return True

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bool]:
        """Read one answer: its status, and whether the connection may go on."""
        head = await reader.readuntil(b"\r\n\r\n")
        status, version, fields = _parse_head(head)
        while 100 <= status < 200:  # interim answers (100 Continue, 103): the real one follows
            head = await reader.readuntil(b"\r\n\r\n")
            status, version, fields = _parse_head(head)
        reusable = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
        if status in _NO_BODY:
            return status, reusable
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, reusable and await self._skip_chunked(reader)
        length = fields.get("content-length")
        if length is not None:
            size = int(length)
            if size < 0:
                raise ValueError(f"bad Content-Length {length!r}")
            if size > self.max_body:
                return status, False
            await reader.readexactly(size)
            return status, reusable
        # Neither length nor chunks: the body ends with the connection.
        await self._skip_to_eof(reader)
        return status, False

    async def _skip_chunked(self, reader: asyncio.StreamReader) -> bool:
        """Read a chunked body and its trailers; whether it ended within ``max_body``."""
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size < 0:
                raise ValueError("bad chunk size")
            if size == 0:
                break
            total += size
            if total > self.max_body:
                return False
            await reader.readexactly(size + 2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the empty line
            pass
        return True

    async def _skip_to_eof(self, reader: asyncio.StreamReader) -> None:
        total = 0
        while total <= self.max_body:
            chunk = await reader.read(65536)
            if not chunk:
                return
            total += len(chunk)


def _request(target: _Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return target.head + "".join(lines).encode("latin-1") + body


class _Stale(Exception):
    """A kept-alive connection closed before a single byte of answer."""


class _Expired(Exception):
    """A request the watchdog cut at its deadline."""


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    """The status, HTTP version and lower-cased header fields of an answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line: {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return int(code), version, fields
