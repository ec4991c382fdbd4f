"""Put pages in the queue: plan -> read -> extract (with the learned lexicon) -> store, one page at a time.

Each page is stored in one transaction (page, cells, field evidence, record, flags),
so an interrupted run leaves whole pages only, and a page already in the queue
(same file content by SHA-256, same page number) is skipped: ingest is idempotent.
A file refused as a whole (corrupt, encrypted, ...) is kept as one error row with page
number ``WHOLE_FILE``, keyed by its bytes like any page.

``ingest`` runs it in this process; ``flows.ingest`` runs the same steps
(``read_for_queue``, ``store_extraction``, ``record_refused_file``) as Prefect tasks.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from models import PageResult
from pipeline.errors import DuplicateFileError, FormscanError, InternalError
from pipeline.extract import PageExtraction, error_result, extract_page_full, plan_pages
from pipeline.grid import Cell
from pipeline.ocr import CellReader
from pipeline.read import file_sha256, read_pages  # file_sha256 raises FormscanError for a file without bytes
from review.queue import lexicon_from_db
from review.store import WHOLE_FILE, Batch, CellRow, Document, FieldEvidenceRow, FlagRow, PageRow, ReviewStore

DEFAULT_AUDIT_RATE = 0.02
IMAGE_FORMAT, IMAGE_SUFFIX = "WEBP", ".webp"  # a grey A4 scan in ~200 kB instead of a few MB of PNG
# Failures of the disk or the database, not of the page: worth trying again, never recorded as the page's error.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OSError, OperationalError)


def in_audit_sample(sha256: str, number: int, rate: float) -> bool:
    """Deterministic by page: the same page is always in (or out of) the sample at a given rate."""
    digest = hashlib.sha256(f"{sha256}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass
class IngestReport:
    added: int = 0
    skipped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failed: list[PageResult] = field(default_factory=list)  # files that could not even be opened
    batch_id: int | None = None

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items())) or "nothing new"
        return (f"{self.added} pages added ({counts}), {self.skipped} already in the queue, "
                f"{len(self.failed)} unreadable files")


def _write_image(store: ReviewStore, sha256: str, number: int, extraction: PageExtraction) -> str | None:
    if extraction.image is None:
        return None
    relative = f"pages/{sha256[:2]}/{sha256}-{number}{IMAGE_SUFFIX}"
    target = store.store_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two workers may write the same page at once: each writes its own partial file.
    partial = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.part")
    Image.fromarray(extraction.image).save(partial, IMAGE_FORMAT, quality=80, method=4)
    os.replace(partial, target)  # never a half-written image under the real name
    return relative


def store_extraction(store: ReviewStore, batch_id: int, file_name: str, sha256: str, number: int,
                     extraction: PageExtraction, audit_rate: float = DEFAULT_AUDIT_RATE) -> PageRow | None:
    """Store one extracted page and everything a reviewer needs, in one transaction; None if already there."""
    image_path = _write_image(store, sha256, number, extraction)
    result = extraction.result
    try:
        with store.transaction() as session:
            document = session.scalar(select(Document).where(Document.sha256 == sha256))
            if document is None:
                document = Document(sha256=sha256, name=file_name, batch_id=batch_id)
                session.add(document)
                session.flush()
            elif session.scalar(select(PageRow.id).where(PageRow.document_id == document.id,
                                                         PageRow.number == number)):
                return None
            status = result.status.value if result.status else "error"
            audit = status == "auto_accepted" and in_audit_sample(sha256, number, audit_rate)
            height, width = extraction.image.shape[:2] if extraction.image is not None else (None, None)
            page = PageRow(
                document_id=document.id, number=number, image_path=image_path, image_width=width,
                image_height=height, record=result.record.model_dump(mode="json") if result.record else None,
                machine_flags=[f.model_dump(mode="json") for f in result.flags],
                notices=[n.model_dump(mode="json") for n in result.notices],
                status="audit" if audit else status, audit_sample=audit, version=1,
                error_kind=result.error.kind if result.error else None,
                error_message=result.error.message if result.error else None,
                flags=[FlagRow(field=f.field, reason=f.reason, confidence=f.confidence, message=f.message,
                               readings=dict(f.readings), proposal=f.proposal) for f in result.flags],
            )
            session.add(page)
            session.flush()
            rows: dict[Cell, CellRow] = {}
            for cell, text in extraction.cells.items():
                rows[cell] = CellRow(
                    page_id=page.id, row=cell.row, col=cell.col, row_span=cell.row_span, col_span=cell.col_span,
                    x0=cell.box.x0, y0=cell.box.y0, x1=cell.box.x1, y1=cell.box.y1, text=text.text,
                    confidence=text.confidence, source=text.source, readings=dict(text.readings),
                )
            session.add_all(rows.values())
            session.flush()
            session.add_all(
                FieldEvidenceRow(page_id=page.id, field=path, cell_id=rows[evidence.cell].id,
                                 text=evidence.text.text, confidence=evidence.text.confidence,
                                 readings=dict(evidence.text.readings))
                for path, evidence in extraction.evidence.items() if evidence.cell in rows
            )
            return page
    except IntegrityError:
        return None  # another ingest stored the same page at the same moment


def new_batch(store: ReviewStore, name: str | None, paths: list[str]) -> int:
    with store.transaction() as session:
        batch = Batch(name=name or f"{datetime.now():%Y-%m-%d %H:%M} {', '.join(paths)[:120]}")
        session.add(batch)
        session.flush()
        return batch.id


def _page_in_queue(session: Session, sha256: str, number: int) -> bool:
    return session.scalar(
        select(PageRow.id).join(Document, Document.id == PageRow.document_id)
        .where(Document.sha256 == sha256, PageRow.number == number)
    ) is not None


def pages_in_queue(store: ReviewStore, keys: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (file sha256, page number) pairs the queue holds."""
    keys = set(keys)
    found: set[tuple[str, int]] = set()
    ordered = sorted(keys)
    with store.transaction() as session:
        for start in range(0, len(ordered), 500):  # bounded IN lists
            chunk = ordered[start:start + 500]
            found.update((sha256, number) for sha256, number in session.execute(
                select(Document.sha256, PageRow.number).join(PageRow, PageRow.document_id == Document.id)
                .where(tuple_(Document.sha256, PageRow.number).in_(chunk))
            ))
    return found


