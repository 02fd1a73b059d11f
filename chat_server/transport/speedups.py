"""Speed-ups the server runs with: uvloop, orjson, the direct broadcast path, GC tuning.

Each is on by default; ``Settings.speedups_off`` (``CHAT_SPEEDUPS_OFF``,
``--speedups-off``) switches some off, so that the benchmark can measure what
each one buys (docs/performance.md). A missing uvloop or orjson (a platform
without wheels) falls back to the standard library with the same behaviour,
only slower.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
from typing import Any

__all__ = ["FULL_COLLECTION_EVERY", "OrjsonModule", "json_module", "new_event_loop", "tune_gc"]

#: Collections of the middle generation between two full collections (Python's
#: default is 10).
FULL_COLLECTION_EVERY = 100

_LONG_DIGITS = re.compile(r"\d{19}")


class OrjsonModule:
    """The ``dumps``/``loads`` pair python-socketio takes as its ``json``, backed by orjson.

    Whatever orjson refuses and the standard library takes (lone surrogates,
    integers past 64 bits, non-string keys) goes to the standard library, so
    that input is accepted or refused exactly as without orjson.
    """

    def __init__(self) -> None:
        import orjson

        self._dumps = orjson.dumps
        self._loads = orjson.loads

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            text: str = self._dumps(obj).decode()
            return text
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    def loads(self, data: str | bytes, **kwargs: Any) -> Any:
        # orjson reads integers past 64 bits as floats instead of failing, so
        # input with such a long run of digits goes to the standard library.
        if _LONG_DIGITS.search(data if isinstance(data, str) else data.decode("latin-1")):
            return json.loads(data)
        try:
            return self._loads(data)
        except ValueError:
            return json.loads(data)


def json_module(enabled: bool) -> OrjsonModule | None:
    """orjson for python-socketio, or None for its default (the standard library)."""
    if not enabled:
        return None
    try:
        return OrjsonModule()
    except ImportError:
        return None


def new_event_loop(uvloop_enabled: bool) -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed and enabled, else asyncio's own."""
    if uvloop_enabled:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def tune_gc(enabled: bool) -> None:
    """Make full garbage collections rarer while the heap grows (a wave of connections).

    CPython runs a full collection, which visits every tracked object, each
    time the long-lived objects have grown by a quarter, after 10 collections
    of the middle generation. While thousands of clients connect, every one
    adding objects that live as long as its connection, that is a full pass
    over a growing heap again and again: measured over 5,000 handshakes, 9
    full collections took 1.1 of the server's 5.5 CPU seconds. Here a full
    collection waits for ``FULL_COLLECTION_EVERY`` middle ones, and what the
    process holds once started (modules, the app) is frozen out of every
    collection, being never garbage. Cyclic garbage still goes: the two
    younger generations collect as before, and full collections still run,
    only less often while the heap grows.
    """
    if not enabled:
        return
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
