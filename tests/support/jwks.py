"""Signing keys and a JWKS endpoint on loopback, as an identity provider would serve them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.ports import free_port

__all__ = ["JwksServer", "SigningKey"]


class SigningKey:
    """A private key of an identity provider, with its ``kid`` and algorithm."""

    def __init__(self, algorithm: str = "RS256", kid: str | None = None) -> None:
        self.algorithm = algorithm
        self.kid = kid or uuid.uuid4().hex[:8]
        if algorithm.startswith("ES"):
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_pem(self) -> str:
        """The public key as PEM text."""
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``."""
        algorithm = jwt.algorithms.get_default_algorithms()[self.algorithm]
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def token(self, sub: Any = "alice", *, ttl: float = 3600, **claims: Any) -> str:
        """A token signed with this key, naming it in ``kid``."""
        payload = {"sub": sub, "exp": int(time.time() + ttl), **claims}
        return jwt.encode(
            payload, self.private, algorithm=self.algorithm, headers={"kid": self.kid}
        )


class JwksServer:
    """``GET /jwks.json`` on 127.0.0.1, serving ``keys``; may be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[SigningKey] = []
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"keys": [key.jwk() for key in self.keys]})

    async def start(self) -> None:
        """Serve on ``port`` (the same one each time)."""
        app = web.Application()
        app.router.add_get("/jwks.json", self._jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop answering: connections to ``port`` are refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
