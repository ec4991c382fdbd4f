"""The queue's subcommands as a user runs them: ingest, user add, token create, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fastapi.testclient import TestClient

from review.app import create_app
from review.store import open_store
from review_queue.review_support import ROOT

PAGE = ROOT / "fixtures" / "scans" / "seed-4.pdf"


def formscan(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formscan", *args], capture_output=True, text=True, input=stdin,
                          cwd=ROOT, timeout=600, env={**os.environ, "OMP_THREAD_LIMIT": "1"})


def test_ingest_user_token_and_export_from_the_command_line(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'queue.db'}"]
    first = formscan("ingest", str(PAGE), *db, "--batch", "seed 4")
    assert first.returncode == 0, first.stderr
    assert "1 pages added" in first.stderr and (tmp_path / "queue.store" / "pages").is_dir()
    again = formscan("ingest", str(PAGE), *db, "-q")
    assert again.returncode == 0 and again.stderr == ""  # already in the queue: nothing read, nothing said

    assert formscan("user", "add", "carol", "--password-stdin", *db, stdin="pw-carol-3\n").returncode == 0
    assert formscan("token", "create", "nobody", *db).returncode == 2
    token = formscan("token", "create", "carol", *db).stdout.strip()
    assert token.startswith("fst_")

    store = open_store(db[1])
    client = TestClient(create_app(store))
    assert client.get("/api/queue?status=needs_review", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/login", data={"name": "carol", "password": "pw-carol-3"},
                       follow_redirects=False).status_code == 303
    store.close()

    out = tmp_path / "records.jsonl"
    done = formscan("export", "--format", "jsonl", "-o", str(out), *db)
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert line["source"] == {"file": str(PAGE), "page": 1} and line["status"] in ("auto_accepted", "needs_review")
    assert line["record"]["form_type"] == "project_performance_self_evaluation"
    xlsx = formscan("export", "--format", "xlsx", "-o", str(tmp_path / "r.xlsx"), "--status", "rejected", *db)
    assert xlsx.returncode == 0 and (tmp_path / "r.xlsx").stat().st_size > 0
    bogus = formscan("export", "--format", "csv", "-o", str(tmp_path / "r.csv"), "--status", "bogus", *db)
    assert bogus.returncode == 2 and "unknown status bogus" in bogus.stderr
