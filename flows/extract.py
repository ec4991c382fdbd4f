"""The extract flow: one task per page, pages in parallel on a bounded thread pool.

A page is one task (not one per cell) so Prefect's per-task overhead stays small
next to the page's OCR. tesserocr and onnxruntime release the GIL, so threads
give real parallelism; each thread keeps its own engines (``flows.resources``).
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from models import PageResult
from flows.resources import thread_reader
from pipeline.extract import extract_document, plan_pages


@task(name="extract-page", retries=1, retry_delay_seconds=2)
def extract_page_task(path: str, number: int) -> PageResult:
    (result,) = extract_document(path, thread_reader(), [number])
    return result


@flow(name="formscan-extract", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def extract_flow(paths: list[str], output: str) -> dict[str, int]:
    """Extract every page of ``paths`` into the JSONL file ``output``; returns counts by status."""
    pages, results = plan_pages(paths)
    futures = [extract_page_task.submit(path, number) for path, number in pages]
    results.extend(future.result() for future in futures)
    counts: dict[str, int] = {}
    with Path(output).open("w", encoding="utf-8") as out:
        for result in results:
            out.write(result.to_json_line() + "\n")
            key = result.status.value if result.status else "error"
            counts[key] = counts.get(key, 0) + 1
    return counts
