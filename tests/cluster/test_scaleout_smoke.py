"""The scale-out benchmark runs end to end: nothing lost, and routing spares the processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO_ROOT
from tests.support.redis import require_redis_binary

pytestmark = pytest.mark.redis


def test_scale_out_loses_nothing_and_routing_hears_each_message_on_fewer_processes(
    tmp_path: Path,
) -> None:
    require_redis_binary()
    out = tmp_path / "scaleout.json"
    command = [sys.executable, "-m", "bench", "--scaleout", "2", "--only", "ours", "--quick"]
    result = subprocess.run(
        [*command, "--duration", "1", "--warmup", "0.3", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["routing"]: row for row in json.loads(out.read_text())["rows"]}
    for row in rows.values():
        assert (row["lost"], row["reordered"], row["ack_errors"]) == (0, 0, 0), row
    # Half the rooms live on one process, half on both: 1.5 processes hear
    # each message with routing, both of them without.
    assert rows["rooms"]["heard_per_message"] < 1.8
    assert rows["single"]["heard_per_message"] >= 1.95
