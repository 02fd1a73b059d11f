"""``python -m bench --webhooks`` runs end to end: the sink hears every message (nothing timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.process import REPO_ROOT


def test_bench_webhook_rows_report_one_webhook_per_message(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = "--quick --only ours --procs 1 --workers 0 --scenarios latency --webhooks"
    tiny = "--latency-room 5 --latency-rate 20 --senders 1 --warmup 0.2"
    command = [sys.executable, "-m", "bench", *argv.split(), *tiny.split(), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    plain, hooked = json.loads(out.read_text())["rows"]
    assert "webhooks" not in plain["scenarios"]["latency"]
    latency = hooked["scenarios"]["latency"]
    assert hooked["label"].endswith("+hooks")
    assert latency["webhooks"]["count"] == latency["messages"] > 0, latency
    assert latency["webhooks"]["p99_ms"] is not None
