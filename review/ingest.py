"""Put pages in the queue: plan -> read -> extract (with the learned lexicon) -> store, one page at a time.

Each page is stored in one transaction (page, cells, field evidence, record, flags),
so an interrupted run leaves whole pages only, and a page already in the queue
(same file content by SHA-256, same page number) is skipped: ingest is idempotent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import PageResult
from pipeline.errors import FormscanError
from pipeline.extract import PageExtraction, error_result, extract_page_full, plan_pages
from pipeline.grid import Cell
from pipeline.ocr import CellReader
from pipeline.read import read_pages
from review.queue import lexicon_from_db
from review.store import Batch, CellRow, Document, FieldEvidenceRow, FlagRow, PageRow, ReviewStore

DEFAULT_AUDIT_RATE = 0.02
IMAGE_FORMAT, IMAGE_SUFFIX = "WEBP", ".webp"  # a grey A4 scan in ~200 kB instead of a few MB of PNG


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    partial = target.with_suffix(".part")
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


def _new_batch(store: ReviewStore, name: str | None, paths: list[str]) -> int:
    with store.transaction() as session:
        batch = Batch(name=name or f"{datetime.now():%Y-%m-%d %H:%M} {', '.join(paths)[:120]}")
        session.add(batch)
        session.flush()
        return batch.id


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
    hashes: dict[str, str] = {}
    for file_name, number in items:
        if file_name not in hashes:
            hashes[file_name] = file_sha256(file_name)
        sha256 = hashes[file_name]
        with store.transaction() as session:
            present = session.scalar(
                select(PageRow.id).join(Document, Document.id == PageRow.document_id)
                .where(Document.sha256 == sha256, PageRow.number == number)
            )
            lexicon = None if present else lexicon_from_db(session)  # re-read per page: reviewers teach meanwhile
        if present:
            report.skipped += 1
            continue
        if reader is None:
            os.environ.setdefault("OMP_THREAD_LIMIT", "1")
            reader = CellReader()
        try:
            page = next(iter(read_pages(file_name, [number])))
            extraction = extract_page_full(page, reader, lexicon)
        except FormscanError as exc:
            extraction = PageExtraction(error_result(exc, file_name, number))
        if report.batch_id is None:
            report.batch_id = _new_batch(store, batch_name, paths)
        stored = store_extraction(store, report.batch_id, file_name, sha256, number, extraction, audit_rate)
        if stored is None:
            report.skipped += 1
            continue
        report.added += 1
        report.statuses[stored.status] = report.statuses.get(stored.status, 0) + 1
        if on_page:
            on_page(file_name, number, stored.status)
    return report
