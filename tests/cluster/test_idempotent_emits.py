"""Two processes racing with one ``Idempotency-Key`` deliver the message once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from tests.contract.test_rest import AUTH, get_room, post
from tests.support.chat import unique
from tests.support.fixtures import StartProcesses

pytestmark = pytest.mark.redis

PAIRS = 20


async def test_one_key_racing_on_two_processes_delivers_once(
    server_processes: StartProcesses, http: aiohttp.ClientSession
) -> None:
    first, second = await server_processes(2)
    room = unique("race")
    keys = [f"race-{uuid.uuid4()}" for _ in range(PAIRS)]

    async def send(url: str, key: str) -> tuple[int, Any, bool]:
        body = {"room": room, "text": key}
        status, answer, response = await post(http, url, body, {**AUTH, "Idempotency-Key": key})
        return status, answer, "Idempotent-Replayed" in response.headers

    answers = await asyncio.gather(
        *(send(url, key) for key in keys for url in (first.url, second.url))
    )
    status, snapshot = await get_room(http, first.url, room)
    assert status == 200, snapshot
    # Exactly one message per key, whoever won each race.
    assert sorted(m["text"] for m in snapshot["history"]) == sorted(keys)
    by_id = {m["text"]: m["id"] for m in snapshot["history"]}
    for key, pair in zip(keys, zip(answers[::2], answers[1::2], strict=True), strict=True):
        fresh = [a for s, a, replayed in pair if s == 200 and not replayed]
        assert len(fresh) == 1, pair
        assert fresh[0]["id"] == by_id[key]
        for status_, answer, replayed in pair:
            # The loser saw either the winner's answer again or "in progress".
            if replayed:
                assert (status_, answer) == (200, fresh[0])
            elif answer is not fresh[0]:
                assert (status_, answer["error"]["code"]) == (409, "in_progress")
