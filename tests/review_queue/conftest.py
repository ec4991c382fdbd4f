"""Fixtures of the review-queue tests: real OCR once per worker, SQLite and a real PostgreSQL.

OCR is the slow part (~5 s a page), so two fixture pages are extracted once per
pytest worker with the real engines, and every cell reading is memoised: a later
ingest of the same page runs the whole pipeline again but reads no cell twice.
PostgreSQL is started by ``scripts/postgres.sh`` (Debian's binaries, 127.0.0.1, a
free port) once per worker and stopped by its PID; missing binaries fail the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from models import Flag, FormRecord, PageStatus
from pipeline.extract import PageExtraction, extract_page_full
from pipeline.lexicon import Lexicon
from pipeline.ocr import CellReader
from pipeline.read import read_pages
from review import auth
from pipeline.validate import rule_flags
from review.ingest import file_sha256, store_extraction
from review.queue import OCR_REASONS
from review.store import Batch, open_store
from review_queue.review_support import (
    CLEAN_PDF,
    FLAGGED_PDF,
    MISREAD_RATE,
    MISREAD_TOTAL,
    PASSWORDS,
    ROOT,
    CachingReader,
    Queue,
)

@pytest.fixture(scope="session")
def ocr_reader() -> Iterator[CachingReader]:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    reader = CellReader()
    yield CachingReader(reader)
    reader.close()


@pytest.fixture(scope="session")
def extractions(ocr_reader: CachingReader) -> dict[str, PageExtraction]:
    """The two fixture pages, extracted for real: {"flagged": ..., "clean": ...}."""
    found = {}
    for name, pdf in (("flagged", FLAGGED_PDF), ("clean", CLEAN_PDF)):
        page = next(iter(read_pages(pdf, [1])))
        found[name] = extract_page_full(page, ocr_reader, Lexicon.builtin())
    assert not found["clean"].result.flags, found["clean"].result.flags
    return found


@pytest.fixture(scope="session")
def flagged_extraction(extractions: dict[str, PageExtraction]) -> PageExtraction:
    """seed-1 as read, with two misreadings the form's rules catch: 执行率 99.55 read as 95.5 and
    总分 得分 100 read as 90. So the page has rule flags with known proposals, whatever OCR flags it has."""
    real = extractions["flagged"]
    # The record is the page's ground truth, so these tests do not move with OCR accuracy;
    # the cells, readings and OCR flags are what the engines really produced.
    truth_file = ROOT / "fixtures" / "truth" / "seed-1.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8"))["pages"][0]["record"]
    record = FormRecord.model_validate({key: value for key, value in truth.items() if key in FormRecord.model_fields})
    assert (record.funds[0].execution_rate, record.total_score) == (99.55, 100.0)
    record.funds[0].execution_rate, record.total_score = MISREAD_RATE, MISREAD_TOTAL
    flags: dict[tuple[str, str], Flag] = {}
    for flag in [f for f in real.result.flags if f.reason in OCR_REASONS] + list(rule_flags(record)):
        flags.setdefault((flag.field, flag.reason), flag)
    result = real.result.model_copy(update={"record": record, "flags": list(flags.values()),
                                            "status": PageStatus.NEEDS_REVIEW})
    return replace(real, result=result)


# --- databases --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL cluster for this worker; stopped by its PID at the end."""
    parent = Path(tempfile.mkdtemp(prefix="formscan-pg-"))
    parent.chmod(0o755)  # the cluster runs as user postgres when we are root
    done = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(parent / "cluster")],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"PostgreSQL did not start (apt-get install postgresql):\n{done.stderr}"
    exported = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    pid = int(exported["FORMSCAN_POSTGRES_PID"])
    # If this worker dies before its teardown (killed, os._exit), the watchdog still stops the cluster.
    watchdog = subprocess.Popen(
        ["bash", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; kill -INT {pid}; "
                       f"while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; rm -rf '{parent}'"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield exported["FORMSCAN_POSTGRES_URL"]
    finally:
        watchdog.kill()
        watchdog.wait()
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty queue database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def queue(db_url: str, tmp_path: Path, extractions: dict[str, PageExtraction],
          flagged_extraction: PageExtraction) -> Iterator[Queue]:
    store = open_store(db_url, tmp_path / "store")
    with store.transaction() as session:
        batch = Batch(name="fixtures")
        session.add(batch)
        session.flush()
        batch_id = batch.id
        for name, password in PASSWORDS.items():
            auth.set_password(session, name, password)
        token = auth.create_api_token(session, "alice")
    ids = {}
    for name, pdf, extraction in (("flagged", FLAGGED_PDF, flagged_extraction),
                                  ("clean", CLEAN_PDF, extractions["clean"])):
        stored = store_extraction(store, batch_id, str(pdf.relative_to(ROOT)), file_sha256(pdf), 1,
                                  extraction, audit_rate=1.0)
        ids[name] = stored.id
    yield Queue(store, ids["flagged"], ids["clean"], token)
    store.close()
