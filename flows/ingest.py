"""Bulk ingest into the review queue as Prefect flows: one task per page, resumable and idempotent.

``ingest_batch`` plans the files (``pipeline.extract.plan_pages``), keys each by the sha256 of
its bytes, and runs one task per page, grouped by document, on a bounded task runner (threads
by default, or a Dask cluster). A task reads, extracts and stores its page in one transaction
(``review.ingest``), so a batch killed at any moment leaves whole pages, and run again it skips
them: task results are cached by content (the page's file hash and number, the queue, the
task's source; not the file's name) and persisted under ``$PREFECT_HOME``, and a page the queue
already holds is never read again. The queue, not the cache, has the last word: a page the
queue lacks runs even if a cached result says it was stored (the queue was reset, or is
another one), and at the end every planned page is looked up in the queue.

``ingest_inbox`` is the overnight pass: the new files of a folder through ``ingest_batch``,
then each moved to ``done/`` or ``failed/``, with a report.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from flows.resources import queue_store, thread_reader
from models import PageResult
from pipeline.errors import DuplicateFileError, FormscanError
from pipeline.extract import error_result, plan_pages
from pipeline.read import DOCUMENT_SUFFIXES, file_sha256
from pipeline.validate import LAYOUT_FAILED
from review.ingest import (
    DEFAULT_AUDIT_RATE,
    TRANSIENT_ERRORS,
    new_batch,
    pages_in_queue,
    read_for_queue,
    record_refused_file,
    refused_file_sha256,
    store_extraction,
)
from review.store import WHOLE_FILE, PageRow, database_url

NOT_STORED = "not_stored"  # the error kind of a page whose task failed even after its retries
SUMMARY_ARTIFACT, INBOX_ARTIFACT = "formscan-ingest-summary", "formscan-inbox-report"
DONE, FAILED, REPORTS = "done", "failed", "reports"  # the inbox's subfolders


# --- what a run says ----------------------------------------------------------------------

@dataclass(frozen=True)
class PageOutcome:
    """What became of one page, or of a file refused as a whole (``number`` None)."""

    file: str
    number: int | None
    added: bool  # stored by this run (False: the queue held it already, or it could not be stored)
    status: str | None = None  # when added: auto_accepted, needs_review, audit or error
    flagged: int = 0  # flagged fields
    error_kind: str | None = None
    error_message: str | None = None
    layout_failed: bool = False  # a form whose layout could not be mapped: a record of what could be, flagged

    @property
    def is_form(self) -> bool:
        return self.added and self.status not in (None, "error")

    @property
    def where(self) -> str:
        return self.file if self.number is None else f"{self.file} page {self.number}"


def _stored_outcome(file_name: str, number: int | None, row: PageRow) -> PageOutcome:
    return PageOutcome(file_name, number, added=True, status=row.status, flagged=len(row.flags),
                       error_kind=row.error_kind, error_message=row.error_message,
                       layout_failed=any(flag.get("reason") == LAYOUT_FAILED for flag in row.machine_flags or []))


@dataclass
class IngestSummary:
    pages: int  # pages planned (a file refused as a whole has none)
    outcomes: list[PageOutcome]
    missing: list[tuple[str, int]]  # planned pages the queue does not hold at the end
    seconds: float
    batch_id: int | None = None

    def _pages_added(self) -> list[PageOutcome]:
        return [o for o in self.outcomes if o.added and o.number is not None]

    @property
    def added(self) -> int:
        return len(self._pages_added())

    @property
    def already(self) -> int:
        return self.pages - self.added - len(self.missing)

    @property
    def forms(self) -> int:
        return sum(o.is_form for o in self.outcomes)

    @property
    def layout_failed(self) -> int:
        return sum(o.is_form and o.layout_failed for o in self.outcomes)

    @property
    def flagged(self) -> int:
        return sum(o.flagged for o in self.outcomes if o.added)

    @property
    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for outcome in self._pages_added():
            counts[outcome.status or "error"] += 1
        return dict(sorted(counts.items()))

    @property
    def failures(self) -> list[PageOutcome]:
        """Pages of this run that are no form, files refused as a whole, pages that could not be stored."""
        return [o for o in self.outcomes if o.error_kind]

    @property
    def pages_per_minute(self) -> float:
        return self.added / max(self.seconds, 1e-6) * 60

    def text(self) -> str:
        statuses = ", ".join(f"{n} {status}" for status, n in self.statuses.items()) or "nothing new"
        line = (f"{self.pages} pages in {self.seconds:.1f} s: {self.added} pages added ({statuses}), "
                f"{self.already} already in the queue; {self.forms} forms ({self.layout_failed} whose layout "
                f"failed), {self.flagged} flagged fields, "
                f"{len(self.failures)} failures, {self.pages_per_minute:.1f} pages/min")
        if self.missing:
            line += f"; {len(self.missing)} pages NOT in the queue: run the same command again"
        return line

    def markdown(self) -> str:
        lines = [
            "## formscan ingest",
            "",
            "| pages | added | already in the queue | forms | flagged fields | failures | not in the queue "
            "| pages per minute |",
            "|---|---|---|---|---|---|---|---|",
            f"| {self.pages} | {self.added} | {self.already} | {self.forms} | {self.flagged} | "
            f"{len(self.failures)} | {len(self.missing)} | {self.pages_per_minute:.1f} |",
        ]
        if self.statuses:
            lines += ["", "Added by status: " + ", ".join(f"{s} {n}" for s, n in self.statuses.items())]
        if self.failures:
            lines += ["", "### Failures", "", "| file | page | kind | message |", "|---|---|---|---|"]
            lines += [f"| {_cell(o.file)} | {o.number if o.number is not None else '—'} | {o.error_kind} | "
                      f"{_cell(o.error_message or '')} |" for o in self.failures]
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class IngestProgress(Protocol):
    """Told of a run's progress in this process (the command line's progress bar)."""

    def planned(self, pages: int) -> None: ...

    def finished(self, outcome: PageOutcome) -> None: ...


_progress: IngestProgress | None = None


@contextmanager
def reporting_progress(progress: IngestProgress) -> Iterator[None]:
    """Tell ``progress`` about the flows run in this process meanwhile (not a flow parameter:
    those must be serialisable)."""
    global _progress
    previous, _progress = _progress, progress
    try:
        yield
    finally:
        _progress = previous


# --- tasks --------------------------------------------------------------------------------

def is_transient(_task, _task_run, state) -> bool:
    """Retry only what another attempt can fix (the disk, the database); a bad page is recorded, not retried."""
    try:
        state.result()
    except TRANSIENT_ERRORS:
        return True
    except BaseException:  # noqa: BLE001 - any other failure is final
        return False
    return False


RETRIES = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
               retry_condition_fn=is_transient)
# The page's content and the queue make the key; the file's name and the batch do not, so a
# renamed copy or a rerun under another batch finds the result.
PAGE_CACHE = (INPUTS - "file_name" - "batch_id") + TASK_SOURCE


@task(name="ingest-page", task_run_name="{file_name} page {number}", cache_policy=PAGE_CACHE,
      persist_result=True, **RETRIES)
def ingest_page(sha256: str, number: int, file_name: str, db: str, store: str | None, batch_id: int | None,
                audit_rate: float) -> PageOutcome:
    """Read, extract and store one page in one transaction (skipped when the queue holds it)."""
    queue = queue_store(db, store)
    extraction = read_for_queue(queue, file_name, sha256, number, thread_reader)
    if extraction is None or batch_id is None:
        return PageOutcome(file_name, number, added=False)
    row = store_extraction(queue, batch_id, file_name, sha256, number, extraction, audit_rate)
    return PageOutcome(file_name, number, added=False) if row is None else _stored_outcome(file_name, number, row)


@task(name="record-refused-file", task_run_name="{file_name}", **RETRIES)
def record_refused(refused: PageResult, sha256: str, file_name: str, db: str, store: str | None,
                   batch_id: int) -> PageOutcome:
    row = record_refused_file(queue_store(db, store), batch_id, refused, sha256)
    return _refused_outcome(refused, added=row is not None)


def _refused_outcome(refused: PageResult, added: bool) -> PageOutcome:
    return PageOutcome(refused.source.file, None, added=added, status="error" if added else None,
                       error_kind=refused.error.kind, error_message=refused.error.message)


def _outcome_of(future: PrefectFuture, file_name: str, number: int | None) -> PageOutcome:
    future.wait()  # holds the final state here; the API may not have recorded it yet
    state = future.state
    if state.is_completed():
        outcome: PageOutcome = future.result()
        # A cached result is a page an earlier run stored: nothing is added now.
        return replace(outcome, added=False) if state.name == "Cached" else outcome
    exc = future.result(raise_on_failure=False)
    return PageOutcome(file_name, number, added=False, error_kind=NOT_STORED,
                       error_message=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc))


# --- flows --------------------------------------------------------------------------------

def task_runner(workers: int | None = None, dask_address: str | None = None, *, dask: bool = False) -> TaskRunner:
    """Threads on this machine (default: one per core), or a Dask cluster: the one at ``dask_address``,
    else a temporary local one."""
    if dask or dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address) if dask_address else DaskTaskRunner()
    return ThreadPoolTaskRunner(max_workers=workers or os.cpu_count() or 1)


@flow(name="formscan-ingest", task_runner=task_runner())
def ingest_batch(paths: list[str], db: str | None = None, store: str | None = None,
                 audit_rate: float = DEFAULT_AUDIT_RATE, batch_name: str | None = None) -> IngestSummary:
    """Put every page of these files and folders in the review queue, once.

    ``db``: the queue's URL (default: $FORMSCAN_DATABASE_URL, else sqlite:///data/formscan.db; on a
    shared server prefer the variable: parameters are shown in the UI). ``store``: its image folder.
    """
    started = time.monotonic()
    url = database_url(db)
    items, refused = plan_pages(paths)
    hashes: dict[str, str] = {}
    for file_name in dict.fromkeys(file_name for file_name, _ in items):
        try:
            hashes[file_name] = file_sha256(file_name)
        except FormscanError as exc:  # gone or unreadable since it was planned
            refused.append(error_result(exc, file_name))
    pages = [(file_name, number) for file_name, number in items if file_name in hashes]
    refused_keys = [(result, refused_file_sha256(result)) for result in refused]
    wanted = {(hashes[f], n) for f, n in pages} | {(sha, WHOLE_FILE) for _, sha in refused_keys if sha}
    queue = queue_store(url, store)
    present = pages_in_queue(queue, wanted)
    batch_id = new_batch(queue, batch_name, paths) if wanted - present else None
    if _progress:
        _progress.planned(len(pages))

    outcomes: list[PageOutcome] = []
    submitted: dict[PrefectFuture, tuple[str, int | None]] = {}
    for result, sha in refused_keys:
        if sha is None or (sha, WHOLE_FILE) in present:
            outcomes.append(_refused_outcome(result, added=False))
        else:
            future = record_refused.submit(result, sha, result.source.file, url, store, batch_id)
            submitted[future] = (result.source.file, None)
    # A page the queue lacks must run even if the cache remembers it stored: the queue was reset.
    page_task, fresh_page_task = ingest_page, ingest_page.with_options(refresh_cache=True)
    numbers_by_file: dict[str, list[int]] = defaultdict(list)
    for file_name, number in pages:
        numbers_by_file[file_name].append(number)
    for file_name, numbers in numbers_by_file.items():
        sha = hashes[file_name]
        with tags(f"document:{sha[:16]}"):  # a document's pages, together in the UI
            for number in numbers:
                run = page_task if (sha, number) in present else fresh_page_task
                future = run.submit(sha, number, file_name, url, store, batch_id, audit_rate)
                submitted[future] = (file_name, number)
    for future in as_completed(list(submitted)):
        outcome = _outcome_of(future, *submitted[future])
        outcomes.append(outcome)
        if _progress and outcome.number is not None:
            _progress.finished(outcome)

    held = pages_in_queue(queue, wanted)
    missing = [(f, n) for f, n in pages if (hashes[f], n) not in held]
    order = {key: i for i, key in enumerate([(r.source.file, None) for r in refused] + pages)}
    outcomes.sort(key=lambda o: order.get((o.file, o.number), len(order)))
    summary = IngestSummary(len(pages), outcomes, missing, time.monotonic() - started, batch_id)
    create_markdown_artifact(key=SUMMARY_ARTIFACT, markdown=summary.markdown(), description=summary.text())
    return summary


# --- the inbox ----------------------------------------------------------------------------

@dataclass(frozen=True)
class InboxMove:
    file: str  # as it was in the inbox
    destination: str | None  # None: left in the inbox for the next pass
    reason: str


@dataclass
class InboxReport:
    inbox: str
    moves: list[InboxMove] = field(default_factory=list)
    summary: IngestSummary | None = None
    report_file: str | None = None

    def markdown(self) -> str:
        lines = [f"## formscan inbox {self.inbox}", "", f"{datetime.now():%Y-%m-%d %H:%M:%S}", ""]
        if not self.moves:
            return "\n".join(lines + ["Nothing new in the inbox."]) + "\n"
        lines += ["| file | moved to | why |", "|---|---|---|"]
        lines += [f"| {_cell(Path(m.file).name)} | {_cell(m.destination or 'left in the inbox')} | {_cell(m.reason)} |"
                  for m in self.moves]
        if self.summary:
            lines += ["", self.summary.markdown()]
        return "\n".join(lines) + "\n"


def arrived_files(inbox: Path, min_age_seconds: float, now: float | None = None) -> tuple[list[Path], list[Path]]:
    """The inbox's documents (top level, not its done/failed/reports folders): those ready, and those
    modified less than ``min_age_seconds`` ago (maybe still being copied in: left for the next pass)."""
    now = time.time() if now is None else now
    ready, arriving = [], []
    for path in sorted(inbox.iterdir()):
        if path.is_dir() or path.suffix.lower() not in DOCUMENT_SUFFIXES:
            continue
        (arriving if now - path.stat().st_mtime < min_age_seconds else ready).append(path)
    return ready, arriving


def inbox_destination(outcomes: list[PageOutcome], missing: int) -> tuple[str | None, str]:
    """Where one file of the inbox goes after its pass (DONE, FAILED or None: stays), and why."""
    refused = [o for o in outcomes if o.number is None]
    if refused:
        first = refused[0]
        if first.error_kind == DuplicateFileError.kind:
            return DONE, f"the same bytes as another file: {first.error_message}"
        return FAILED, f"{first.error_kind}: {first.error_message}"
    if missing:
        errors = sorted({o.error_message or "" for o in outcomes if o.error_kind == NOT_STORED})
        return None, f"{missing} pages not stored ({'; '.join(errors)}): tried again next pass"
    added = [o for o in outcomes if o.added]
    if not added:
        return DONE, "already in the queue"
    forms = [o for o in added if o.is_form]
    if forms:
        review = sum(o.status in ("needs_review", "audit") for o in forms)
        return DONE, f"{len(forms)} forms ({review} for review), {len(added) - len(forms)} other pages"
    if len(added) == len(outcomes):
        return FAILED, "no page is a form: " + ", ".join(sorted({o.error_kind or "" for o in added}))
    return DONE, f"{len(added)} pages added, none a form; the others were in the queue already"


def move_into(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` under its name, or name-2, name-3, ... when that is taken."""
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 2
    while target.exists():
        target, n = folder / f"{path.stem}-{n}{path.suffix}", n + 1
    os.replace(path, target)  # same file system: a rename, never a half-moved file
    return target


