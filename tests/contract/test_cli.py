"""`python -m chat_server` as users run it: start-up errors, variables, flags, token."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import jwt
import pytest

from tests.support.clients import ChatClient
from tests.support.ports import free_port
from tests.support.process import REPO_ROOT, ServerProcess, clean_environ
from tests.support.redis import RedisServer

SECRET = "cli-test-secret-" + "s" * 32


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_server", *args],
        cwd=REPO_ROOT,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# -- bad start-up values ---------------------------------------------------------------

BAD_STARTS = [
    pytest.param({"PORT": "abc"}, [], "PORT", id="PORT=abc"),
    pytest.param({"PORT": "0"}, [], "PORT", id="PORT=0"),
    pytest.param({"PORT": "70000"}, [], "PORT", id="PORT=70000"),
    pytest.param({}, ["--port", "abc"], "--port", id="--port=abc"),
    pytest.param({}, ["--port", "70000"], "--port", id="--port=70000"),
    pytest.param({"REDIS_URL": "not a url"}, [], "REDIS_URL", id="REDIS_URL=not-a-url"),
    pytest.param(
        {"REDIS_URL": "redis://127.0.0.1:notaport/0"}, [], "REDIS_URL", id="REDIS_URL=bad-port"
    ),
    pytest.param({}, ["--redis-url", "http://x"], "--redis-url", id="--redis-url=http"),
    pytest.param({"CHAT_HISTORY_SIZE": "0"}, [], "CHAT_HISTORY_SIZE", id="HISTORY_SIZE=0"),
    pytest.param({"CHAT_HISTORY_SIZE": "abc"}, [], "CHAT_HISTORY_SIZE", id="HISTORY_SIZE=abc"),
    pytest.param({"CHAT_HISTORY_SIZE": "-3"}, [], "CHAT_HISTORY_SIZE", id="HISTORY_SIZE=-3"),
    pytest.param({"LOG_LEVEL": "LOUD"}, [], "LOG_LEVEL", id="LOG_LEVEL=LOUD"),
    pytest.param({}, ["--log-level", "LOUD"], "--log-level", id="--log-level=LOUD"),
    pytest.param({}, ["--no-such-flag"], "--no-such-flag", id="unknown-flag"),
]


@pytest.mark.parametrize(("env", "args", "name"), BAD_STARTS)
def test_a_bad_start_up_value_exits_non_zero_with_one_line_naming_it(
    env: dict[str, str], args: list[str], name: str
) -> None:
    result = run(args, env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_port_already_in_use_exits_non_zero_without_a_traceback() -> None:
    with ServerProcess() as busy_port_server:
        result = run(["--port", str(busy_port_server.port), "--host", "127.0.0.1"])
    assert result.returncode != 0
    assert result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout


# -- variables and flags of a running server ---------------------------------------------


def test_the_server_listens_on_port_and_host_from_the_environment() -> None:
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1"}
    with ServerProcess(port, env=env, pass_port=False):
        health = get_json(f"http://127.0.0.1:{port}/healthz")
    assert health == {"status": "ok", "redis": "disabled"}


def test_the_port_flag_wins_over_the_port_variable() -> None:
    env_port, flag_port = free_port(), free_port()
    with ServerProcess(flag_port, env={"PORT": str(env_port)}) as proc:
        health = get_json(f"{proc.url}/healthz")
    assert health == {"status": "ok", "redis": "disabled"}


def test_the_api_key_variable_enables_the_rest_api() -> None:
    with ServerProcess(env={"CHAT_API_KEY": "from-env"}) as proc:
        request = urllib.request.Request(
            f"{proc.url}/api/rooms/lobby", headers={"Authorization": "Bearer from-env"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


async def test_the_secret_flag_switches_the_server_to_token_mode() -> None:
    token = run(["token", "alice", "--secret", SECRET]).stdout.strip()
    with ServerProcess(args=["--secret", SECRET]) as proc:
        client = await ChatClient.connect(proc.url, auth={"token": token})
        try:
            assert (await client.next("welcome"))["user"] == "alice"
        finally:
            await client.close()


# -- the token command -------------------------------------------------------------------


def test_token_command_prints_exactly_one_line() -> None:
    result = run(["token", "alice"], {"CHAT_SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.endswith("\n")
    assert "Traceback" not in result.stderr


def test_token_command_prints_an_hs256_jwt_for_the_user_valid_24_hours() -> None:
    before = time.time()
    token = run(["token", "alice"], {"CHAT_SECRET": SECRET}).stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert before + 86400 - 5 <= claims["exp"] <= time.time() + 86400 + 5


def test_token_command_ttl_sets_the_lifetime_in_seconds() -> None:
    before = time.time()
    token = run(["token", "bob", "--ttl", "60"], {"CHAT_SECRET": SECRET}).stdout.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob"
    assert before + 60 - 5 <= claims["exp"] <= time.time() + 60 + 5


def test_token_command_uses_the_secret_flag() -> None:
    token = run(["token", "alice", "--secret", "flag-secret-" + "f" * 32]).stdout.strip()
    assert jwt.decode(token, "flag-secret-" + "f" * 32, algorithms=["HS256"])["sub"] == "alice"


def test_token_command_without_a_secret_fails_with_one_line_naming_chat_secret() -> None:
    result = run(["token", "alice"])
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "CHAT_SECRET" in lines[0]


def test_token_command_refuses_an_invalid_username() -> None:
    result = run(["token", "not a name!"], {"CHAT_SECRET": SECRET})
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


# -- LOG_LEVEL ------------------------------------------------------------------------------------


def log_of(env: dict[str, str], args: list[str] | None = None) -> str:
    """The whole log of a server that started, answered /healthz and stopped."""
    with ServerProcess(env=env, args=args or []) as proc:
        get_json(f"{proc.url}/healthz")
    return proc.log_text()


def test_the_default_log_level_logs_info_lines() -> None:
    assert " INFO " in log_of({})


def test_log_level_warning_keeps_info_lines_out() -> None:
    log = log_of({"LOG_LEVEL": "WARNING"})
    assert "INFO" not in log
    assert "DEBUG" not in log


def test_the_log_level_flag_wins_over_the_variable() -> None:
    log = log_of({"LOG_LEVEL": "INFO"}, ["--log-level", "WARNING"])
    assert "INFO" not in log


# -- how the contract says to run it ------------------------------------------------------------


async def test_a_plain_process_serves_the_page_and_socket_io(
    http: aiohttp.ClientSession,
) -> None:
    with ServerProcess() as proc:
        async with http.get(f"{proc.url}/") as response:
            assert response.content_type == "text/html"
        client = await ChatClient.connect(proc.url, auth={"username": "alice"})
        try:
            assert (await client.next("welcome"))["user"] == "alice"
        finally:
            await client.close()


def test_the_procfile_runs_a_web_process_reading_port_and_redis_url(
    redis_server: RedisServer,
) -> None:
    lines = (REPO_ROOT / "Procfile").read_text().splitlines()
    web = [line.split(":", 1)[1].strip() for line in lines if line.startswith("web:")]
    assert web == ["python -m chat_server"]
    port = free_port()
    env = clean_environ({"PORT": str(port), "REDIS_URL": redis_server.url})
    proc = subprocess.Popen(
        web[0].split(),
        cwd=REPO_ROOT,
        env={**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                health = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert proc.poll() is None, "the Procfile's web process exited"
                assert time.monotonic() < deadline, "the Procfile's web process never served"
                time.sleep(0.1)
        assert health == {"status": "ok", "redis": "ok"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
