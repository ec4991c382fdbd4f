"""Pages read in worker processes, each page under a deadline, the batch always going on.

Each worker loads the OCR engines once, then reads one page at a time. The parent
enforces ``page_timeout``: a page still running at its deadline is reported as a
``timeout`` and its worker is killed together with any poppler process it started
(each worker leads its own process group), then replaced by a fresh worker. A
stuck native call (poppler, onnxruntime, Tesseract) cannot be interrupted from
inside the process, so killing it is the only reliable way. A worker that dies
on its own (a crash in a native library, the OOM killer) gives its page a
``crashed`` line and is replaced the same way. Results come out in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from pipeline.errors import FormscanError, InternalError, PageTimeoutError, WorkerCrashError
from pipeline.read import MAX_PIXELS

Item = tuple[str, int]  # (file, 1-based page)
READY = "ready"
MAX_FAILED_STARTS = 3  # workers dying before they are ready: the engines cannot load, stop trying


def extract_lines(item: Item, reader, max_pixels: int = MAX_PIXELS, templates: tuple[str, ...] = ()) -> str:
    """JSON line(s) for one page; an unexpected exception becomes an ``internal`` error line.
    ``templates``: names of the forms the page may be (none: the project form alone)."""
    from pipeline.extract import error_result, extract_document
    from pipeline.templates import get_template

    path, number = item
    try:
        forms = [get_template(name) for name in templates] or None
        return "\n".join(
            result.to_json_line()
            for result in extract_document(path, reader, [number], max_pixels=max_pixels, templates=forms)
        )
    except Exception as exc:  # a bug must not end the batch: the page gets a line that names it
        error = InternalError(f"{type(exc).__name__}: {exc}", file=path, page=number)
        return error_result(error, path, number).to_json_line()


def _worker_main(conn: Connection, max_pixels: int, templates: tuple[str, ...] = ()) -> None:
    os.setpgrp()  # the parent kills this group: the worker and the pdftoppm it may be waiting on
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from pipeline.ocr import CellReader

    reader = CellReader()
    conn.send(READY)
    while True:
        item = conn.recv()
        if item is None:
            return
        conn.send(extract_lines(item, reader, max_pixels, templates))


def _error_line(error: FormscanError, item: Item) -> str:
    from pipeline.extract import error_result

    return error_result(error, item[0], item[1]).to_json_line()


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
    """``run(items)`` yields ``(item, json_lines)`` in input order; never raises for a page."""

    def __init__(
        self, workers: int, *, max_pixels: int = MAX_PIXELS, page_timeout: float | None = None,
        templates: tuple[str, ...] = (),
    ):
        self.size = max(1, workers)
        self.max_pixels = max_pixels
        self.templates = tuple(templates)
        self.page_timeout = page_timeout or None
        self._context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._workers: list[_Worker] = []
        self._failed_starts = 0

    def _start_worker(self) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child_end, self.max_pixels, self.templates),
                                        daemon=True)
        process.start()
        child_end.close()
        self._workers.append(_Worker(process, parent_end))

    def _retire(self, worker: _Worker, replace: bool) -> None:
        worker.kill()
        self._workers.remove(worker)
        if replace:
            self._start_worker()

    def run(self, items: list[Item]) -> Iterator[tuple[Item, str]]:
        pending = deque(enumerate(items))
        done: dict[int, str] = {}
        next_out = 0
        for _ in range(min(self.size, len(items))):
            self._start_worker()
        try:
            while next_out < len(items):
                self._dispatch(pending)
                self._collect(items, pending, done)
                while next_out in done:
                    yield items[next_out], done.pop(next_out)
                    next_out += 1
        finally:
            self.close()

    def _dispatch(self, pending: deque) -> None:
        for worker in self._workers:
            if worker.ready and worker.index is None and pending:
                worker.index, item = pending.popleft()
                try:
                    worker.conn.send(item)
                except OSError:  # it died since it said ready: _collect finds its pipe closed and replaces it
                    pending.appendleft((worker.index, item))
                    worker.index = None
                    continue
                worker.deadline = time.monotonic() + self.page_timeout if self.page_timeout else None

    def _collect(self, items: list[Item], pending: deque, done: dict[int, str]) -> None:
        deadlines = [w.deadline for w in self._workers if w.deadline is not None]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for conn in wait([w.conn for w in self._workers], wait_s):
            worker = next(w for w in self._workers if w.conn is conn)
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the worker died
                self._worker_died(worker, items, pending, done)
                continue
            if message == READY:
                worker.ready, self._failed_starts = True, 0
            else:
                done[worker.index] = message
                worker.index = worker.deadline = None
        now = time.monotonic()
        for worker in [w for w in self._workers if w.deadline is not None and now >= w.deadline]:
            item = items[worker.index]
            done[worker.index] = _error_line(
                PageTimeoutError(
                    f"reading the page took longer than {self.page_timeout:g} s (--page-timeout); "
                    "it was stopped and the batch went on",
                    file=item[0],
                    page=item[1],
                ),
                item,
            )
            self._retire(worker, replace=True)

    def _worker_died(self, worker: _Worker, items: list[Item], pending: deque, done: dict[int, str]) -> None:
        worker.process.join(2)  # the pipe closes just before the process can be reaped
        code = worker.process.exitcode
        if worker.index is not None:
            item = items[worker.index]
            done[worker.index] = _error_line(
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
                done[index] = _error_line(
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
