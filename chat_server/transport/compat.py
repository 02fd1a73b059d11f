"""Every private name of python-socketio and python-engineio this server relies on.

python-socketio and python-engineio give no public hook for what the chat
must do at the packet level (screen input before it is decoded, bound each
connection's output in bytes, write one broadcast frame to many sockets,
cut a connection without a handshake). So ``transport/`` overrides, calls or
replaces some of their private methods. This table is the one place that says
which, why no public hook serves, and which upstream bodies our code was
written against; ``drift()`` compares it with what is installed, and
``tests/unit/test_compat.py`` fails loudly when upstream moves.

Upstream files (python-socketio ``src/socketio/``, python-engineio
``src/engineio/``, redis-py ``redis/``) at the versions in ``TESTED``. A body hash is the SHA-256
of the function's dedented source; a new upstream release that changes one
means: read the new body, carry the change into our copy if it matters, and
add the new hash.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from importlib import metadata
from typing import Any

__all__ = ["NAMES", "TESTED", "Private", "body_hash", "drift"]

#: The releases the hashes below were taken from: the floor of requirements.txt
#: and the newest release tested (constraints/).
TESTED = {
    "python-socketio": ("5.14.1", "5.18.1"),
    "python-engineio": ("4.13.2", "4.15.1"),
    "redis": ("8.0.0", "8.1.0"),
}


@dataclass(frozen=True, slots=True)
class Private:
    """One private name we use.

    :param target: ``module:Qualified.name`` upstream.
    :param use: ``override`` (we subclass it and call ``super()``), ``call``
        (we call it), ``replace`` (our code does its job instead of it, or
        stands in for what it relies on, so its body matters), or ``attr`` (an
        attribute we read or set).
    :param where: our module that uses it.
    :param why: why no public hook serves.
    :param signature: the parameters we assume, as ``inspect.signature`` prints
        them (``None`` for attributes).
    :param hashes: for ``replace``: body hashes of the tested releases.
    """

    target: str
    use: str
    where: str
    why: str
    signature: str | None = None
    hashes: frozenset[str] = frozenset()


NAMES: tuple[Private, ...] = (
    Private(
        "socketio.async_server:AsyncServer._handle_eio_message",
        "replace",
        "transport/server.py",
        "the only place every inbound packet passes: decoding inside a try, refusing "
        "binary packets before attachments are awaited, rate limits before dispatch",
        "(self, eio_sid, data)",
        frozenset(
            {
                "38a7a6c5de2dd6e942e5c4f2488accad92ff0efcc51c3154a8e0e37b76759976",
                "a3badd0c36f3f8595bc96e7b91e44145d0f98beeca456351d12dc1fe3fedb44b",
            }
        ),
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_event",
        "override",
        "transport/server.py",
        "reserved event names (connect, disconnect, *) must not reach handlers",
        "(self, eio_sid, namespace, id, data)",
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_connect",
        "override",
        "transport/server.py",
        "no hook runs after the CONNECT reply is sent (the welcome event must follow it)",
        "(self, eio_sid, namespace, data)",
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_ack",
        "call",
        "transport/server.py",
        "dispatch of a screened ACK packet",
        "(self, eio_sid, namespace, id, data)",
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_disconnect",
        "call",
        "transport/server.py",
        "dispatch of a screened DISCONNECT packet",
        "(self, eio_sid, namespace, reason=None)",
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_eio_connect",
        "override",
        "transport/server.py",
        "no hook sees a new Engine.IO session before its CONNECT (the connect timeout)",
        "(self, eio_sid, environ)",
    ),
    Private(
        "socketio.async_server:AsyncServer._handle_eio_disconnect",
        "override",
        "transport/server.py",
        "per-connection state (rate limiter, ping timer) must go with the connection",
        "(self, eio_sid, reason)",
    ),
    Private(
        "socketio.async_server:AsyncServer._send_packet",
        "call",
        "transport/server.py",
        "answering an ack (rate_limited, unknown_event) without running a handler",
        "(self, eio_sid, pkt)",
    ),
    Private(
        "socketio.base_server:BaseServer._engineio_server_class",
        "override",
        "transport/server.py",
        "the only way to give python-socketio our Engine.IO server subclass",
        "(self)",
    ),
    Private(
        "socketio.async_pubsub_manager:AsyncPubSubManager._publish",
        "override",
        "transport/bus.py",
        "the designed seam of pub/sub managers (raises NotImplementedError upstream)",
        "(self, data)",
    ),
    Private(
        "socketio.async_pubsub_manager:AsyncPubSubManager._listen",
        "override",
        "transport/bus.py",
        "the designed seam of pub/sub managers (raises NotImplementedError upstream)",
        "(self)",
    ),
    Private(
        "socketio.async_pubsub_manager:AsyncPubSubManager._handle_emit",
        "replace",
        "transport/bus.py",
        "emits heard on the bus go through the shared-frame broadcast (fanout.py)",
        "(self, message)",
        frozenset(
            {
                "254aa23735515ac9f7d34ac4899d7f5d932f5c2b2f4f6821040691122590b067",
                "45b78065f7f15ebd9304a0adc5335d121c070492ec761b10cd39e232acd548c4",
            }
        ),
    ),
    *(
        Private(
            f"socketio.async_pubsub_manager:AsyncPubSubManager.{name}",
            "override",
            "transport/bus.py",
            "no hook sees a room gain its first or lose its last local member "
            "(per-room routing subscribes and unsubscribes there)",
            signature,
        )
        for name, signature in (
            ("enter_room", "(self, sid, namespace, room, eio_sid=None)"),
            ("leave_room", "(self, sid, namespace, room)"),
            ("disconnect", "(self, sid, namespace, **kwargs)"),
            ("close_room", "(self, room, namespace=None)"),
        )
    ),
    Private(
        "socketio.async_manager:AsyncManager.emit",
        "replace",
        "transport/fanout.py",
        "python-socketio creates a task per recipient and encodes per recipient",
        "(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, "
        "**kwargs)",
        frozenset(
            {
                "974bad6cde33d1a64cffee8b6f9af24de17c5fad9ca02879dcf798ab8d6c19fd",
            }
        ),
    ),
    Private(
        "engineio.async_server:AsyncServer._async",
        "attr",
        "transport/engine.py",
        "the driver table is the only way to put our WebSocket class, request "
        "translation (POST screening) and route (every method, answered 400 when "
        "unsupported) in place",
    ),
    Private(
        "engineio.async_socket:AsyncSocket._websocket_handler",
        "replace",
        "transport/websocket.py",
        "copied as serve_websocket: the same steps with no wait_for tasks (four tasks "
        "per idle connection become one) and, past the upgrade probe, no timeouts of "
        "its own (the heartbeat's pong deadline closes a silent client)",
        "(self, ws)",
        frozenset(
            {
                "3548a4051e6f43dff4381e0060c3d8e71015affce9ca152ef7e70b79ed72cd48",
            }
        ),
    ),
    Private(
        "engineio.async_server:AsyncServer._handle_connect",
        "replace",
        "transport/engine.py",
        "a WebSocket is served after this returns (serve_later, not from within its "
        "frames); we rely on it handing the upgraded response back unchanged, and do "
        "its removal of the closed session once serving ends",
        "(self, environ, transport, jsonp_index=None)",
        frozenset({"57f46d81546219173e4ba78862c6e685ac6c2c8e4e7cc1e9f330c5be79fbc6f6"}),
    ),
    Private(
        "engineio.async_server:AsyncServer.handle_request",
        "replace",
        "transport/engine.py",
        "the same for an upgrade from polling: the response comes back unchanged (not "
        "a dict), and we remove the closed session once serving ends",
        "(self, *args, **kwargs)",
        frozenset(
            {
                "a71e053739d0a49d41cc289551d8da37f68b18209b2e573ca0eab1a45b0eaabf",
                "911b69db6dcb766309d02ebd76809a120668f4a922129429717ba0877d70b47c",
            }
        ),
    ),
    Private(
        "engineio.async_socket:AsyncSocket._upgrade_websocket",
        "replace",
        "transport/engine.py",
        "returns what the WebSocket driver's __call__ returns, our deferred response",
        "(self, environ)",
        frozenset({"87601500a120e564d89845d741c558cc5c21537165194bc12b4a7d1e94e94ac8"}),
    ),
    Private(
        "engineio.async_socket:AsyncSocket._send_ping",
        "replace",
        "transport/engine.py",
        "a sleeping task per connection for its ping becomes one loop timer",
        "(self)",
        frozenset(
            {
                "af7d301862db9af7aa893f63382b60b6cce885e6edbe157d845d29a5be94c957",
            }
        ),
    ),
    Private(
        "engineio.async_socket:AsyncSocket.send",
        "replace",
        "transport/fanout.py",
        "the broadcast path queues a shared packet without the per-call ping check",
        "(self, pkt)",
        frozenset(
            {
                "e7de91d345dff4fe14810ce3cdbadb254aa176990f2aa5f2149c2a56028e96e2",
            }
        ),
    ),
    Private(
        "engineio.async_drivers.aiohttp:WebSocket.__call__",
        "replace",
        "transport/websocket.py",
        "the WebSocketResponse options (max_msg_size, no deflate) are not configurable; "
        "ours returns the prepared response for the server to serve (serve_later)",
        "(self, environ)",
        frozenset(
            {
                "ab81905a4baf2354e33a73c642da4342cc46f74320a0e9726a3d78340d77044f",
            }
        ),
    ),
    Private(
        "engineio.async_drivers.aiohttp:WebSocket.wait",
        "replace",
        "transport/websocket.py",
        "every frame is screened before python-engineio decodes it",
        "(self)",
        frozenset(
            {
                "2ad240491d9b02b71564475a36a2926006eff83ce64f8e6f61c92c17f12ad1ce",
            }
        ),
    ),
    Private(
        "engineio.async_drivers.aiohttp:WebSocket._sock",
        "attr",
        "transport/websocket.py",
        "the aiohttp WebSocketResponse the driver keeps",
    ),
    Private(
        "engineio.async_socket:AsyncSocket.poll",
        "replace",
        "transport/sendqueue.py",
        "SendQueue stands in for the asyncio.Queue that poll() and the writer drain, so "
        "the queue methods poll() calls are what SendQueue must provide",
        "(self)",
        frozenset({"01a7f5df1937d9265cea38333bd492c9addbe99e00c66ccc1e4f8e81b6ba3629"}),
    ),
    Private(
        "engineio.async_socket:AsyncSocket.close",
        "call",
        "transport/engine.py",
        "cutting a connection without the Engine.IO close handshake (slow consumers, floods)",
        "(self, wait=True, abort=False, reason=None)",
    ),
    Private(
        "engineio.async_socket:AsyncSocket.receive",
        "call",
        "transport/websocket.py",
        "the copied WebSocket loop hands each decoded packet to the socket",
        "(self, pkt)",
    ),
    *(
        Private(
            f"engineio.base_socket:BaseSocket.{name}",
            "attr",
            "transport/fanout.py, transport/websocket.py, transport/engine.py",
            "the socket's transport state decides whether a frame may bypass its queue "
            "(and, in engine.py, whether a second WebSocket intrudes on an upgraded session)",
        )
        for name in (
            "queue",
            "last_ping",
            "connected",
            "upgrading",
            "upgraded",
            "closing",
            "closed",
        )
    ),
    Private(
        "socketio.async_pubsub_manager:AsyncPubSubManager.host_id",
        "attr",
        "transport/bus.py",
        "our publish sequence numbers are kept per sender process",
    ),
    Private(
        "socketio.base_server:BaseServer.manager_initialized",
        "attr",
        "transport/bus.py",
        "the manager subscribes at start-up instead of at the first connection",
    ),
    Private(
        "socketio.base_manager:BaseManager.basic_disconnect",
        "replace",
        "transport/roomindex.py",
        "it tests every room of the process for the leaving sid (quadratic in a "
        "reconnect storm); ours leaves the rooms its index names",
        "(self, sid, namespace, **kwargs)",
        frozenset(
            {
                "2e6fe0647e4e6b8a5cb57f87953337488154a15c39570a02739409127a7f3115",
                "badf3313db9ad2e1d61a6e0581533ed9276eb6c178fce65e134fd112fd5bfd00",
            }
        ),
    ),
    Private(
        "socketio.base_manager:BaseManager.get_rooms",
        "replace",
        "transport/roomindex.py",
        "answered from the same index instead of a scan of every room",
        "(self, sid, namespace)",
        frozenset({"e6b56d8f19b1b66055184b0b187fc192149c2b7407e56c69be6c6df717c873d1"}),
    ),
    Private(
        "socketio.base_manager:BaseManager.basic_enter_room",
        "override",
        "transport/roomindex.py",
        "every way into a room passes here; the index must follow",
        "(self, sid, namespace, room, eio_sid=None)",
    ),
    Private(
        "socketio.base_manager:BaseManager.basic_leave_room",
        "override",
        "transport/roomindex.py",
        "every way out of a room (leave, close, disconnect) passes here",
        "(self, sid, namespace, room)",
    ),
    Private(
        "socketio.base_manager:BaseManager.rooms",
        "attr",
        "transport/roomindex.py, transport/fanout.py",
        "namespace -> room -> sid/eio_sid table, read by the broadcast and the index",
    ),
    Private(
        "socketio.async_pubsub_manager:AsyncPubSubManager.thread",
        "attr",
        "transport/bus.py",
        "AsyncServer.shutdown() leaves the listener task running; we cancel it",
    ),
    Private(
        "redis.asyncio.cluster:ClusterNode.connection_kwargs",
        "attr",
        "transport/sharded.py",
        "a sharded subscription must reach its slot's master with the cluster client's "
        "own settings (credentials, TLS, time-outs); ClusterPubSub, the public way, "
        "moves channels between nodes on its own and would hide the gap from the bus",
    ),
    Private(
        "redis.asyncio.cluster:ClusterNode.connection_class",
        "attr",
        "transport/sharded.py",
        "as connection_kwargs: a TLS cluster's nodes need its SSL connection class",
    ),
)


def _resolve(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def body_hash(obj: Any) -> str:
    """SHA-256 of a function's dedented source: changes whenever upstream edits it."""
    source = textwrap.dedent(inspect.getsource(obj))
    return hashlib.sha256(source.encode()).hexdigest()


