"""A webhook receiver for the bench: answers 200 at once, measures each message's delay.

    python bench/webhook_sink.py --port P

``GET /stats`` answers ``{count, p50_ms, p99_ms, max_ms}`` of the ``message``
events received since the last ``GET /stats`` (and starts counting afresh):
the time from the event's ``ts`` (set by the chat server when it stored the
message) to its arrival here, on one machine, so one clock.
"""

from __future__ import annotations

import argparse
import json
import time

from aiohttp import web

_delays: list[float] = []


async def hook(request: web.Request) -> web.Response:
    event = json.loads(await request.read())
    if event.get("type") == "message":
        _delays.append(time.time() * 1000 - event["ts"])
    return web.Response(text="ok")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of ``values`` by nearest rank, ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def stats(request: web.Request) -> web.Response:
    taken = _delays[:]
    _delays.clear()
    return web.json_response(
        {
            "count": len(taken),
            "p50_ms": percentile(taken, 0.5),
            "p99_ms": percentile(taken, 0.99),
            "max_ms": max(taken) if taken else None,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
