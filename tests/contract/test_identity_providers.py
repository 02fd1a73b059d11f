"""Token mode with an identity provider: RS256/ES256 tokens checked against a JWKS or a PEM key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from chat_server.core import jwks as jwks_module
from tests.support.clients import ConnectRefused
from tests.support.fixtures import Connect, StartServer
from tests.support.jwks import JwksServer, SigningKey
from tests.support.settings import chat_settings

ALGORITHMS = ("RS256", "ES256")


@pytest.fixture
async def provider() -> AsyncIterator[JwksServer]:
    """A JWKS on loopback serving one RS256 and one ES256 key."""
    server = JwksServer()
    server.keys = [SigningKey("RS256"), SigningKey("ES256")]
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorten the JWKS refresh intervals (60 s and 2 s) so a test need not wait them out.

    The intervals themselves are tested in tests/unit/test_jwks_cache.py.
    """
    monkeypatch.setattr(jwks_module, "MIN_REFRESH", 0.2)
    monkeypatch.setattr(jwks_module, "RETRY", 0.2)


async def jwks_server_url(start_server: StartServer, provider: JwksServer, **extra: Any) -> str:
    return await start_server(
        chat_settings(jwks_url=provider.url, jwt_algorithms=ALGORITHMS, **extra)
    )


async def refused_code(connect: Connect, url: str, token: str) -> Any:
    with pytest.raises(ConnectRefused) as info:
        await connect(url, auth={"token": token})
    return info.value.code


async def welcomed_as(connect: Connect, url: str, token: str) -> Any:
    client = await connect(url, auth={"token": token})
    return (await client.next("welcome"))["user"]


async def eventually_welcomed_as(connect: Connect, url: str, token: str) -> Any:
    for _ in range(50):
        try:
            return await welcomed_as(connect, url, token)
        except ConnectRefused:
            await asyncio.sleep(0.1)
    raise AssertionError("the token was still refused after 5 s")


def hs256_with_key(key: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token keyed with ``key`` (PyJWT refuses to make one with a PEM key)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    signing_input = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("index", [0, 1], ids=ALGORITHMS)
async def test_a_token_signed_with_a_key_of_the_jwks_connects_as_its_sub(
    index: int, start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider)
    assert (
        await eventually_welcomed_as(connect, url, provider.keys[index].token("alice")) == "alice"
    )


async def test_a_token_signed_with_a_key_added_to_the_jwks_later_connects(
    quick_refresh: None, start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider)
    await eventually_welcomed_as(connect, url, provider.keys[0].token("alice"))
    rotated = SigningKey("RS256")
    provider.keys.append(rotated)
    await asyncio.sleep(0.3)  # past the (shortened) interval between refreshes
    assert await welcomed_as(connect, url, rotated.token("bob")) == "bob"


async def test_a_token_naming_a_kid_the_jwks_does_not_hold_is_invalid_token(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider)
    stranger = SigningKey("RS256")
    assert await refused_code(connect, url, stranger.token("alice")) == "invalid_token"


async def test_a_token_from_another_issuer_is_invalid_token(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider, jwt_issuer="https://id.example")
    key = provider.keys[0]
    await eventually_welcomed_as(connect, url, key.token("alice", iss="https://id.example"))
    token = key.token("alice", iss="https://evil.example")
    assert await refused_code(connect, url, token) == "invalid_token"


async def test_a_token_without_the_configured_issuer_is_invalid_token(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider, jwt_issuer="https://id.example")
    await eventually_welcomed_as(
        connect, url, provider.keys[0].token("a", iss="https://id.example")
    )
    assert await refused_code(connect, url, provider.keys[0].token("alice")) == "invalid_token"


async def test_a_token_for_another_audience_is_invalid_token(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider, jwt_audience="chat")
    key = provider.keys[0]
    await eventually_welcomed_as(connect, url, key.token("alice", aud="chat"))
    assert await refused_code(connect, url, key.token("alice", aud="billing")) == "invalid_token"


async def test_an_hs256_token_keyed_with_the_public_key_is_invalid_token_on_an_rs256_server(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider)
    await eventually_welcomed_as(connect, url, provider.keys[0].token("alice"))
    claims = {"sub": "mallory", "exp": 4_000_000_000}
    forged = hs256_with_key(provider.keys[0].public_pem.encode(), claims)
    assert await refused_code(connect, url, forged) == "invalid_token"


async def test_the_username_comes_from_the_configured_claim(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider, jwt_username_claim="preferred_username")
    token = provider.keys[0].token("3f2c-uuid-of-alice", preferred_username="alice")
    assert await eventually_welcomed_as(connect, url, token) == "alice"


async def test_a_username_claim_that_is_not_a_valid_username_is_invalid_token(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider, jwt_username_claim="preferred_username")
    await eventually_welcomed_as(connect, url, provider.keys[0].token("x", preferred_username="a"))
    token = provider.keys[0].token("x", preferred_username="alice smith")
    assert await refused_code(connect, url, token) == "invalid_token"


async def test_a_jwks_down_at_start_up_refuses_tokens_until_it_answers(
    quick_refresh: None, start_server: StartServer, connect: Connect
) -> None:
    provider = JwksServer()
    provider.keys = [SigningKey("RS256")]
    url = await start_server(chat_settings(jwks_url=provider.url, jwt_algorithms=ALGORITHMS))
    token = provider.keys[0].token("alice")
    assert await refused_code(connect, url, token) == "invalid_token"
    await provider.start()
    try:
        assert await eventually_welcomed_as(connect, url, token) == "alice"
    finally:
        await provider.stop()


async def test_cached_keys_keep_working_while_the_jwks_is_down(
    quick_refresh: None, start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    url = await jwks_server_url(start_server, provider)
    await eventually_welcomed_as(connect, url, provider.keys[0].token("alice"))
    await provider.stop()
    # An unknown kid makes the server try the provider, and fail, meanwhile.
    assert await refused_code(connect, url, SigningKey().token("eve")) == "invalid_token"
    assert await welcomed_as(connect, url, provider.keys[1].token("bob")) == "bob"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_token_checked_against_a_pem_public_key_connects(
    algorithm: str, start_server: StartServer, connect: Connect
) -> None:
    key = SigningKey(algorithm)
    url = await start_server(
        chat_settings(jwt_public_key=key.public_pem, jwt_algorithms=(algorithm,))
    )
    assert await welcomed_as(connect, url, key.token("alice")) == "alice"


async def test_an_hs256_token_signed_with_the_secret_still_connects_beside_a_jwks(
    start_server: StartServer, provider: JwksServer, connect: Connect
) -> None:
    secret = "s" * 32
    url = await start_server(
        chat_settings(secret=secret, jwks_url=provider.url, jwt_algorithms=("HS256", "RS256"))
    )
    token = jwt.encode({"sub": "bot", "exp": 4_000_000_000}, secret, algorithm="HS256")
    assert await welcomed_as(connect, url, token) == "bot"
