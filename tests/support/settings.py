"""Test-friendly ``Settings``: rate limits out of the way and a known API key."""

from __future__ import annotations

from typing import Any

from chat_server.config import Settings

__all__ = ["API_KEY", "chat_settings"]

API_KEY = "test-key"


def chat_settings(**overrides: Any) -> Settings:
    """``Settings`` for tests: rate limits out of the way and a known API key."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "api_key": API_KEY,
        "rate_burst": 10_000,
        "rate_per_second": 10_000.0,
        "api_rate_per_second": 10_000.0,
    }
    values.update(overrides)
    return Settings(**values)
