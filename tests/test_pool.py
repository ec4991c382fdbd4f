"""The page pool every command reads with: a stuck, crashing or buggy page costs only its own result.

Workers are forked, so the stand-ins patched in here (no OCR engines, pages that hang or die)
are what the workers run.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import formscan.pool
import pipeline.ocr
from formscan.pool import PagePool, PageWork, ReadSettings, failed_page
from pipeline.errors import BlankPageError


class NoEngines:
    """The workers' OCR engines, not needed by the stand-in pages."""


def misbehaving_pages(tmp_path):
    def read_page(job, reader, work, settings):
        if "stuck" in job.file:
            # A stuck render: the worker waits on a child process that never ends.
            child = subprocess.Popen(["sleep", "600"])
            (tmp_path / "stuck-child.pid").write_text(str(child.pid))
            child.wait()
        if "crash" in job.file:
            os._exit(9)  # as a segfault in a native library or the OOM killer would end it
        if "bug" in job.file:
            raise ZeroDivisionError("a bug in a stage")
        said = f"pid {os.getpid()}, lexicon {job.lexicon}"
        return failed_page(work, BlankPageError(said, file=job.file, page=job.page), (job.file, job.page))

    return read_page


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.ocr, "CellReader", NoEngines)
    monkeypatch.setattr(formscan.pool, "read_page", misbehaving_pages(tmp_path))


def errors(pool: PagePool, items):
    return [(item, read.result.error) for item, read in pool.run(items)]


def test_stuck_crashing_and_buggy_pages_get_their_own_lines_and_the_batch_goes_on(tmp_path, stand_ins):
    items = [("a.pdf", 1), ("stuck.pdf", 1), ("b.pdf", 1), ("crash.pdf", 2), ("bug.pdf", 3), ("c.pdf", 1)]
    started = time.monotonic()
    pool = PagePool(PageWork.RECORD, ReadSettings(workers=2, page_timeout=1.0))
    results = [(item, read.result) for item, read in pool.run(items)]
    assert [item for item, _ in results] == items  # in input order
    kinds = {item[0]: result.error.kind for item, result in results}
    assert kinds == {"a.pdf": "blank_page", "stuck.pdf": "timeout", "b.pdf": "blank_page",
                     "crash.pdf": "crashed", "bug.pdf": "internal", "c.pdf": "blank_page"}
    by_item = dict(results)
    assert by_item["bug.pdf", 3].source.model_dump() == {"file": "bug.pdf", "page": 3}
    assert "ZeroDivisionError" in by_item["bug.pdf", 3].error.message
    assert "exit code 9" in by_item["crash.pdf", 2].error.message
    assert time.monotonic() - started < 30
    # The stuck worker was killed with the process it was waiting on.
    child = int((tmp_path / "stuck-child.pid").read_text())
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]


def test_no_page_is_stopped_without_a_timeout(tmp_path, stand_ins):
    pool = PagePool(PageWork.RECORD, ReadSettings(workers=1, page_timeout=None))
    assert [error.kind for _, error in errors(pool, [("a.pdf", 1), ("b.pdf", 2)])] == ["blank_page", "blank_page"]


def test_a_table_reading_crash_is_a_page_without_tables(tmp_path, stand_ins):
    pool = PagePool(PageWork.TABLES, ReadSettings(workers=1))
    (_item, page), = pool.run([("crash.pdf", 4)])
    assert page.tables == [] and page.error.kind == "crashed" and page.source.page == 4


def test_each_page_is_handed_the_lexicon_as_it_is_when_the_page_starts(tmp_path, stand_ins):
    taught = iter(["first", "second", "third"])
    pool = PagePool(PageWork.QUEUE, ReadSettings(workers=1), lexicon=lambda: next(taught))
    said = [error.message for _, error in errors(pool, [("a.pdf", 1), ("a.pdf", 2), ("a.pdf", 3)])]
    assert [message.rsplit(" ", 1)[-1] for message in said] == ["first", "second", "third"]


def test_when_no_worker_can_start_every_page_says_so(monkeypatch):
    def engines_fail_to_load():
        os._exit(3)

    monkeypatch.setattr(pipeline.ocr, "CellReader", engines_fail_to_load)
    pool = PagePool(PageWork.RECORD, ReadSettings(workers=2))
    results = [error for _, error in errors(pool, [("a.pdf", 1), ("b.pdf", 1), ("c.pdf", 1)])]
    assert [error.kind for error in results] == ["crashed"] * 3
    assert all("no worker process could start" in error.message for error in results), results


def test_a_page_done_elsewhere_meanwhile_is_not_read(tmp_path, stand_ins):
    asked = []

    def done_elsewhere(item):
        asked.append(item)
        return item[0] == "b.pdf"

    pool = PagePool(PageWork.RECORD, ReadSettings(workers=1), done_elsewhere=done_elsewhere)
    results = list(pool.run([("a.pdf", 1), ("b.pdf", 1), ("c.pdf", 1), ("b.pdf", 2)]))
    assert [item for item, _ in results] == [("a.pdf", 1), ("b.pdf", 1), ("c.pdf", 1), ("b.pdf", 2)]
    assert [read is None for _, read in results] == [False, True, False, True]
    assert {("a.pdf", 1), ("b.pdf", 1), ("c.pdf", 1), ("b.pdf", 2)} <= set(asked)


def test_a_batch_done_elsewhere_whole_ends_without_reading(tmp_path, stand_ins):
    pool = PagePool(PageWork.RECORD, ReadSettings(workers=2), done_elsewhere=lambda item: True)
    assert [read for _, read in pool.run([("a.pdf", 1), ("b.pdf", 1)])] == [None, None]
