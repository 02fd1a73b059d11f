"""The benchmark harness runs end to end against our server (tiny numbers, nothing timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO_ROOT as REPO
from tests.support.redis import require_redis_binary


def run_module(*argv: str) -> str:
    """``python -m <argv>`` in the checkout, within 90 s; its output, once it exited 0."""
    result = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_bench_quick_mode_delivers_every_message_to_our_server(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run_module(
        "bench",
        "--quick",
        "--only",
        "ours",
        "--procs",
        "1",
        "--workers",
        "0",
        "--receivers",
        "12",
        "--senders",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--idle",
        "5",
        "--latency-room",
        "5",
        "--latency-rate",
        "20",
        "--rest-connections",
        "1",
        "--out",
        str(out),
    )
    (row,) = json.loads(out.read_text())["rows"]
    assert "error" not in row, row
    for name in ("latency", "fanout", "fanout-cid", "changes", "rest"):
        scenario = row["scenarios"][name]
        assert "error" not in scenario, (name, scenario)
        assert scenario["messages"] > 0, (name, scenario)
        assert (scenario["lost"], scenario["reordered"]) == (0, 0), (name, scenario)
    assert row["scenarios"]["idle"]["connections"] == 5
    changes = row["scenarios"]["changes"]
    assert changes["changes"] > 0, changes
    assert changes["change_errors"] == 0, changes
    assert changes["update_deliveries"] > 0, changes


@pytest.mark.redis
def test_the_room_joins_bench_joins_created_and_uncreated_rooms_and_counts_commands() -> None:
    require_redis_binary()
    out = run_module(
        *("bench.room_joins", "--count", "20", "--repeat", "1"),
        *("--concurrency", "2", "--rooms", "4", "--sample", "3"),
    )
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for mode in ("uncreated", "created"):
        assert "EVALSHA" in rows[mode], out
    assert "of the uncreated rooms' connects/s" in out
