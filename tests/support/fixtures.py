"""The types of the shared fixtures (see ``tests/conftest.py``), for annotating tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chat_server.config import Settings
from tests.support.clients import ChatClient
from tests.support.process import ServerProcess

__all__ = ["Connect", "MakeSettings", "StartProcesses", "StartServer"]

#: ``make_settings(**overrides) -> Settings`` (and ``backend_settings``).
MakeSettings = Callable[..., Settings]

#: ``await start_server(settings) -> base URL``.
StartServer = Callable[[Settings], Awaitable[str]]

#: ``await connect(url, username="alice", **kw) -> ChatClient``.
Connect = Callable[..., Awaitable[ChatClient]]

#: ``await server_processes(n, env={...}, args=[...], redis_url=...) -> processes``.
StartProcesses = Callable[..., Awaitable[list[ServerProcess]]]
