"""The ingest flow on Prefect's local test server: a batch lands whole and once, bad files are
recorded and the batch goes on, a run killed with SIGKILL is finished by running it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
SCANS = ROOT / "fixtures" / "scans"


@dataclass
class Batch:
    paths: list[str]
    db: str
    store: str
    folder: Path
    summary: object


def queue_rows(db: str) -> list[tuple]:
    """(file name, page number, status, error kind, page id) of every row, read with plain SQL."""
    engine = create_engine(db)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT d.name, p.number, p.status, p.error_kind, p.id FROM pages p "
            "JOIN documents d ON d.id = p.document_id ORDER BY d.name, p.number")).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def blank_page(path: Path, shade: int = 255) -> Path:
    Image.fromarray(np.full((800, 600), shade, dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def first_run(prefect_api, tmp_path_factory) -> Batch:
    from flows.ingest import ingest_batch

    folder = tmp_path_factory.mktemp("batch")
    corrupt = folder / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")  # no xref, no trailer
    paths = [str(SCANS / "seed-1.pdf"), str(corrupt), str(SCANS / "seed-2.pdf")]
    db, store = f"sqlite:///{folder / 'queue.db'}", str(folder / "store")
    summary = ingest_batch(paths, db=db, store=store, audit_rate=0.0)
    return Batch(paths, db, store, folder, summary)


def test_a_batch_lands_completely_and_a_corrupt_file_is_recorded_as_failed(first_run):
    summary = first_run.summary
    assert (summary.pages, summary.added, summary.missing) == (2, 2, [])
    assert summary.forms == 2
    rows = {(Path(name).name, number): (status, kind) for name, number, status, kind, _ in queue_rows(first_run.db)}
    assert set(rows) == {("seed-1.pdf", 1), ("seed-2.pdf", 1), ("corrupt.pdf", 0)}
    assert rows[("corrupt.pdf", 0)] == ("error", "corrupt")
    assert rows[("seed-1.pdf", 1)][0] in ("auto_accepted", "needs_review")
    assert rows[("seed-2.pdf", 1)][0] in ("auto_accepted", "needs_review")
    [failure] = summary.failures
    assert (Path(failure.file).name, failure.number, failure.error_kind) == ("corrupt.pdf", None, "corrupt")
    assert "corrupt" in summary.markdown() and "2 pages added" in summary.text()


def test_the_second_run_adds_nothing_not_even_under_another_name(first_run):
    from flows.ingest import ingest_batch

    before = queue_rows(first_run.db)
    renamed = first_run.folder / "renamed copy of seed-2.pdf"
    renamed.write_bytes((SCANS / "seed-2.pdf").read_bytes())
    again = ingest_batch(first_run.paths, db=first_run.db, store=first_run.store)
    copy = ingest_batch([str(renamed)], db=first_run.db, store=first_run.store)
    assert (again.added, again.already, again.missing) == (0, 2, [])
    assert (copy.added, copy.already) == (0, 1)
    assert [(o.file, o.number) for o in copy.outcomes] == [(str(renamed), 1)]  # under this run's name
    after = queue_rows(first_run.db)
    assert sorted(row[1:] for row in after) == sorted(row[1:] for row in before)  # the same pages, not stored again
    engine = create_engine(first_run.db)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM batches")).scalar() == 1  # no empty batch either
        name, names = connection.execute(text(
            "SELECT name, names FROM documents WHERE name LIKE '%renamed copy%'")).one()
    engine.dispose()
    history = json.loads(names) if isinstance(names, str) else names
    assert name == str(renamed)  # the name it came in with last; the first kept as history
    assert [(entry["name"], entry["how"]) for entry in history] == [
        (str(SCANS / "seed-2.pdf"), "given"), (str(renamed), "given")]


def test_the_summary_is_a_markdown_artifact_of_the_run(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.ingest import SUMMARY_ARTIFACT

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[SUMMARY_ARTIFACT])))
    assert artifacts and all(a.type == "markdown" for a in artifacts)
    assert any("| 2 | 2 | 0 | 2 |" in a.data for a in artifacts)  # pages, added, already there, forms


def test_a_documents_page_tasks_carry_its_tag(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterTags

    from pipeline.read import file_sha256

    tag = f"document:{file_sha256(SCANS / 'seed-1.pdf')[:16]}"
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 60  # task runs reach the API as events, a moment later
        while True:
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag])))
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert runs and {run.name for run in runs} == {f"{SCANS / 'seed-1.pdf'} page 1"}


def test_a_changed_file_is_a_new_version(prefect_api, tmp_path):
    from flows.ingest import ingest_batch

    page = blank_page(tmp_path / "scan.png")
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    first = ingest_batch([str(page)], db=db)
    blank_page(page, shade=250)  # the same name, other bytes
    second = ingest_batch([str(page)], db=db)
    assert (first.added, second.added) == (1, 1)
    rows = queue_rows(db)
    assert [(Path(name).name, number, kind) for name, number, _, kind, _ in rows] == [
        ("scan.png", 1, "blank_page"), ("scan.png", 1, "blank_page")]


def formscan_ingest(*args: str) -> subprocess.Popen:
    """`formscan ingest` as a user runs it: Prefect's local server, started by the command."""
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return subprocess.Popen([sys.executable, "-m", "formscan", "ingest", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def local_servers_of(pid: int) -> list[int]:
    """The Prefect local servers (uvicorn) that process ``pid`` started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"uvicorn" in command:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_run_killed_mid_batch_and_run_again_has_every_page_exactly_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    args = [str(SCANS / "batch-3.pdf"), str(SCANS / "seed-3.pdf"), "--db", db, "--workers", "1"]
    run = formscan_ingest(*args)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            if (tmp_path / "queue.db").exists() and _page_count(db):
                break
            time.sleep(0.2)
        assert run.poll() is None, f"the run ended before it could be killed:\n{run.communicate()[1]}"
        servers = local_servers_of(run.pid)
        assert servers, "formscan ingest runs Prefect's local server"
        run.send_signal(signal.SIGKILL)  # kill -9 of the command alone
    finally:
        run.wait(timeout=60)
        run.stdout.close()
        run.stderr.close()
    landed = queue_rows(db)
    assert 1 <= len(landed) < 4
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in servers), "the local Prefect server outlived the killed command"

    rerun = formscan_ingest(*args)
    _, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    rows = queue_rows(db)
    assert sorted((Path(name).name, number) for name, number, *_ in rows) == [
        ("batch-3.pdf", 1), ("batch-3.pdf", 2), ("batch-3.pdf", 3), ("seed-3.pdf", 1)]
    assert set(landed) <= set(rows)  # what landed before the kill was kept, not stored again
    assert f"{len(landed)} already in the queue" in stderr
    assert "left running by a process that is gone; marked Crashed" in stderr  # the killed run's flow run


def _page_count(db: str) -> int:
    try:
        return len(queue_rows(db))
    except Exception:  # noqa: BLE001 - the database is still being created
        return 0

