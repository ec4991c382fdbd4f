"""Prefect's cost per page task next to the page's own work (the issue's bound: under 10 %).

    .venv/bin/python -m bench.prefect_overhead [FILES...]     # default: the four seed forms

1. ingests the files into a fresh SQLite queue with one page thread: the page time (OCR and store);
2. runs the same ``ingest_page`` task again for those pages, many times, with the cache refreshed:
   the task body then only finds the page in the queue (a few ms), so the time is Prefect's own
   per-task work (task run, states, result persisted) plus that lookup.
Runs on Prefect's local server in a temporary PREFECT_HOME.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from flows.environment import configure_prefect

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", default=[str(ROOT / "fixtures" / "scans" / f"seed-{n}.pdf")
                                                     for n in range(1, 5)])
    parser.add_argument("--repeat", type=int, default=10, help="task runs per page in step 2 (default 10)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="formscan-overhead-"))
    configure_prefect(work)
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.ingest import ingest_batch, ingest_page, task_runner
    from pipeline.read import file_sha256

    db = f"sqlite:///{work / 'queue.db'}"
    summary = ingest_batch.with_options(task_runner=task_runner(1))(args.files, db=db, audit_rate=0.0)
    page_seconds = summary.seconds / max(summary.added, 1)

    pages = [(file_sha256(o.file), o.number, o.file) for o in summary.outcomes if o.number is not None]

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def tasks_only() -> float:
        fresh = ingest_page.with_options(refresh_cache=True)
        started = time.monotonic()
        futures = [fresh.submit(sha, number, name, db, None, summary.batch_id, 0.0)
                   for _ in range(args.repeat) for sha, number, name in pages]
        for future in futures:
            future.wait()
        return (time.monotonic() - started) / len(futures)

    task_seconds = tasks_only()
    print(f"{summary.added} pages, {page_seconds:.2f} s a page with one thread (engines' load included); "
          f"Prefect's task: {task_seconds * 1000:.0f} ms ({len(pages) * args.repeat} runs), "
          f"{task_seconds / page_seconds:.1%} of a page")


if __name__ == "__main__":
    main()
