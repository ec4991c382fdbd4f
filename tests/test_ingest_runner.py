"""`formscan ingest` and `formscan schedule --once` read through the supervised page pool:
a page that crashes or hangs its worker is recorded and the batch goes on, SIGTERM stops a
run cleanly, a new file's pages all land, and ingest stores what extract writes.

Pages that crash or hang are stand-ins patched into the command run in this process: its
workers are forked, so they run the patch. Everything else is the real pipeline."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from test_ingest_flow import formscan_ingest, queue_rows

import formscan.pool
from formscan.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCANS = ROOT / "fixtures" / "scans"
DEPARTMENT = ROOT / "fixtures" / "department" / "scans"


def page_image(shade: int) -> Image.Image:
    return Image.fromarray(np.full((800, 600), shade, dtype=np.uint8))


def pdf_of(path: Path, *shades: int) -> Path:
    """A PDF of blank pages, its bytes told apart by the pages' shades."""
    first, *rest = [page_image(shade) for shade in shades]
    first.save(path, save_all=True, append_images=rest, resolution=200)
    return path


@pytest.fixture
def pages_read(tmp_path, monkeypatch):
    """The pool's page function, except that a file named poison* kills its worker as a segfault
    in a native library would and hang* never returns; every page handed out is logged."""
    log = tmp_path / "pages-read.log"
    real = formscan.pool.read_page

    def read_page(job, reader, work, settings):
        with log.open("a") as out:
            out.write(f"{Path(job.file).name}:{job.page}\n")
        if Path(job.file).name.startswith("poison"):
            faulthandler.disable()  # pytest's dump of the worker's stack is noise here
            os.kill(os.getpid(), signal.SIGSEGV)
        if Path(job.file).name.startswith("hang"):
            time.sleep(600)
        return real(job, reader, work, settings)

    monkeypatch.setattr(formscan.pool, "read_page", read_page)
    return lambda: log.read_text().split() if log.exists() else []


def rows_by_name(db: str) -> dict[tuple[str, int], tuple[str, str | None]]:
    return {(Path(name).name, number): (status, kind) for name, number, status, kind, _ in queue_rows(db)}


def test_a_page_that_crashes_its_worker_is_recorded_and_never_read_again_unless_asked(
        prefect_api, tmp_path, pages_read, capsys):
    poison = pdf_of(tmp_path / "poison.pdf", 250)
    after = [pdf_of(tmp_path / "after-1.pdf", 251), pdf_of(tmp_path / "after-2.pdf", 252, 253)]
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    args = ["ingest", str(poison), *map(str, after), "--db", db, "--workers", "1"]

    assert main(args) == 0
    rows = rows_by_name(db)
    assert rows[("poison.pdf", 1)] == ("error", "crashed")
    assert rows[("after-1.pdf", 1)] == rows[("after-2.pdf", 2)] == ("error", "blank_page")
    assert len(rows) == 4
    assert "poison.pdf page 1: crashed" in capsys.readouterr().err

    assert main(args) == 0  # the rerun neither dies on it nor reads it again
    assert pages_read().count("poison.pdf:1") == 1
    assert rows_by_name(db) == rows

    assert main([*args, "--retry-failed"]) == 0  # asked: read again, and recorded again
    assert pages_read().count("poison.pdf:1") == 2
    assert rows_by_name(db) == rows


def test_a_page_that_hangs_is_recorded_as_timeout_at_the_page_timeout(prefect_api, tmp_path, pages_read):
    hang = pdf_of(tmp_path / "hang.pdf", 250)
    after = pdf_of(tmp_path / "after.pdf", 251)
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    started = time.monotonic()
    assert main(["ingest", str(hang), str(after), "--db", db, "--workers", "1", "--page-timeout", "5"]) == 0
    assert time.monotonic() - started < 120
    assert rows_by_name(db) == {("hang.pdf", 1): ("error", "timeout"), ("after.pdf", 1): ("error", "blank_page")}


def test_six_new_two_page_files_land_all_twelve_pages_on_the_first_run(prefect_api, tmp_path):
    files = [pdf_of(tmp_path / f"two-page-{i}.pdf", 200 + 2 * i, 201 + 2 * i) for i in range(6)]
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    assert main(["ingest", *map(str, files), "--db", db, "--workers", "2"]) == 0
    assert sorted(rows_by_name(db)) == sorted((f"two-page-{i}.pdf", n) for i in range(6) for n in (1, 2))


