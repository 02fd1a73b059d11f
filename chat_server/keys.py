"""Typed application keys, kept together so every module names them alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    import socketio

    from .config import Settings
    from .service import ChatService

__all__ = ["REDIS", "SERVICE", "SETTINGS", "SOCKETS"]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICE: web.AppKey[ChatService] = web.AppKey("service")
SOCKETS: web.AppKey[socketio.AsyncServer] = web.AppKey("sockets")
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
