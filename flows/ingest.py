"""Bulk ingest into the review queue as Prefect flows: resumable, idempotent, supervised.

``ingest_batch`` plans the files (``pipeline.extract.plan_pages``), keys each by the sha256 of
its bytes, and hands the pages the queue does not hold yet to the page pool
(``formscan.pool``: worker processes, a deadline per page, crash isolation), the one way
every command reads pages. Each page that comes back is stored by a ``store-page`` task in
one transaction (``review.ingest``), so a batch stopped at any moment leaves whole pages, and
run again it reads only the pages not stored. A page whose worker crashed or ran past its
deadline is stored as a ``crashed`` or ``timeout`` row, and later runs leave it alone unless
asked to retry it. At the end every planned page is looked up in the queue.

``ingest_inbox`` is the overnight pass: the new files of a folder through ``ingest_batch``,
then each moved to ``done/`` or ``failed/``, with a report.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Crashed, State
from prefect.tasks import exponential_backoff

from flows.resources import queue_store
from formscan.pool import PagePool, PageWork, ReadSettings
from models import PageResult
from pipeline.errors import DuplicateFileError, FormscanError
from pipeline.extract import PageExtraction, error_result, plan_pages
from pipeline.read import DOCUMENT_SUFFIXES, file_sha256
from pipeline.validate import LAYOUT_FAILED
from review.ingest import (
    DEFAULT_AUDIT_RATE,
    TRANSIENT_ERRORS,
    NameChange,
    forget_unfinished_pages,
    new_batch,
    pages_in_queue,
    queue_lexicon,
    record_names,
    record_refused_file,
    refused_file_sha256,
    store_extraction,
)
from review.store import WHOLE_FILE, PageRow, ReviewStore, database_url

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
    sha256: dict[str, str] = field(default_factory=dict)  # file -> the hash of its bytes, as planned

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


# --- runs of this process ------------------------------------------------------------------

RUN_PID_TAG, RUN_HOST_TAG = "formscan-pid:", "formscan-host:"


@contextmanager
def this_process_runs() -> Iterator[list[str]]:
    """Flow runs started inside are tagged with this process; before they start, the runs an
    earlier process left running when it was killed are marked ``Crashed`` (their names are
    what the block is given)."""
    abandoned = mark_abandoned_runs()
    with tags(f"{RUN_PID_TAG}{os.getpid()}", f"{RUN_HOST_TAG}{socket.gethostname()}"):
        yield abandoned


def mark_abandoned_runs() -> list[str]:
    """Mark ``Crashed`` this machine's flow runs still pending or running whose process is gone
    (killed, or the machine went down); their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    unfinished = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
    here = FlowRunFilterTags(all_=[f"{RUN_HOST_TAG}{socket.gethostname()}"])
    marked = []
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(state=unfinished, tags=here)):
            pid = next((int(tag.removeprefix(RUN_PID_TAG)) for tag in run.tags if tag.startswith(RUN_PID_TAG)), None)
            if pid is None or _process_alive(pid):
                continue
            message = f"its process ({pid}) ended before the run did: killed, or the machine stopped"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            marked.append(run.name)
    return marked


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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


@dataclass(frozen=True)
class QueueTarget:
    """Where a run stores its pages."""

    db: str
    store: str | None
    batch_id: int
    audit_rate: float

    def open(self) -> ReviewStore:
        return queue_store(self.db, self.store)


@task(name="store-page", task_run_name="{file_name} page {number}", cache_policy=NO_CACHE, **RETRIES)
def store_page(extraction: PageExtraction, file_name: str, sha256: str, number: int,
               target: QueueTarget) -> PageOutcome:
    """Store one page as read, in one transaction (not added when the queue holds it already)."""
    row = store_extraction(target.open(), target.batch_id, file_name, sha256, number, extraction, target.audit_rate)
    return PageOutcome(file_name, number, added=False) if row is None else _stored_outcome(file_name, number, row)


@task(name="record-refused-file", task_run_name="{file_name}", cache_policy=NO_CACHE, **RETRIES)
def record_refused(refused: PageResult, sha256: str, file_name: str, target: QueueTarget) -> PageOutcome:
    row = record_refused_file(target.open(), target.batch_id, refused, sha256)
    return _refused_outcome(refused, added=row is not None)


def _refused_outcome(refused: PageResult, added: bool) -> PageOutcome:
    return PageOutcome(refused.source.file, None, added=added, status="error" if added else None,
                       error_kind=refused.error.kind, error_message=refused.error.message)


def _outcome_of(state: State, file_name: str, number: int | None) -> PageOutcome:
    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    return PageOutcome(file_name, number, added=False, error_kind=NOT_STORED,
                       error_message=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc))


# --- flows --------------------------------------------------------------------------------

