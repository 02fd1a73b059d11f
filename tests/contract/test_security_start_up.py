"""Bad security settings stop `python -m chat_server` with one stderr line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO_ROOT, clean_environ

NOT_A_KEY = str(Path(__file__))

BAD_STARTS = [
    pytest.param(
        {"CHAT_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.300"}, "CHAT_TRUSTED_PROXIES", id="proxy"
    ),
    pytest.param(
        {"CHAT_JWT_PUBLIC_KEY": "/no/such/key.pem"}, "CHAT_JWT_PUBLIC_KEY", id="pem-gone"
    ),
    pytest.param({"CHAT_JWT_PUBLIC_KEY": NOT_A_KEY}, "CHAT_JWT_PUBLIC_KEY", id="pem-invalid"),
    pytest.param(
        {"CHAT_JWKS_URL": "http://id.example/jwks", "CHAT_JWT_ALGORITHMS": "RS256"},
        "CHAT_JWKS_URL",
        id="jwks-http",
    ),
    pytest.param({"CHAT_JWT_ALGORITHMS": "HS256,XS512"}, "CHAT_JWT_ALGORITHMS", id="algorithm"),
    pytest.param({"CHAT_MAX_CONNECTIONS": "0"}, "CHAT_MAX_CONNECTIONS", id="max-connections"),
    pytest.param({"CHAT_CONNECT_RATE_PER_IP": "-1"}, "CHAT_CONNECT_RATE_PER_IP", id="rate"),
    pytest.param(
        {"CHAT_WEBHOOK_URL": "ftp://hooks.example/in", "CHAT_WEBHOOK_SECRET": "s"},
        "CHAT_WEBHOOK_URL",
        id="webhook-scheme",
    ),
    pytest.param(
        {"CHAT_WEBHOOK_URL": "https://hooks.example/in"}, "CHAT_WEBHOOK_SECRET", id="webhook-key"
    ),
]


@pytest.mark.parametrize(("env", "name"), BAD_STARTS)
def test_a_bad_security_setting_exits_non_zero_with_one_line_naming_it(
    env: dict[str, str], name: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chat_server", "--port", "1"],
        cwd=REPO_ROOT,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