def test_the_inbox_pass_reads_through_the_pool_and_records_a_crash(prefect_api, tmp_path, pages_read):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pdf_of(inbox / "poison.pdf", 250)
    pdf_of(inbox / "good.pdf", 251)
    old = time.time() - 3600
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    assert main(["schedule", "--once", "--inbox", str(inbox), "--db", db, "--workers", "1"]) == 0
    assert rows_by_name(db) == {("poison.pdf", 1): ("error", "crashed"), ("good.pdf", 1): ("error", "blank_page")}
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["good.pdf", "poison.pdf"]  # no form in either
    # The queue names each file where it is now, and keeps the name it came in with.
    assert sorted(Path(name).parent.name for name, *_ in queue_rows(db)) == ["failed", "failed"]
    engine = create_engine(db)
    with engine.connect() as connection:
        histories = [json.loads(names) for (names,) in connection.execute(text("SELECT names FROM documents"))]
    engine.dispose()
    assert sorted([entry["how"] for entry in history] for history in histories) == [["given", "moved"]] * 2
    assert all(history[0]["name"] == str(inbox / Path(history[1]["name"]).name) for history in histories)


def test_extract_and_ingest_store_the_same_records_and_flags_a_department_form_included(prefect_api, tmp_path):
    files = [str(SCANS / "seed-2.pdf"), str(DEPARTMENT / "department-1.pdf")]
    extracted, exported = tmp_path / "extract.jsonl", tmp_path / "export.jsonl"
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    assert main(["extract", *files, "-o", str(extracted), "--workers", "2", "-q"]) == 0
    assert main(["ingest", *files, "--db", db, "--workers", "2", "--audit-rate", "0", "-q"]) == 0
    assert main(["export", "--format", "jsonl", "-o", str(exported), "--db", db]) == 0

    def by_page(path: Path) -> dict:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return {(Path(line["source"]["file"]).name, line["source"]["page"]): line for line in lines}

    from_extract, from_queue = by_page(extracted), by_page(exported)
    assert set(from_extract) == set(from_queue) == {("seed-2.pdf", 1), ("department-1.pdf", 1)}
    for key, line in from_extract.items():
        assert from_queue[key]["record"] == line["record"], key
        assert from_queue[key]["flags"] == line["flags"], key
    department = from_queue[("department-1.pdf", 1)]["record"]
    assert department["form_type"] == "department_performance_self_evaluation"


def test_sigterm_stops_a_run_and_the_next_run_finishes_the_batch_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    args = [str(SCANS / "batch-3.pdf"), str(SCANS / "seed-4.pdf"), "--db", db, "--workers", "1",
            "--page-timeout", "120"]
    run = formscan_ingest(*args)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            if (tmp_path / "queue.db").exists() and _stored(db):
                break
            time.sleep(0.2)
        assert run.poll() is None, f"the run ended before it could be stopped:\n{run.communicate()[1]}"
        run.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        _, stderr = run.communicate(timeout=150)
        assert time.monotonic() - stopped_at < 120  # within the page deadline
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stderr
    assert "run the same command again" in stderr
    landed = queue_rows(db)
    assert 1 <= len(landed) < 4

    rerun = formscan_ingest(*args)
    _, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    rows = queue_rows(db)
    assert sorted((Path(name).name, number) for name, number, *_ in rows) == [
        ("batch-3.pdf", 1), ("batch-3.pdf", 2), ("batch-3.pdf", 3), ("seed-4.pdf", 1)]
    assert set(landed) <= set(rows)


def _stored(db: str) -> int:
    try:
        return len(queue_rows(db))
    except Exception:  # noqa: BLE001 - the database is still being created
        return 0


def test_a_page_another_ingest_stored_meanwhile_is_not_read_again(prefect_api, tmp_path, monkeypatch, capsys):
    """Two ingests over the same files: what one stores while the other runs, the other skips."""
    shared = pdf_of(tmp_path / "shared.pdf", 250, 251)
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    log = tmp_path / "pages-read.log"
    real = formscan.pool.read_page

    def read_page(job, reader, work, settings):
        with log.open("a") as out:
            out.write(f"{job.page}\n")
        if job.page == 1:  # meanwhile, another ingest stores page 2
            from models import PageResult, SourceRef
            from pipeline.extract import PageExtraction
            from pipeline.read import file_sha256
            from review.ingest import new_batch, store_extraction
            from review.store import open_store

            other = open_store(db, tmp_path / "store")
            page_2 = PageExtraction(PageResult(source=SourceRef(file=job.file, page=2), error=None,
                                               status=None, record=None))
            store_extraction(other, new_batch(other, "other", [job.file]), job.file, file_sha256(job.file), 2, page_2)
            other.close()
        return real(job, reader, work, settings)

    monkeypatch.setattr(formscan.pool, "read_page", read_page)
    assert main(["ingest", str(shared), "--db", db, "--store", str(tmp_path / "store"), "--workers", "1"]) == 0
    assert log.read_text().split() == ["1"]
    assert sorted(rows_by_name(db)) == [("shared.pdf", 1), ("shared.pdf", 2)]
    said = capsys.readouterr().err
    assert "1 pages added" in said and "1 already in the queue" in said
