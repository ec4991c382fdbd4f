"""The extract flow: one task per page, pages in parallel on a bounded thread pool.

A page is one task (not one per cell) so Prefect's per-task overhead stays small
next to the page's OCR. tesserocr and onnxruntime release the GIL, so threads
give real parallelism; each thread keeps its own engines.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from models import PageError, PageResult, SourceRef
from pipeline.errors import FormscanError
from pipeline.extract import extract_page
from pipeline.ocr import CellReader
from pipeline.read import count_pages, list_documents, read_pages

_engines = threading.local()


def _reader() -> CellReader:
    if getattr(_engines, "reader", None) is None:
        _engines.reader = CellReader()
    return _engines.reader


@task(name="extract-page", retries=1, retry_delay_seconds=2)
def extract_page_task(path: str, number: int) -> PageResult:
    try:
        page = next(read_pages(path, [number]))
    except FormscanError as exc:
        return PageResult(source=SourceRef(file=path, page=number), error=PageError(kind=exc.kind, message=exc.detail))
    return extract_page(page, _reader())


@flow(name="formscan-extract", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def extract_flow(paths: list[str], output: str) -> dict[str, int]:
    """Extract every page of ``paths`` into the JSONL file ``output``; returns counts by status."""
    futures = []
    results: list[PageResult] = []
    for document in list_documents(paths):
        try:
            n = count_pages(document)
        except FormscanError as exc:
            results.append(
                PageResult(source=SourceRef(file=str(document)), error=PageError(kind=exc.kind, message=exc.detail))
            )
            continue
        futures.extend(extract_page_task.submit(str(document), number) for number in range(1, n + 1))
    results.extend(future.result() for future in futures)
    counts: dict[str, int] = {}
    with Path(output).open("w", encoding="utf-8") as out:
        for result in results:
            out.write(result.to_json_line() + "\n")
            key = result.status.value if result.status else "error"
            counts[key] = counts.get(key, 0) + 1
    return counts
