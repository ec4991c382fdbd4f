"""The overnight inbox: `formscan schedule` serves a cron deployment whose run ingests the inbox and
moves each file to done/ or failed/; `--once` runs one pass; where each file goes, and why."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from flows.ingest import NOT_STORED, PageOutcome, arrived_files, inbox_destination, move_into

ROOT = Path(__file__).resolve().parent.parent
SCANS = ROOT / "fixtures" / "scans"


def page(number: int | None, *, added=True, status=None, kind=None, message=None) -> PageOutcome:
    return PageOutcome("inbox/a.pdf", number, added=added, status=status, error_kind=kind, error_message=message)


def test_where_a_file_of_the_inbox_goes():
    assert inbox_destination([page(None, added=True, status="error", kind="corrupt", message="no trailer")], 0) == (
        "failed", "corrupt: no trailer")
    assert inbox_destination([page(None, added=False, kind="duplicate", message="as b.pdf")], 0)[0] == "done"
    assert inbox_destination([page(1, status="needs_review"), page(2, status="error", kind="blank_page")], 0) == (
        "done", "1 forms (1 for review), 1 other pages")
    assert inbox_destination([page(1, status="error", kind="not_a_form")], 0) == (
        "failed", "no page is a form: not_a_form")
    assert inbox_destination([page(1, added=False)], 0) == ("done", "already in the queue")
    stays, why = inbox_destination([page(1, status="auto_accepted"),
                                    page(2, added=False, kind=NOT_STORED, message="OperationalError: locked")], 1)
    assert stays is None and "OperationalError: locked" in why and "next pass" in why


def test_files_still_arriving_wait_and_moved_files_keep_every_name(tmp_path):
    old, new = tmp_path / "old.pdf", tmp_path / "new.PDF"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    (tmp_path / "notes.txt").write_text("not a scan")
    (tmp_path / "done").mkdir()
    os.utime(old, (time.time() - 120, time.time() - 120))
    assert arrived_files(tmp_path, min_age_seconds=60) == ([old], [new])
    (tmp_path / "done" / "old.pdf").write_bytes(b"earlier")
    assert move_into(old, tmp_path / "done") == tmp_path / "done" / "old-2.pdf"
    assert (tmp_path / "done" / "old.pdf").read_bytes() == b"earlier"


def test_one_pass_now_moves_bad_files_to_failed_and_leaves_young_ones(prefect_api, tmp_path):
    from formscan.cli import main

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "notes.pdf").write_text("a text file named like a scan")
    (inbox / "empty.pdf").write_bytes(b"")
    for path in inbox.iterdir():
        os.utime(path, (time.time() - 600, time.time() - 600))
    (inbox / "arriving.pdf").write_bytes(b"%PDF-1.4 still being copied")
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    assert main(["schedule", "--inbox", str(inbox), "--once", "--min-age", "300", "--db", db]) == 0
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["empty.pdf", "notes.pdf"]
    assert (inbox / "arriving.pdf").exists() and not (inbox / "done").exists()
    [report] = (inbox / "reports").iterdir()
    assert "still arriving" in report.read_text(encoding="utf-8")


def test_the_served_deployment_has_its_cron_and_a_run_processes_the_inbox(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SCANS / "seed-4.pdf", inbox / "seed-4.pdf")
    (inbox / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n")
    db = tmp_path / "queue.db"
    name = f"inbox-test-{os.getpid()}"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    serving = subprocess.Popen(
        [sys.executable, "-m", "formscan", "schedule", "--inbox", str(inbox), "--cron", "0 2 * * *", "--timezone",
         "Asia/Shanghai", "--name", name, "--min-age", "0", "--db", f"sqlite:///{db}", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deployment = None
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while deployment is None and time.monotonic() < deadline and serving.poll() is None:
                try:
                    deployment = client.read_deployment_by_name(f"formscan-inbox/{name}")
                except Exception:  # noqa: BLE001 - not registered yet
                    time.sleep(0.5)
        assert deployment is not None, serving.stderr.read() if serving.poll() is not None else "no deployment"
        [schedule] = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Asia/Shanghai")
        assert deployment.parameters["inbox"] == str(inbox) and "db" not in deployment.parameters

        run = run_deployment(deployment.id, timeout=600)  # what the schedule starts at 02:00, started now
        assert run.state.is_completed(), run.state
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=60)
        serving.stderr.close()
    assert [p.name for p in (inbox / "done").iterdir()] == ["seed-4.pdf"]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["corrupt.pdf"]
    assert len(list((inbox / "reports").iterdir())) == 1
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT d.name, p.number, p.error_kind FROM pages p "
                                       "JOIN documents d ON d.id = p.document_id ORDER BY p.number")).all()
    engine.dispose()
    assert [(Path(name).name, number, kind) for name, number, kind in rows] == [
        ("corrupt.pdf", 0, "corrupt"), ("seed-4.pdf", 1, None)]
