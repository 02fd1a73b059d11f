"""The benchmark harness runs end to end against our server (tiny numbers, nothing timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _bench(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Run ``python -m bench --quick`` against our server, one process; the rows."""
    out = tmp_path / "bench.json"
    run_module(
        *("bench", "--quick", "--only", "ours", "--procs", "1", "--workers", "0"),
        *args,
        *("--out", str(out)),
    )
    rows: list[dict[str, Any]] = json.loads(out.read_text())["rows"]
    for row in rows:
        assert "error" not in row, row
        for name, scenario in row["scenarios"].items():
            assert "error" not in scenario, (name, scenario)
    return rows


def test_bench_quick_mode_delivers_every_message_to_our_server(tmp_path: Path) -> None:
    (row,) = _bench(
        tmp_path,
        "--scenarios",
        "idle,latency,fanout,fanout-cid,changes,rest",
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
    )
    for name in ("latency", "fanout", "fanout-cid", "changes", "rest"):
        scenario = row["scenarios"][name]
        assert scenario["messages"] > 0, (name, scenario)
        assert (scenario["lost"], scenario["reordered"]) == (0, 0), (name, scenario)
    assert row["scenarios"]["idle"]["connections"] == 5
    changes = row["scenarios"]["changes"]
    assert changes["changes"] > 0, changes
    assert changes["change_errors"] == 0, changes
    assert changes["update_deliveries"] > 0, changes


def test_bench_latency_light_measures_both_rates_without_loss(tmp_path: Path) -> None:
    (row,) = _bench(
        tmp_path,
        "--scenarios",
        "latency-light",
        "--light-rates",
        "20,40",
        "--light-room",
        "6",
        "--light-duration",
        "0.5",
        "--warmup",
        "0.2",
    )
    assert set(row["scenarios"]) == {"latency-light@20", "latency-light@40"}
    for name, scenario in row["scenarios"].items():
        assert scenario["receivers"] == 10, (name, scenario)
        assert scenario["latency_samples"] > 0, (name, scenario)
        assert (scenario["lost"], scenario["reordered"]) == (0, 0), (name, scenario)


def test_bench_handshakes_runs_in_guest_and_token_mode(tmp_path: Path) -> None:
    guest, token = _bench(
        tmp_path, "--scenarios", "handshakes", "--handshakes", "30", "--in-flight", "10"
    )
    assert (guest["label"], token["label"]) == ("ours", "ours token")
    for row in (guest, token):
        scenario = row["scenarios"]["handshakes"]
        assert scenario["connections"] == 30, scenario
        assert scenario["connects_per_s"] > 0, scenario


def test_bench_idle_rooms_holds_every_connection_in_a_room(tmp_path: Path) -> None:
    (row,) = _bench(tmp_path, "--scenarios", "idle-rooms", "--idle-rooms", "40", "--rooms", "4")
    scenario = row["scenarios"]["idle-rooms"]
    assert (scenario["connections"], scenario["rooms"]) == (40, 4), scenario
    assert scenario["file_limit"] >= 40, scenario


def test_bench_reconnect_storm_brings_every_client_back_without_unavailable(
    tmp_path: Path,
) -> None:
    (row,) = _bench(tmp_path, "--scenarios", "reconnect-storm", "--storm", "30", "--rooms", "3")
    storm = row["scenarios"]["reconnect-storm"]
    assert storm["back"] == 30, storm
    assert (storm["unavailable"], storm["join_errors"]) == (0, 0), storm
    assert storm["with_since"] is True, storm


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
