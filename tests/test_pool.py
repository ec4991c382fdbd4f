"""The worker pool of `formscan extract`: a stuck, crashing or buggy page costs only its own line.

Workers are forked, so the stand-ins patched in here (no OCR engines, pages that hang or die)
are what the workers run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

import pipeline.extract
import pipeline.ocr
from formscan.pool import PagePool
from models import PageError, PageResult, SourceRef


class NoEngines:
    """The workers' OCR engines, not needed by the stand-in pages."""


def misbehaving_pages(tmp_path):
    def extract_document(path, reader, numbers, *, max_pixels, templates=None):
        if "stuck" in path:
            # A stuck render: the worker waits on a child process that never ends.
            child = subprocess.Popen(["sleep", "600"])
            (tmp_path / "stuck-child.pid").write_text(str(child.pid))
            child.wait()
        if "crash" in path:
            os._exit(9)  # as a segfault in a native library or the OOM killer would end it
        if "bug" in path:
            raise ZeroDivisionError("a bug in a stage")
        yield PageResult(source=SourceRef(file=path, page=numbers[0]),
                         error=PageError(kind="blank_page", message=f"pid {os.getpid()}"))

    return extract_document


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.ocr, "CellReader", NoEngines)
    monkeypatch.setattr(pipeline.extract, "extract_document", misbehaving_pages(tmp_path))


def test_stuck_crashing_and_buggy_pages_get_their_own_lines_and_the_batch_goes_on(tmp_path, stand_ins):
    items = [("a.pdf", 1), ("stuck.pdf", 1), ("b.pdf", 1), ("crash.pdf", 2), ("bug.pdf", 3), ("c.pdf", 1)]
    started = time.monotonic()
    results = [(item, json.loads(lines)) for item, lines in PagePool(2, page_timeout=1.0).run(items)]
    assert [item for item, _ in results] == items  # in input order
    kinds = {item[0]: line["error"]["kind"] for item, line in results}
    assert kinds == {"a.pdf": "blank_page", "stuck.pdf": "timeout", "b.pdf": "blank_page",
                     "crash.pdf": "crashed", "bug.pdf": "internal", "c.pdf": "blank_page"}
    lines = dict(results)
    assert lines["bug.pdf", 3]["source"] == {"file": "bug.pdf", "page": 3}
    assert "ZeroDivisionError" in lines["bug.pdf", 3]["error"]["message"]
    assert "exit code 9" in lines["crash.pdf", 2]["error"]["message"]
    assert time.monotonic() - started < 30
    # The stuck worker was killed with the process it was waiting on.
    child = int((tmp_path / "stuck-child.pid").read_text())
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]


def test_no_page_is_stopped_without_a_timeout(tmp_path, stand_ins):
    results = list(PagePool(1, page_timeout=None).run([("a.pdf", 1), ("b.pdf", 2)]))
    assert [json.loads(lines)["error"]["kind"] for _, lines in results] == ["blank_page", "blank_page"]


def test_when_no_worker_can_start_every_page_says_so(monkeypatch):
    def engines_fail_to_load():
        os._exit(3)

    monkeypatch.setattr(pipeline.ocr, "CellReader", engines_fail_to_load)
    results = [json.loads(lines) for _, lines in PagePool(2).run([("a.pdf", 1), ("b.pdf", 1), ("c.pdf", 1)])]
    assert [line["error"]["kind"] for line in results] == ["crashed"] * 3
    assert all("no worker process could start" in line["error"]["message"] for line in results), results
