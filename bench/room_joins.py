"""What joining a room that belongs to someone costs, next to a room nobody created.

Starts a private ``redis-server`` and one ``python -m chat_server`` over it on
loopback, creates ``--rooms`` rooms through ``POST /api/rooms``, then runs
rounds of connect + ``join`` + close (``--concurrency`` clients at a time,
guest mode) against created rooms and against uncreated ones, interleaved
``--repeat`` times. Prints connects/s and server CPU per connect+join for
each, and, from Redis ``MONITOR`` over a few sequential joins, the Redis
commands the server sends per connect+join (commands a Lua script runs inside
Redis are not sent, and are left out).

    python -m bench.room_joins [--count 1000] [--concurrency 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter

import aiohttp
import redis.asyncio as aioredis

from bench.servers import API_KEY, ServerSet, cpu_seconds, new_logdir, settle, start_redis

WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"
MODES = ("uncreated", "created")


def room_name(mode: str, n: int, rooms: int) -> str:
    """The room client ``n`` joins: one of ``rooms`` names per mode."""
    return f"{mode}-{n % rooms}"


async def connect_and_join(http: aiohttp.ClientSession, url: str, user: str, room: str) -> None:
    """A guest connects over WebSocket, joins ``room``, waits for the ack, and leaves."""
    async with http.ws_connect(url + WEBSOCKET) as ws:
        await ws.receive()  # Engine.IO OPEN
        await ws.send_str("40" + json.dumps({"username": user}))
        await ws.send_str("420" + json.dumps(["join", {"room": room}]))
        while True:
            frame = await ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"connection ended before the join's ack: {frame!r}")
            if frame.data == "2":
                await ws.send_str("3")
            elif frame.data.startswith("430"):
                ack = json.loads(frame.data[3:])[0]
                if ack.get("ok") is not True:
                    raise RuntimeError(f"join refused: {ack!r}")
                return


async def create_rooms(http: aiohttp.ClientSession, url: str, rooms: int) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for n in range(rooms):
        body = {"room": room_name("created", n, rooms), "owner": "owner", "topic": "bench"}
        async with http.post(f"{url}/api/rooms", json=body, headers=headers) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /api/rooms answered {response.status}")


async def measure(
    http: aiohttp.ClientSession, url: str, pids: list[int], mode: str, args: argparse.Namespace
) -> tuple[float, float]:
    """connects/s and server CPU µs per connect+join for ``mode``."""
    counter = iter(range(args.count))

    async def client(worker: int) -> None:
        for n in counter:
            await connect_and_join(
                http, url, f"{mode[0]}{worker}-{n}", room_name(mode, n, args.rooms)
            )

    await settle(pids)
    cpu, wall = cpu_seconds(pids), time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(args.concurrency)))
    wall = time.perf_counter() - wall
    await settle(pids)  # closes and presence clean-up belong to the cost
    cpu = cpu_seconds(pids) - cpu
    return args.count / wall, cpu / args.count * 1e6


async def commands_per_join(
    http: aiohttp.ClientSession, url: str, redis_url: str, mode: str, sample: int
) -> Counter[str]:
    """Redis commands the server sent (not those run inside scripts) per connect+join."""
    seen: Counter[str] = Counter()
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with client.monitor() as monitor:
            await monitor.connect()
            await asyncio.sleep(0.2)

            async def listen() -> None:
                while True:
                    info = await monitor.next_command()
                    if info["client_type"] != "lua":
                        name = info["command"].split(" ", 1)[0].upper()
                        seen[name] += 1

            listener = asyncio.create_task(listen())
            for n in range(sample):
                await connect_and_join(http, url, f"m{mode[0]}-{n}", room_name(mode, n, sample))
            await asyncio.sleep(0.5)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    finally:
        await client.aclose()
    return Counter({name: count / sample for name, count in seen.items()})


async def main(args: argparse.Namespace) -> None:
    """Measure and print the figures."""
    logdir = new_logdir()
    redis_proc, redis_url = start_redis(logdir)
    servers = ServerSet("ours", 1, redis_url, logdir)
    try:
        servers.start()
        url = f"http://127.0.0.1:{servers.ports[0]}"
        pids = [*servers.pids(), redis_proc.popen.pid]
        figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        async with aiohttp.ClientSession() as http:
            await create_rooms(http, url, max(args.rooms, args.sample))
            for mode in MODES:  # warm up
                await measure(
                    http, url, pids, mode, argparse.Namespace(**{**vars(args), "count": 50})
                )
            for _ in range(args.repeat):
                for mode in MODES:
                    figures[mode].append(await measure(http, url, pids, mode, args))
            commands = {
                mode: await commands_per_join(http, url, redis_url, mode, args.sample)
                for mode in MODES
            }
    finally:
        servers.stop()
        redis_proc.stop()
    print(
        f"{'join of':<10} {'connects/s':>11} {'CPU/join':>10}  "
        "Redis commands sent per connect+join"
    )
    for mode in MODES:
        rate = statistics.median(f[0] for f in figures[mode])
        cpu = statistics.median(f[1] for f in figures[mode])
        total = sum(commands[mode].values())
        named = ", ".join(f"{name} {n:.2f}" for name, n in commands[mode].most_common())
        print(f"{mode:<10} {rate:>11.0f} {cpu:>7.0f} µs  {total:.2f} ({named})")
        rounds = ", ".join(f"{r:.0f}/s {c:.0f} µs" for r, c in figures[mode])
        print(f"{'':<10} rounds: {rounds}")
    made = statistics.median(f[0] for f in figures["created"])
    plain = statistics.median(f[0] for f in figures["uncreated"])
    print(
        f"joins of created rooms: {made / plain:.1%} of the uncreated rooms' connects/s "
        f"(medians of {args.repeat} interleaved rounds; every round: {args.count} joins)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1000, help="connect+join per round")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at a time")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per mode")
    parser.add_argument("--rooms", type=int, default=50, help="rooms of each kind joined")
    parser.add_argument("--sample", type=int, default=20, help="sequential joins under MONITOR")
    return parser


if __name__ == "__main__":
    asyncio.run(main(_parser().parse_args()))