def read_for_queue(store: ReviewStore, file_name: str, sha256: str, number: int,
                   reader: Callable[[], CellReader]) -> PageExtraction | None:
    """The page extracted with the queue's learned lexicon, or None when the queue holds it already.

    A bad page becomes an error result; so does an unexpected exception (``internal``), so that
    a bug on one page does not end the batch. Only ``TRANSIENT_ERRORS`` propagate.
    """
    with store.transaction() as session:
        if _page_in_queue(session, sha256, number):
            return None
        lexicon = lexicon_from_db(session)  # re-read per page: reviewers teach meanwhile
    try:
        page = next(iter(read_pages(file_name, [number])))
        return extract_page_full(page, reader(), lexicon)
    except FormscanError as exc:
        return PageExtraction(error_result(exc, file_name, number))
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded with the page, see the docstring
        error = InternalError(f"{type(exc).__name__}: {exc}", file=file_name, page=number)
        return PageExtraction(error_result(error, file_name, number))


def refused_file_sha256(refused: PageResult) -> str | None:
    """The sha256 a refused file is recorded under, or None when it is not recorded: it has no
    bytes to key it by (not found, unreadable), or they are in the queue under another name (duplicate)."""
    if refused.error is None or refused.error.kind == DuplicateFileError.kind:
        return None
    try:
        return file_sha256(refused.source.file)
    except FormscanError:
        return None


def record_refused_file(store: ReviewStore, batch_id: int, refused: PageResult, sha256: str) -> PageRow | None:
    """Keep a file refused as a whole as one error row (page ``WHOLE_FILE``); None if already there."""
    return store_extraction(store, batch_id, refused.source.file, sha256, WHOLE_FILE, PageExtraction(refused))


def ingest(
    store: ReviewStore,
    paths: Iterable[str | Path],
    *,
    reader: CellReader | None = None,
    audit_rate: float = DEFAULT_AUDIT_RATE,
    batch_name: str | None = None,
    on_page: Callable[[str, int, str], None] | None = None,
) -> IngestReport:
    """Ingest every page of the given files and folders that is not yet in the queue."""
    paths = [str(p) for p in paths]
    items, failed = plan_pages(paths)
    report = IngestReport(failed=failed)

    def batch_id() -> int:  # made with the first row stored: a run that adds nothing leaves no batch
        if report.batch_id is None:
            report.batch_id = new_batch(store, batch_name, paths)
        return report.batch_id

    def engines() -> CellReader:
        nonlocal reader
        if reader is None:
            os.environ.setdefault("OMP_THREAD_LIMIT", "1")
            reader = CellReader()
        return reader

    for refused in failed:
        sha256 = refused_file_sha256(refused)
        if sha256 and not pages_in_queue(store, [(sha256, WHOLE_FILE)]):
            record_refused_file(store, batch_id(), refused, sha256)
    hashes: dict[str, str] = {}
    for file_name, number in items:
        if file_name not in hashes:
            hashes[file_name] = file_sha256(file_name)
        sha256 = hashes[file_name]
        extraction = read_for_queue(store, file_name, sha256, number, engines)
        if extraction is None:
            report.skipped += 1
            continue
        stored = store_extraction(store, batch_id(), file_name, sha256, number, extraction, audit_rate)
        if stored is None:
            report.skipped += 1
            continue
        report.added += 1
        report.statuses[stored.status] = report.statuses.get(stored.status, 0) + 1
        if on_page:
            on_page(file_name, number, stored.status)
    return report
