"""Write the queue's records out: JSONL (``formscan extract``'s shape), CSV (one row per field), XLSX.

Values are the corrected ones and the flags those still open. An audit-sample page
not yet checked exports as ``auto_accepted``: that is what the machine said it was.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import FormRecord, Notice, PageError, PageResult, PageStatus, SourceRef
from review.fields import format_value
from review.queue import STATUSES, flag_from_row
from review.store import WHOLE_FILE, Correction, Document, PageRow, ReviewStore

FORMATS = ("jsonl", "csv", "xlsx")
PAGE_COLUMNS = ("year", "project_name", "department", "implementing_unit", "funds_unit", "goal_expected",
                "goal_actual", "total_weight", "total_score")
AUDIT_COLUMNS = ("file", "page", "field", "from", "to", "action", "by", "at")


def _pages(session: Session, statuses: list[str] | None) -> Iterator[PageRow]:
    statement = select(PageRow).join(Document, Document.id == PageRow.document_id).order_by(Document.name,
                                                                                          PageRow.number)
    if statuses:
        statement = statement.where(PageRow.status.in_(statuses))
    yield from session.scalars(statement)


def page_result(page: PageRow) -> PageResult:
    # A file refused as a whole has no page, as in `formscan extract`'s error line.
    source = SourceRef(file=page.document.name, page=None if page.number == WHOLE_FILE else page.number)
    if page.record is None:
        return PageResult(source=source, error=PageError(kind=page.error_kind or "error",
                                                         message=page.error_message or ""))
    status = "auto_accepted" if page.status == "audit" else page.status
    return PageResult(source=source, record=FormRecord.model_validate(page.record),
                      flags=[flag_from_row(row) for row in page.flags],
                      notices=[Notice.model_validate(n) for n in page.notices or []], status=PageStatus(status))


def field_rows(record: FormRecord) -> Iterator[tuple[str, Any]]:
    """Every (field path, value) of a record, in printed order."""
    for key in PAGE_COLUMNS[:5]:
        yield key, getattr(record, key)
    for i, row in enumerate(record.funds):
        for key, value in row.model_dump().items():
            yield f"funds[{i}].{key}", value
    for key in PAGE_COLUMNS[5:7]:
        yield key, getattr(record, key)
    for i, row in enumerate(record.indicators):
        for key, value in row.model_dump().items():
            yield f"indicators[{i}].{key}", value
    for key in PAGE_COLUMNS[7:]:
        yield key, getattr(record, key)


def audit_trail(session: Session, statuses: list[str] | None = None) -> Iterator[dict[str, Any]]:
    for page in _pages(session, statuses):
        for c in session.scalars(select(Correction).where(Correction.page_id == page.id).order_by(Correction.id)):
            yield {"file": page.document.name, "page": page.number, "field": c.field, "from": c.old_value,
                   "to": c.new_value, "action": c.action, "by": c.user_name, "at": c.at.isoformat(timespec="seconds")}


def _write_jsonl(session: Session, statuses: list[str] | None, out: Path) -> int:
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for page in _pages(session, statuses):
            handle.write(page_result(page).to_json_line() + "\n")
            count += 1
    return count


def _write_csv(session: Session, statuses: list[str] | None, out: Path) -> int:
    count = 0
    with out.open("w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel then reads the Chinese right
        writer = csv.writer(handle)
        writer.writerow(["file", "page", "status", "field", "value", "flags", "error"])
        for page in _pages(session, statuses):
            result = page_result(page)
            count += 1
            if result.record is None:
                writer.writerow([result.source.file, result.source.page, "error", "", "", "",
                                 f"{result.error.kind}: {result.error.message}"])
                continue
            reasons: dict[str, list[str]] = {}
            for flag in result.flags:
                reasons.setdefault(flag.field, []).append(flag.reason)
            for path, value in field_rows(result.record):
                writer.writerow([result.source.file, result.source.page, result.status.value, path,
                                 format_value(value), ";".join(reasons.get(path, [])), ""])
    return count


def _write_xlsx(session: Session, statuses: list[str] | None, out: Path) -> int:
    from openpyxl import Workbook

    book = Workbook()
    pages = book.active
    pages.title = "pages"
    pages.append(["file", "page", "status", *PAGE_COLUMNS, "open_flags", "error"])
    funds = book.create_sheet("funds")
    funds.append(["file", "page", "source", "initial_budget", "annual_budget", "executed", "weight",
                  "execution_rate", "score"])
    indicators = book.create_sheet("indicators")
    indicators.append(["file", "page", "level1", "level2", "name", "target", "actual", "weight", "score",
                       "deviation_reason"])
    flags = book.create_sheet("flags")
    flags.append(["file", "page", "field", "reason", "confidence", "message", "proposal"])
    count = 0
    for page in _pages(session, statuses):
        result = page_result(page)
        where = [result.source.file, result.source.page]
        count += 1
        if result.record is None:
            pages.append([*where, "error", *([None] * len(PAGE_COLUMNS)), 0,
                          f"{result.error.kind}: {result.error.message}"])
            continue
        record = result.record
        pages.append([*where, result.status.value, *(getattr(record, k) for k in PAGE_COLUMNS),
                      len(result.flags), None])
        for row in record.funds:
            funds.append([*where, *row.model_dump().values()])
        for row in record.indicators:
            indicators.append([*where, *row.model_dump().values()])
        for flag in result.flags:
            flags.append([*where, flag.field, flag.reason, flag.confidence, flag.message, flag.proposal])
    audit = book.create_sheet("audit")
    audit.append(list(AUDIT_COLUMNS))
    for entry in audit_trail(session, statuses):
        audit.append([entry[k] for k in AUDIT_COLUMNS])
    book.save(out)
    return count


def export(store: ReviewStore, fmt: str, out: str | Path, statuses: list[str] | None = None,
           audit_out: str | Path | None = None) -> int:
    """Write the pages with the given statuses (all when None); returns how many pages were written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status {', '.join(sorted(unknown))}; known: {', '.join(STATUSES)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = {"jsonl": _write_jsonl, "csv": _write_csv, "xlsx": _write_xlsx}[fmt]
    with store.transaction() as session:
        count = writer(session, statuses, out)
        if audit_out is not None:
            with Path(audit_out).open("w", encoding="utf-8-sig", newline="") as handle:
                writer_csv = csv.DictWriter(handle, fieldnames=AUDIT_COLUMNS)
                writer_csv.writeheader()
                writer_csv.writerows(audit_trail(session, statuses))
    return count


__all__ = ["FORMATS", "audit_trail", "export", "page_result"]
