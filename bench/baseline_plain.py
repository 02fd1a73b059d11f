"""Plain python-socketio + aiohttp baseline: the contract's join/message, minimally.

This is what a careful user of python-socketio would write without performance
work: an ``AsyncServer`` on aiohttp (``AsyncRedisManager`` with ``--redis-url``),
the chat's ``join`` and ``message`` events with acks, and ``POST /api/emit``.
``--fast`` switches on uvloop and orjson, and nothing else.

    python bench/baseline_plain.py --port 9001 [--redis-url URL] [--fast]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from typing import Any

import socketio
from aiohttp import web


class _OrjsonModule:
    """The ``json`` module shape python-socketio expects, backed by orjson."""

    def __init__(self) -> None:
        import orjson

        self._orjson = orjson

    def dumps(self, obj: Any, **_kwargs: Any) -> str:
        return self._orjson.dumps(obj).decode()

    def loads(self, data: str | bytes, **_kwargs: Any) -> Any:
        return self._orjson.loads(data)


def create_app(redis_url: str | None, fast: bool, api_key: str) -> web.Application:
    kwargs: dict[str, Any] = {
        "async_mode": "aiohttp",
        "cors_allowed_origins": "*",
        "max_http_buffer_size": 65536,
    }
    if fast:
        kwargs["json"] = _OrjsonModule()
    if redis_url:
        kwargs["client_manager"] = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(**kwargs)
    app = web.Application()
    sio.attach(app)
    counter = itertools.count()
    pid = os.getpid() % 100_000
    users: dict[str, str] = {}

    def room_message(room: str, sender: str, text: str) -> dict[str, Any]:
        ts = int(time.time() * 1000)
        msg_id = f"{ts:013d}-{pid:05d}{next(counter) % 1_000_000:06d}"
        return {"id": msg_id, "room": room, "from": sender, "text": text, "ts": ts}

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        user = auth.get("username") if isinstance(auth, dict) else None
        users[sid] = str(user or "anonymous")
        await sio.emit("welcome", {"user": users[sid]}, to=sid)

    async def disconnect(sid: str, *_args: Any) -> None:
        users.pop(sid, None)

    async def join(sid: str, payload: Any) -> dict[str, Any]:
        room = payload.get("room") if isinstance(payload, dict) else None
        if not isinstance(room, str):
            return {"ok": False, "error": {"code": "invalid"}}
        await sio.enter_room(sid, room)
        return {
            "ok": True,
            "room": room,
            "members": [users.get(sid)],
            "history": [],
            "recovered": True,
        }

    async def message(sid: str, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            return {"ok": False, "error": {"code": "invalid"}}
        room, text = payload.get("room"), payload.get("text")
        if not isinstance(room, str) or not isinstance(text, str):
            return {"ok": False, "error": {"code": "invalid"}}
        if room not in sio.rooms(sid):
            return {"ok": False, "error": {"code": "not_in_room"}}
        msg = room_message(room, users.get(sid, "anonymous"), text)
        await sio.emit("message", msg, room=room)
        return {"ok": True, "id": msg["id"], "ts": msg["ts"]}

    for handler in (connect, disconnect, join, message):
        sio.on(handler.__name__, handler)

    async def api_emit(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response({"ok": False}, status=401)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"ok": False, "error": {"code": "invalid"}}, status=400)
        room, text = body.get("room"), body.get("text")
        if not isinstance(room, str) or not isinstance(text, str):
            return web.json_response({"ok": False, "error": {"code": "invalid"}}, status=400)
        msg = room_message(room, str(body.get("from") or "bot"), text)
        await sio.emit("message", msg, room=room)
        return web.json_response({"ok": True, "id": msg["id"], "ts": msg["ts"]})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post("/api/emit", api_emit)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--api-key", default=os.environ.get("CHAT_API_KEY", "bench"))
    parser.add_argument("--fast", action="store_true", help="uvloop and orjson")
    args = parser.parse_args()
    loop_factory = None
    if args.fast:
        import uvloop

        loop_factory = uvloop.new_event_loop
    app = create_app(args.redis_url, args.fast, args.api_key)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        loop=loop_factory() if loop_factory else None,
    )


if __name__ == "__main__":
    main()
