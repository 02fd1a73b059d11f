"""Which combinations of token settings the server starts with, and which it refuses."""

from __future__ import annotations

import pytest

from chat_server.config import parse_command_line
from chat_server.core.settings import ConfigError

PEM_PATH = "tests/unit/test_token_settings.py"  # readable, but no PEM key

# environment, expected error fragment (None: starts)
CASES = [
    pytest.param({}, None, id="guest-mode"),
    pytest.param({"CHAT_SECRET": "s" * 32}, None, id="hs256-secret"),
    pytest.param({"CHAT_JWT_ALGORITHMS": "RS256"}, "needs CHAT_JWT_PUBLIC_KEY", id="rs-no-key"),
    pytest.param(
        {"CHAT_JWKS_URL": "https://id.example/jwks"}, "needs an RS*/ES*", id="jwks-hs-only"
    ),
    pytest.param(
        {"CHAT_JWKS_URL": "https://id.example/jwks", "CHAT_JWT_ALGORITHMS": "HS256,RS256"},
        "needs CHAT_SECRET",
        id="hs-without-secret",
    ),
    pytest.param(
        {"CHAT_JWKS_URL": "https://id.example/jwks", "CHAT_JWT_ALGORITHMS": "RS256,ES256"},
        None,
        id="jwks-rs-es",
    ),
    pytest.param(
        {"CHAT_JWKS_URL": "http://id.example/jwks", "CHAT_JWT_ALGORITHMS": "RS256"},
        "https://",
        id="http-jwks",
    ),
    pytest.param(
        {
            "CHAT_JWKS_URL": "http://id.example/jwks",
            "CHAT_JWT_ALGORITHMS": "RS256",
            "CHAT_JWKS_INSECURE": "1",
        },
        None,
        id="http-jwks-insecure",
    ),
    pytest.param(
        {"CHAT_JWKS_URL": "http://[::1]:9000/jwks", "CHAT_JWT_ALGORITHMS": "RS256"},
        None,
        id="http-jwks-loopback",
    ),
    pytest.param({"CHAT_JWKS_URL": "ftp://x/jwks"}, "https://", id="jwks-ftp"),
    pytest.param({"CHAT_JWT_ALGORITHMS": "none"}, "unknown algorithms", id="alg-none"),
    pytest.param({"CHAT_JWT_ALGORITHMS": "rs256"}, "unknown algorithms", id="alg-lowercase"),
    pytest.param({"CHAT_JWT_PUBLIC_KEY": PEM_PATH}, "no PEM public key", id="not-a-pem"),
    pytest.param({"CHAT_JWT_PUBLIC_KEY": "/no/such.pem"}, "cannot read", id="unreadable-pem"),
    pytest.param({"CHAT_JWKS_INSECURE": "maybe"}, "must be 1 or 0", id="insecure-not-boolean"),
]


@pytest.mark.parametrize(("env", "error"), CASES)
def test_token_settings_start_or_stop_start_up_with_one_reason(
    env: dict[str, str], error: str | None
) -> None:
    if error is None:
        parse_command_line([], env)
        return
    with pytest.raises(ConfigError, match=error.replace("*", r"\*")):
        parse_command_line([], env)