def _has_attribute(target: str) -> bool:
    module_name, _, qualname = target.partition(":")
    owner_name, _, attribute = qualname.rpartition(".")
    owner = _resolve(f"{module_name}:{owner_name}")
    # Instance attributes are set in __init__; look for the assignment there.
    init = getattr(owner, "__init__", None)
    sources = [inspect.getsource(owner)]
    if init is not None:
        sources.append(inspect.getsource(init))
    return hasattr(owner, attribute) or any(f"self.{attribute}" in s for s in sources)


def _check(entry: Private) -> str | None:
    if entry.use == "attr":
        if not _has_attribute(entry.target):
            return f"{entry.target}: attribute gone ({entry.where} relies on it)"
        return None
    try:
        obj = _resolve(entry.target)
    except (ImportError, AttributeError):
        return f"{entry.target}: gone upstream ({entry.where} relies on it)"
    if entry.signature is not None:
        found = str(inspect.signature(obj))
        if found != entry.signature:
            return f"{entry.target}: signature is {found}, {entry.where} assumes {entry.signature}"
    if entry.use == "replace" and body_hash(obj) not in entry.hashes:
        return (
            f"{entry.target}: upstream body changed (hash {body_hash(obj)}); "
            f"compare it with our replacement in {entry.where}"
        )
    return None


def installed_versions() -> dict[str, str]:
    """The installed versions of the libraries in ``TESTED``."""
    return {name: metadata.version(name) for name in TESTED}


def drift() -> list[str]:
    """What no longer matches between this table and the installed libraries."""
    return [problem for entry in NAMES if (problem := _check(entry)) is not None]