@flow(name="formscan-inbox")
def ingest_inbox(inbox: str, db: str | None = None, store: str | None = None,
                 audit_rate: float = DEFAULT_AUDIT_RATE, min_age_seconds: float = 60.0,
                 workers: int | None = None) -> InboxReport:
    """Ingest the new files of ``inbox`` and move each to ``inbox/done/`` or ``inbox/failed/``; a
    file with pages that could not be stored stays for the next pass. The report is the run's
    artifact and a markdown file in ``inbox/reports/``."""
    folder = Path(inbox).resolve()
    ready, arriving = arrived_files(folder, min_age_seconds)
    report = InboxReport(str(folder))
    if ready:
        runner = ingest_batch.with_options(task_runner=task_runner(workers))
        summary = runner([str(p) for p in ready], db=db, store=store, audit_rate=audit_rate,
                         batch_name=f"inbox {folder.name} {datetime.now():%Y-%m-%d %H:%M}")
        report.summary = summary
        by_file: dict[str, list[PageOutcome]] = defaultdict(list)
        for outcome in summary.outcomes:
            by_file[outcome.file].append(outcome)
        missing_by_file: dict[str, int] = defaultdict(int)
        for file_name, _number in summary.missing:
            missing_by_file[file_name] += 1
        for path in ready:
            where, reason = inbox_destination(by_file.get(str(path), []), missing_by_file[str(path)])
            moved = move_into(path, folder / where) if where else None
            report.moves.append(InboxMove(str(path), str(moved) if moved else None, reason))
    report.moves += [InboxMove(str(p), None, f"modified less than {min_age_seconds:g} s ago: still arriving?")
                     for p in arriving]
    if report.moves:
        reports = folder / REPORTS
        reports.mkdir(exist_ok=True)
        target = reports / f"{datetime.now():%Y-%m-%d_%H%M%S}.md"
        target.write_text(report.markdown(), encoding="utf-8")
        report.report_file = str(target)
    create_markdown_artifact(key=INBOX_ARTIFACT, markdown=report.markdown(),
                             description=f"{len(report.moves)} files of {folder}")
    return report
