"""Store read pages in the queue; this module never reads a page (``formscan.pool`` does).

Each page is stored in one transaction (page, cells, field evidence, record, flags),
so an interrupted run leaves whole pages only, and a page already in the queue
(same file content by SHA-256, same page number) is not stored twice: ingest is idempotent.
A file refused as a whole (corrupt, encrypted, ...) is kept as one error row with page
number ``WHOLE_FILE``, keyed by its bytes like any page. ``flows.ingest`` drives these steps.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from PIL import Image
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from models import PageResult
from pipeline.errors import DuplicateFileError, FormscanError, PageTimeoutError, WorkerCrashError
from pipeline.extract import PageExtraction
from pipeline.grid import Cell
from pipeline.lexicon import Lexicon
from pipeline.read import file_sha256  # raises FormscanError for a file without bytes
from review.queue import lexicon_from_db
from review.store import (
    WHOLE_FILE,
    Batch,
    CellRow,
    Document,
    FieldEvidenceRow,
    FlagRow,
    PageRow,
    ReviewStore,
    now,
)

DEFAULT_AUDIT_RATE = 0.02
IMAGE_FORMAT, IMAGE_SUFFIX = "WEBP", ".webp"  # a grey A4 scan in ~200 kB instead of a few MB of PNG
# Failures of the disk or the database, not of the page: worth trying again, never recorded as the page's error.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OSError, OperationalError)
# Pages whose reading did not finish: recorded, and read again only when asked.
UNFINISHED_KINDS = (WorkerCrashError.kind, PageTimeoutError.kind)


def in_audit_sample(sha256: str, number: int, rate: float) -> bool:
    """Deterministic by page: the same page is always in (or out of) the sample at a given rate."""
    digest = hashlib.sha256(f"{sha256}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


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
            document = _document_row(session, sha256, file_name, batch_id)
            if session.scalar(select(PageRow.id).where(PageRow.document_id == document.id,
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
        return None  # another ingest stored the same page at the same moment: the page's row exists


def _document_row(session: Session, sha256: str, file_name: str, batch_id: int) -> Document:
    """The file's row, made if it is new: inside a savepoint, so that another ingest making
    the same row at the same moment costs a second look, not this page."""
    document = session.scalar(select(Document).where(Document.sha256 == sha256))
    if document is not None:
        return document
    try:
        with session.begin_nested():
            document = Document(sha256=sha256, name=file_name, batch_id=batch_id,
                                names=[_name_entry(file_name, NameChange.GIVEN)])
            session.add(document)
    except IntegrityError:
        document = session.scalar(select(Document).where(Document.sha256 == sha256))
        if document is None:
            raise
    return document


class NameChange(StrEnum):
    GIVEN = "given"  # the path a file was given to an ingest under
    MOVED = "moved"  # where the inbox pass moved it (done/, failed/)


def _name_entry(name: str, how: NameChange) -> dict[str, str]:
    return {"name": name, "at": now().isoformat(timespec="seconds"), "how": how.value}


def record_names(store: ReviewStore, names: dict[str, str], how: NameChange) -> int:
    """Files (by sha256) now known under these names: each document the queue holds takes the
    name as its current one, its earlier names kept in order; how many changed."""
    if not names:
        return 0
    changed = 0
    with store.transaction() as session:
        for document in session.scalars(select(Document).where(Document.sha256.in_(list(names)))):
            name = names[document.sha256]
            if name == document.name:
                continue
            history = list(document.names or [{"name": document.name, "how": NameChange.GIVEN.value}])
            document.names = [*history, _name_entry(name, how)]
            document.name = name
            changed += 1
    return changed


def new_batch(store: ReviewStore, name: str | None, paths: list[str]) -> int:
    with store.transaction() as session:
        batch = Batch(name=name or f"{datetime.now():%Y-%m-%d %H:%M} {', '.join(paths)[:120]}")
        session.add(batch)
        session.flush()
        return batch.id


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


def queue_lexicon(store: ReviewStore) -> Lexicon:
    """The lexicon pages are read with: the form's words and what reviewers have taught so far."""
    with store.transaction() as session:
        return lexicon_from_db(session)


def forget_unfinished_pages(store: ReviewStore, keys: Iterable[tuple[str, int]]) -> int:
    """Drop the rows of these pages that were recorded ``crashed`` or ``timeout`` and not yet
    reviewed, so that they are read again (``--retry-failed``); how many were dropped."""
    keys = set(keys)
    with store.transaction() as session:
        rows = session.execute(
            select(PageRow, Document.sha256).join(Document, Document.id == PageRow.document_id)
            .where(PageRow.error_kind.in_(UNFINISHED_KINDS), PageRow.status == "error")
        ).all()
        dropped = [row for row, sha256 in rows if (sha256, row.number) in keys]
        for row in dropped:
            session.delete(row)
        return len(dropped)


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