@flow(name="formscan-ingest")
def ingest_batch(paths: list[str], db: str | None = None, store: str | None = None,
                 audit_rate: float = DEFAULT_AUDIT_RATE, batch_name: str | None = None,
                 settings: ReadSettings | None = None, retry_failed: bool = False) -> IngestSummary:
    """Put every page of these files and folders in the review queue, once.

    ``db``: the queue's URL (default: $FORMSCAN_DATABASE_URL, else sqlite:///data/formscan.db; on a
    shared server prefer the variable: parameters are shown in the UI). ``store``: its image folder.
    ``settings``: how pages are read (workers, page deadline, limits, templates), as for extract.
    ``retry_failed``: read again the pages recorded ``crashed`` or ``timeout`` by earlier runs.
    """
    started = time.monotonic()
    settings = settings or ReadSettings()
    url = database_url(db)
    items, refused = plan_pages(paths, max_pages_per_file=settings.max_pages_per_file,
                                max_pixels=settings.max_pixels)
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
    record_names(queue, {sha: file_name for file_name, sha in hashes.items()}, NameChange.GIVEN)
    if retry_failed:
        forget_unfinished_pages(queue, wanted)
    present = pages_in_queue(queue, wanted)
    to_read = [(f, n) for f, n in pages if (hashes[f], n) not in present]
    target = QueueTarget(url, store, new_batch(queue, batch_name, paths) if wanted - present else 0, audit_rate)
    if _progress:
        _progress.planned(len(pages))

    outcomes: list[PageOutcome] = []

    def finished(outcome: PageOutcome) -> None:
        outcomes.append(outcome)
        if _progress and outcome.number is not None:
            _progress.finished(outcome)

    for result, sha in refused_keys:
        if sha is None or (sha, WHOLE_FILE) in present:
            finished(_refused_outcome(result, added=False))
        else:
            state = record_refused(result, sha, result.source.file, target, return_state=True)
            finished(_outcome_of(state, result.source.file, None))
    for file_name, number in pages:
        if (hashes[file_name], number) in present:
            finished(PageOutcome(file_name, number, added=False))

    def stored_meanwhile(item: tuple[str, int]) -> bool:  # by another ingest of the same files
        return bool(pages_in_queue(queue, [(hashes[item[0]], item[1])]))

    pool = PagePool(PageWork.QUEUE, settings, lexicon=lambda: queue_lexicon(queue), done_elsewhere=stored_meanwhile)
    for (file_name, number), extraction in pool.run(to_read):
        if extraction is None:
            finished(PageOutcome(file_name, number, added=False))
            continue
        with tags(f"document:{hashes[file_name][:16]}"):  # a document's pages, together in the UI
            state = store_page(extraction, file_name, hashes[file_name], number, target, return_state=True)
        finished(_outcome_of(state, file_name, number))

    held = pages_in_queue(queue, wanted)
    missing = [(f, n) for f, n in pages if (hashes[f], n) not in held]
    order = {key: i for i, key in enumerate([(r.source.file, None) for r in refused] + pages)}
    outcomes.sort(key=lambda o: order.get((o.file, o.number), len(order)))
    summary = IngestSummary(len(pages), outcomes, missing, time.monotonic() - started, target.batch_id or None,
                            hashes)
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
                 settings: ReadSettings | None = None, retry_failed: bool = False) -> InboxReport:
    """Ingest the new files of ``inbox`` and move each to ``inbox/done/`` or ``inbox/failed/``; a
    file with pages that could not be stored stays for the next pass. The report is the run's
    artifact and a markdown file in ``inbox/reports/``."""
    folder = Path(inbox).resolve()
    ready, arriving = arrived_files(folder, min_age_seconds)
    report = InboxReport(str(folder))
    if ready:
        summary = ingest_batch([str(p) for p in ready], db=db, store=store, audit_rate=audit_rate,
                               batch_name=f"inbox {folder.name} {datetime.now():%Y-%m-%d %H:%M}",
                               settings=settings, retry_failed=retry_failed)
        report.summary = summary
        by_file: dict[str, list[PageOutcome]] = defaultdict(list)
        for outcome in summary.outcomes:
            by_file[outcome.file].append(outcome)
        missing_by_file: dict[str, int] = defaultdict(int)
        for file_name, _number in summary.missing:
            missing_by_file[file_name] += 1
        moved_to: dict[str, str] = {}
        for path in ready:
            where, reason = inbox_destination(by_file.get(str(path), []), missing_by_file[str(path)])
            moved = move_into(path, folder / where) if where else None
            report.moves.append(InboxMove(str(path), str(moved) if moved else None, reason))
            if moved and str(path) in summary.sha256:
                moved_to[summary.sha256[str(path)]] = str(moved)
        record_names(queue_store(database_url(db), store), moved_to, NameChange.MOVED)
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
