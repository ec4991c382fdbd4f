"""Write the queue's records out: JSONL (``formscan extract``'s shape), CSV (one row per field), XLSX.

Values are the corrected ones and the flags those still open. An audit-sample page
not yet checked exports as ``auto_accepted``: that is what the machine said it was.
A template's record (another form) goes out as stored: every field of it in JSONL and
CSV; in XLSX its fields and funds/indicators rows under the columns of the same name,
and all its fields, row by row, in a ``template_fields`` sheet.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import FormRecord, Notice, PageError, PageResult, PageStatus, SourceRef, TemplateRecord, parse_record
from review.fields import Record, format_value
from review.queue import STATUSES, flag_from_row
from review.store import WHOLE_FILE, Correction, Document, PageRow, ReviewStore

FORMATS = ("jsonl", "csv", "xlsx")
PAGE_COLUMNS = ("year", "project_name", "department", "implementing_unit", "funds_unit", "goal_expected",
                "goal_actual", "total_weight", "total_score")
FUNDS_COLUMNS = ("source", "initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score")
INDICATOR_COLUMNS = ("level1", "level2", "name", "target", "actual", "weight", "score", "deviation_reason")
AUDIT_COLUMNS = ("file", "page", "field", "from", "to", "action", "by", "at")
TEMPLATE_FIELD_COLUMNS = ("file", "page", "field", "value")  # as in the CSV: form_type the first field


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
    return PageResult(source=source, record=parse_record(page.record),
                      flags=[flag_from_row(row) for row in page.flags],
                      notices=[Notice.model_validate(n) for n in page.notices or []], status=PageStatus(status))


def field_rows(record: Record) -> Iterator[tuple[str, Any]]:
    """Every (field path, value) of a record, in printed order (a template's record: in its own order)."""
    if isinstance(record, TemplateRecord):
        yield from _leaves(record.model_dump(mode="json"))
        return
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


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) under ``value``: ``unit_name``, ``tasks[0].task``, ... in order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _cells(values: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """``values`` under ``columns``, blank where a column has no value of one cell."""
    return [None if isinstance(values.get(c), (list, dict)) else values.get(c) for c in columns]


def _rows(record: Record, section: str) -> list[dict[str, Any]]:
    """A section's rows as dicts: the project form's models, or a template record's row dicts."""
    if isinstance(record, FormRecord):
        return [row.model_dump() for row in getattr(record, section)]
    rows = getattr(record, section, None)
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


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
    # form_type last: the columns before it stay where readers of earlier exports find them
    pages.append(["file", "page", "status", *PAGE_COLUMNS, "open_flags", "error", "form_type"])
    funds = book.create_sheet("funds")
    funds.append(["file", "page", *FUNDS_COLUMNS])
    indicators = book.create_sheet("indicators")
    indicators.append(["file", "page", *INDICATOR_COLUMNS])
    flags = book.create_sheet("flags")
    flags.append(["file", "page", "field", "reason", "confidence", "message", "proposal"])
    template_fields = None  # made for the first template record: an export of project forms has none
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
        pages.append([*where, result.status.value, *_cells(dict(record), PAGE_COLUMNS),
                      len(result.flags), None, record.form_type])
        for row in _rows(record, "funds"):
            funds.append([*where, *_cells(row, FUNDS_COLUMNS)])
        for row in _rows(record, "indicators"):
            indicators.append([*where, *_cells(row, INDICATOR_COLUMNS)])
        if isinstance(record, TemplateRecord):
            if template_fields is None:
                template_fields = book.create_sheet("template_fields")
                template_fields.append(list(TEMPLATE_FIELD_COLUMNS))
            for path, value in field_rows(record):
                template_fields.append([*where, path, value])
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
