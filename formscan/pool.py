"""The one way any command reads a page: worker processes, each page under a deadline,
the batch always going on.

``formscan extract``, ``formscan tables``, ``formscan ingest``, the scheduled inbox run and
the deployed flow all hand their pages to a ``PagePool``. Each worker loads the OCR engines
once, then reads one page at a time with ``read_page``. The parent enforces the page
deadline: a page still running at it is reported as a ``timeout`` and its worker is killed
together with any poppler process it started (each worker leads its own process group),
then replaced by a fresh worker. A stuck native call (poppler, onnxruntime, Tesseract)
cannot be interrupted from inside the process, so killing it is the only reliable way. A
worker that dies on its own (a crash in a native library, the OOM killer) gives its page a
``crashed`` result and is replaced the same way. Results come out in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import FormscanError, InternalError, PageTimeoutError, WorkerCrashError
from pipeline.read import MAX_PIXELS

if TYPE_CHECKING:
    from models import PageTables
    from pipeline.extract import PageExtraction
    from pipeline.lexicon import Lexicon

    PageRead = PageExtraction | PageTables

Item = tuple[str, int]  # (file, 1-based page)
READY = "ready"
MAX_FAILED_STARTS = 3  # workers dying before they are ready: the engines cannot load, stop trying
DEFAULT_PAGE_TIMEOUT_S = 300.0  # a page normally takes seconds; this only catches a stuck one


class PageWork(StrEnum):
    """What reading a page gives back."""

    RECORD = "record"  # the form's record and flags (formscan extract)
    QUEUE = "queue"  # that, with the page image, cells and evidence a reviewer needs (ingest)
    TABLES = "tables"  # every ruled table on the page (formscan tables)


class ReadSettings(BaseModel):
    """How pages are read, the same for every command and with the same defaults."""

    model_config = ConfigDict(frozen=True)

    workers: int = Field(0, ge=0, description="worker processes; 0: one per core")
    page_timeout: float | None = Field(DEFAULT_PAGE_TIMEOUT_S, gt=0, description="seconds; None: no limit")
    max_pixels: int = Field(MAX_PIXELS, ge=1, description="a larger page is refused as too_large, unrendered")
    max_pages_per_file: int | None = Field(None, ge=1, description="a longer file is refused as too_many_pages")
    templates: tuple[str, ...] = Field((), description="the forms a page may be; (): every installed template")

    def worker_count(self, pages: int) -> int:
        return max(1, min(self.workers or os.cpu_count() or 1, pages or 1))


@dataclass(frozen=True)
class PageJob:
    """One page to read, with the lexicon to read it with (the queue's, as reviewers left it)."""

    file: str
    page: int
    lexicon: Lexicon | None = None


def read_page(job: PageJob, reader, work: PageWork, settings: ReadSettings) -> PageRead:
    """Read one page: never raises for a bad page (it gets an error result)."""
    from pipeline.extract import PageExtraction, extract_page_full
    from pipeline.read import read_pages
    from pipeline.tables import read_page_tables

    try:
        (page,) = read_pages(job.file, [job.page], max_pixels=settings.max_pixels)
    except FormscanError as exc:
        return failed_page(work, exc, (job.file, job.page))
    if work is PageWork.TABLES:
        return read_page_tables(page, reader)
    extraction = extract_page_full(page, reader, job.lexicon, _forms(settings.templates))
    return extraction if work is PageWork.QUEUE else PageExtraction(extraction.result)


@cache
def _forms(names: tuple[str, ...]) -> list:
    """The templates a page may be, looked up once per worker: the named ones, else every installed one."""
    from pipeline.templates import get_template, template_names

    return [get_template(name) for name in names or template_names()]


def failed_page(work: PageWork, error: FormscanError, item: Item) -> PageRead:
    """The result of a page that could not be read: for a form, an error result; for tables, a page without any."""
    from models import PageError, PageTables, SourceRef
    from pipeline.extract import PageExtraction, error_result

    if work is PageWork.TABLES:
        return PageTables(source=SourceRef(file=item[0], page=error.page or item[1]),
                          error=PageError(kind=error.kind, message=error.detail))
    return PageExtraction(error_result(error, item[0], item[1]))


def _worker_main(conn: Connection, work: PageWork, settings: ReadSettings) -> None:
    os.setpgrp()  # the parent kills this group: the worker and the pdftoppm it may be waiting on
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited through fork: SIGTERM ends it
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from pipeline.ocr import CellReader

    reader = CellReader()
    conn.send(READY)
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(read_page(job, reader, work, settings))
        except Exception as exc:  # noqa: BLE001 - a bug must not end the batch: the page gets a result naming it
            error = InternalError(f"{type(exc).__name__}: {exc}", file=job.file, page=job.page)
            conn.send(failed_page(work, error, (job.file, job.page)))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    index: int | None = None  # the page it is reading, by input position
    deadline: float | None = None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # not yet its own group leader, or already gone
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class PagePool:
    """``run(items)`` yields ``(item, PageRead)`` in input order; never raises for a page.

    ``lexicon``: asked as each page is handed out, so the pages of a long batch read with what
    reviewers have taught meanwhile. ``done_elsewhere``: asked then too; a page it says is done
    (another run stored it meanwhile) is not read, and yields ``(item, None)``."""

    def __init__(self, work: PageWork, settings: ReadSettings,
                 lexicon: Callable[[], Lexicon | None] | None = None,
                 done_elsewhere: Callable[[Item], bool] | None = None):
        self.work, self.settings, self.lexicon, self.done_elsewhere = work, settings, lexicon, done_elsewhere
        self.page_timeout = settings.page_timeout
        self._context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._workers: list[_Worker] = []
        self._failed_starts = 0

    def _start_worker(self) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child_end, self.work, self.settings), daemon=True)
        process.start()
        child_end.close()
        self._workers.append(_Worker(process, parent_end))

    def _retire(self, worker: _Worker, replace: bool) -> None:
        worker.kill()
        self._workers.remove(worker)
        if replace:
            self._start_worker()

    def run(self, items: list[Item]) -> Iterator[tuple[Item, PageRead | None]]:
        pending = deque(enumerate(items))
        done: dict[int, PageRead | None] = {}
        next_out = 0
        for _ in range(self.settings.worker_count(len(items)) if items else 0):
            self._start_worker()
        try:
            while next_out < len(items):
                self._dispatch(pending, done)
                if next_out not in done:  # else the next result is there already: nothing to wait for
                    self._collect(items, pending, done)
                while next_out in done:
                    yield items[next_out], done.pop(next_out)
                    next_out += 1
        finally:
            self.close()

    def _dispatch(self, pending: deque, done: dict[int, PageRead | None]) -> None:
        for worker in self._workers:
            while worker.ready and worker.index is None and pending and self.done_elsewhere \
                    and self.done_elsewhere(pending[0][1]):
                index, _item = pending.popleft()
                done[index] = None
            if worker.ready and worker.index is None and pending:
                worker.index, item = pending.popleft()
                try:
                    worker.conn.send(PageJob(item[0], item[1], self.lexicon() if self.lexicon else None))
                except OSError:  # it died since it said ready: _collect finds its pipe closed and replaces it
                    pending.appendleft((worker.index, item))
                    worker.index = None
                    continue
                worker.deadline = time.monotonic() + self.page_timeout if self.page_timeout else None

    def _collect(self, items: list[Item], pending: deque, done: dict[int, PageRead | None]) -> None:
        deadlines = [w.deadline for w in self._workers if w.deadline is not None]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for conn in wait([w.conn for w in self._workers], wait_s):
            worker = next(w for w in self._workers if w.conn is conn)
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the worker died
                self._worker_died(worker, items, pending, done)
                continue
            if isinstance(message, str) and message == READY:
                worker.ready, self._failed_starts = True, 0
            else:
                done[worker.index] = message
                worker.index = worker.deadline = None
        now = time.monotonic()
        for worker in [w for w in self._workers if w.deadline is not None and now >= w.deadline]:
            item = items[worker.index]
            done[worker.index] = failed_page(
                self.work,
                PageTimeoutError(
                    f"reading the page took longer than {self.page_timeout:g} s (--page-timeout); "
                    "it was stopped and the batch went on",
                    file=item[0],
                    page=item[1],
                ),
                item,
            )
            self._retire(worker, replace=True)

    def _worker_died(self, worker: _Worker, items: list[Item], pending: deque, done: dict[int, PageRead | None]) -> None:
        worker.process.join(2)  # the pipe closes just before the process can be reaped
        code = worker.process.exitcode
        if worker.index is not None:
            item = items[worker.index]
            done[worker.index] = failed_page(
                self.work,
                WorkerCrashError(f"the process reading the page died (exit code {code})", file=item[0], page=item[1]),
                item,
            )
        if not worker.ready:
            self._failed_starts += 1
        if self._failed_starts < MAX_FAILED_STARTS:
            self._retire(worker, replace=True)
            return
        self._retire(worker, replace=False)
        if not self._workers:  # nothing can read pages: every page left gets a line saying so
            while pending:
                index, item = pending.popleft()
                done[index] = failed_page(
                    self.work,
                    WorkerCrashError(
                        f"no worker process could start (the last exited with code {code})",
                        file=item[0],
                        page=item[1],
                    ),
                    item,
                )

    def close(self) -> None:
        """Idle workers are asked to stop; busy ones (an interrupted run) and ones still loading are killed."""
        stopping = []
        for worker in self._workers:
            if worker.ready and worker.index is None:
                try:
                    worker.conn.send(None)
                    stopping.append(worker)
                    continue
                except OSError:
                    pass
            worker.kill()
        deadline = time.monotonic() + 5
        for worker in stopping:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.kill()
            else:
                worker.conn.close()
        self._workers.clear()
