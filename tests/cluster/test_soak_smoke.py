"""A short run of the soak (``python -m bench.soak``): a pub/sub kill and a drain lose nothing.

The soak starts its own Redis and two chat processes; here it runs for about
half a minute with fewer users and three phases, and every count that the
server promises to keep at zero must be zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The counts the server promises to keep at zero, in every phase.
ZERO = ("acked_but_lost", "out_of_order", "owed_never_seen", "duplicates")


@pytest.mark.timeout(150)
def test_a_short_soak_with_a_pubsub_kill_and_a_drain_loses_reorders_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not on PATH: required under CI=true")
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    out = tmp_path / "soak.json"
    command = [
        sys.executable,
        "-m",
        "bench.soak",
        "--minutes",
        "0.5",
        "--clients",
        "24",
        "--rooms",
        "4",
        "--phases",
        "calm,pubsub-kill,sigterm",
        "--seed",
        "7",
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        # the soak sets the servers' variables itself; the test run's must not leak in
        env={k: v for k, v in os.environ.items() if not k.startswith("CHAT_")},
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    counts = report["counts"]
    assert list(counts) == ["calm", "pubsub-kill", "sigterm"]
    assert sum(row["acked"] for row in counts.values()) > 100, done.stdout
    for column in ZERO:
        found = {phase: row[column] for phase, row in counts.items() if row[column]}
        assert found == {}, f"{column}: {found}\n{json.dumps(report['samples'], indent=1)}"
    assert report["totals"]["resync_events"] > 0, "the pub/sub kill was not noticed"
    assert report["exit_codes"]["chat-a"] == [0], "the SIGTERMed process did not drain cleanly"
