"""A real-time chat server: aiohttp + python-socketio, scaled out over Redis."""

from __future__ import annotations

from chat_server.app import create_app
from chat_server.config import Settings

__all__ = ["Settings", "create_app"]
