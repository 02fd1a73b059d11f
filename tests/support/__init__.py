"""Helpers shared by every test module: free ports, real Redis, real servers, real clients."""

from tests.support.clients import ChatClient, ConnectRefused
from tests.support.ports import free_port
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer, redis_binary

__all__ = [
    "ChatClient",
    "ConnectRefused",
    "RedisServer",
    "ServerProcess",
    "free_port",
    "redis_binary",
]
