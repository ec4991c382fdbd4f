"""Scale-out for real, without docker: PostgreSQL, `prefect server`, two `prefect worker`s, one batch.

scripts/multiworker_check.py starts and stops everything itself (127.0.0.1 only, by PID); this
runs it as docs/ingest.md says and reads its verdict.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_workers_share_a_batch_and_every_page_lands_once():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "multiworker_check.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and result["ok"], (result, done.stderr[-3000:])
    assert result["flow_runs"] == ["COMPLETED", "COMPLETED"]
    assert result["workers"] == ["worker-1", "worker-2"]  # each worker ran one of the two flow runs
    # seed-3 is in both runs: stored by one, skipped by the other
    assert result["pages"] == {"seed-1.pdf:1": 1, "seed-2.pdf:1": 1, "seed-3.pdf:1": 1}
