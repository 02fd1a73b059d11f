"""The soak's accounting: what Redis holds, what every user saw, counted per fault phase.

Accounting epochs: a Redis killed with no persistence forgets everything, so
the messages stored before a kill are judged against a snapshot of Redis read
just before it, and a new epoch starts with the restarted Redis. An id belongs
to the epoch whose Redis stamped it (its milliseconds against the kill time).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bench.soak_clients import Ledger, SoakUser

__all__ = ["COLUMNS", "Epoch", "Phase", "account", "read_store", "table"]

#: Milliseconds a live delivery may take: a message stored this close to the end
#: of a connection (or to a Redis kill) is not owed live on it.
LIVE_GRACE_MS = 1000.0
SAMPLES = 20

COLUMNS = (
    ("acked", "acked"),
    ("acked_but_lost", "lost"),
    ("out_of_order", "out of order"),
    ("owed_never_seen", "owed, never seen"),
    ("duplicates", "dup"),
    ("ghosts", "ghosts"),
    ("failed_none", "fail none"),
    ("failed_unknown", "fail unknown"),
    ("no_answer", "no answer"),
    ("failed_other", "fail other"),
)


@dataclass
class Phase:
    name: str
    start: float
    end: float = math.inf
    events: list[str] = field(default_factory=list)


@dataclass
class Epoch:
    """One life of Redis: ids stamped in [start, end) ms; ``store`` is what it held at the end."""

    start: float
    end: float = math.inf
    snapshot_at: float | None = None
    store: dict[str, dict[str, str]] = field(default_factory=dict)


def id_ms(message_id: str) -> float:
    return float(int(message_id.split("-", 1)[0]))


def _wire_id(raw: bytes) -> str:
    ms, _, seq = raw.decode().partition("-")
    return f"{int(ms):015d}-{int(seq):016d}"


async def read_store(redis_url: str, prefix: str = "chat:h:") -> dict[str, dict[str, str]]:
    """Every conversation Redis holds: key (``room:r``, ``dm:a:b``) -> id -> text."""
    client = aioredis.Redis.from_url(redis_url, socket_timeout=10)
    out: dict[str, dict[str, str]] = {}
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(key)  # type: ignore[assignment]
            messages: dict[str, str] = {}
            for raw_id, fields in entries:
                record = json.loads(fields[b"d"])
                messages[_wire_id(raw_id)] = str(record.get("text"))
            out[key.decode()[len(prefix) :]] = messages
    finally:
        await client.aclose()
    return out


def _phase_of(phases: list[Phase], at: float) -> str:
    name = phases[0].name
    for phase in phases:
        if at >= phase.start:
            name = phase.name
    return name


def _epoch_of(epochs: list[Epoch], message_id: str) -> Epoch:
    ms = id_ms(message_id)
    for epoch in epochs:
        if ms < epoch.end:
            return epoch
    return epochs[-1]


def _owed(conv_coverage: list[Any], ts: float, epoch: Epoch) -> bool:
    """Whether a connection of the user had to bring a message stored at ``ts``.

    Either a catch-up (join with ``since``, history pages) was sent after it was
    stored and answered by the same Redis, or a connection was live in the
    conversation when it was stored and lasted (as did Redis) a moment longer.
    """
    for cov in conv_coverage:
        if cov.sent > ts + 2 and cov.answered < epoch.end:
            return True
        end = min(cov.end if cov.end is not None else math.inf, epoch.end)
        if cov.live_from < ts and ts + LIVE_GRACE_MS < end:
            return True
    return False


def account(
    ledger: Ledger, users: list[SoakUser], phases: list[Phase], epochs: list[Epoch]
) -> dict[str, Any]:
    """Per-phase counts and samples of each anomaly."""
    rows: dict[str, dict[str, int]] = {p.name: {c: 0 for c, _ in COLUMNS} for p in phases}
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c, _ in COLUMNS}
    unjudged = 0

    def count(column: str, at: float, sample: dict[str, Any] | None = None) -> None:
        phase = _phase_of(phases, at)
        rows[phase][column] += 1
        if sample is not None and len(samples[column]) < SAMPLES:
            samples[column].append({"phase": phase, "t_ms": round(at), **sample})

    stored_ids: list[set[str]] = [{i for conv in e.store.values() for i in conv} for e in epochs]
    for at, kind, message_id, text in ledger.acks:
        count("acked", at)
        index = epochs.index(_epoch_of(epochs, message_id))
        epoch = epochs[index]
        if epoch.snapshot_at is not None and at >= epoch.snapshot_at:
            unjudged += 1  # acked while Redis was being read before its kill
            continue
        if message_id not in stored_ids[index]:
            count("acked_but_lost", at, {"id": message_id, "kind": kind, "text": text})
    for at, kind, detail in ledger.anomalies:
        count("out_of_order" if kind == "out_of_order" else "duplicates", at, detail)
    for at, detail in ledger.ghosts:
        count("ghosts", at, detail)
    for at, outcome, text in ledger.failures:
        column = {"none": "failed_none", "unknown": "failed_unknown", "no-answer": "no_answer"}
        count(column.get(outcome, "failed_other"), at, {"outcome": outcome, "text": text})
    owed_total = 0
    for user in users:
        for conv in user.conversations.values():
            if conv.first is None:
                continue
            for epoch in epochs:
                for message_id in epoch.store.get(conv.key, {}):
                    if message_id <= conv.first or message_id in conv.seen:
                        if message_id > conv.first:
                            owed_total += 1
                        continue
                    ts = id_ms(message_id)
                    if not _owed(conv.coverage, ts, epoch):
                        continue
                    owed_total += 1
                    count(
                        "owed_never_seen",
                        ts,
                        {
                            "user": user.name,
                            "conversation": conv.key,
                            "id": message_id,
                            "text": epoch.store[conv.key][message_id],
                            "first_seen": conv.first,
                            "largest_seen": conv.largest,
                            "coverage": [
                                [round(c.live_from), round(c.sent), round(c.answered), c.end]
                                for c in conv.coverage
                                if c.live_from - 15000 < ts < (c.end or math.inf) + 15000
                            ],
                        },
                    )
    stored_texts = {t for e in epochs for conv in e.store.values() for t in conv.values()}
    unknown = [text for _, outcome, text in ledger.failures if outcome in ("unknown", "no-answer")]
    return {
        "phases": rows,
        "samples": {k: v for k, v in samples.items() if v},
        "acks_not_judged": unjudged,
        "owed_deliveries": owed_total,
        "unknown_or_unanswered_sends_stored": sum(t in stored_texts for t in unknown),
        "unknown_or_unanswered_sends": len(unknown),
        "stored_messages": [sum(len(c) for c in e.store.values()) for e in epochs],
    }


def table(rows: dict[str, dict[str, int]]) -> str:
    head = ("phase", *(label for _, label in COLUMNS))
    lines = [head] + [
        (name, *(str(counts[c]) for c, _ in COLUMNS)) for name, counts in rows.items()
    ]
    totals = ("total", *(str(sum(r[c] for r in rows.values())) for c, _ in COLUMNS))
    lines.append(totals)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(out)
