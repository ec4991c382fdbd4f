"""Write the queue's records out: JSONL (``formscan extract``'s shape), CSV (one row per field), XLSX.

Values are the corrected ones and the flags those still open. An audit-sample page
not yet checked exports as ``auto_accepted``: that is what the machine said it was.
A template's record (another form) goes out as stored: every field of it in JSONL and
CSV; in XLSX its fields and funds/indicators rows under the columns of the same name,
and all its fields, row by row, in a ``template_fields`` sheet.

CSV and XLSX are opened by people in spreadsheets: their columns are headed with the
form's own labels (``headers="zh"``, what ``formscan export`` does by default) or with the
field names (``"en"``); every funds and indicator row names its project and 主管部门; numbers
stay numbers; and no text cell can start a formula (OWASP's CSV injection): text that
begins with = + - @, a tab or a carriage return gets a leading ``'``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import FormRecord, Notice, PageError, PageResult, PageStatus, SourceRef, TemplateRecord, parse_record
from review.fields import Record, format_value
from review.queue import STATUSES, flag_from_row
from review.store import WHOLE_FILE, Correction, Document, PageRow, ReviewStore

if TYPE_CHECKING:
    from openpyxl import Workbook

FORMATS = ("jsonl", "csv", "xlsx")
HEADER_LANGUAGES = ("zh", "en")
PAGE_COLUMNS = ("year", "project_name", "department", "implementing_unit", "funds_unit", "goal_expected",
                "goal_actual", "total_weight", "total_score")

# Every column of the CSV and of each XLSX sheet, in order: its field name (the "en" header,
# and the key a row's values come under) and the form's label for it (the "zh" header).
# In the CSV and the pages sheet the later columns (form_type, project_name, department) come last,
# so that scripts counting columns find the others where they always were.
HEADERS: dict[str, dict[str, str]] = {
    "csv": {"file": "文件", "page": "页", "status": "状态", "field": "字段", "value": "值", "flags": "待核原因",
            "error": "错误", "project_name": "项目名称", "department": "主管部门"},
    "pages": {"file": "文件", "page": "页", "status": "状态", "year": "年度", "project_name": "项目名称",
              "department": "主管部门", "implementing_unit": "实施单位", "funds_unit": "资金单位",
              "goal_expected": "预期目标", "goal_actual": "实际完成情况", "total_weight": "总分值",
              "total_score": "总得分", "open_flags": "待核字段数", "error": "错误", "form_type": "表单类型"},
    "funds": {"file": "文件", "page": "页", "project_name": "项目名称", "department": "主管部门",
              "source": "资金来源", "initial_budget": "年初预算数", "annual_budget": "全年预算数",
              "executed": "全年执行数", "weight": "分值", "execution_rate": "执行率", "score": "得分"},
    "indicators": {"file": "文件", "page": "页", "project_name": "项目名称", "department": "主管部门",
                   "level1": "一级指标", "level2": "二级指标", "name": "三级指标", "target": "年度指标值",
                   "actual": "实际完成值", "weight": "分值", "score": "得分",
                   "deviation_reason": "偏差原因分析及改进措施"},
    "flags": {"file": "文件", "page": "页", "field": "字段", "reason": "原因", "confidence": "置信度",
              "message": "说明", "proposal": "建议值"},
    "template_fields": {"file": "文件", "page": "页", "field": "字段", "value": "值"},  # form_type the first field
    "audit": {"file": "文件", "page": "页", "field": "字段", "from": "原值", "to": "新值", "action": "操作",
              "by": "操作人", "at": "时间"},
}
# The XLSX's sheets are named in the language of their headers: the key in "en", this in "zh".
SHEET_NAMES: dict[str, str] = {"pages": "页面", "funds": "资金", "indicators": "绩效指标", "flags": "待核字段",
                               "template_fields": "模板字段", "audit": "修改记录"}
ROW_OWNER_COLUMNS = ("project_name", "department")  # on every funds and indicator row
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
MAX_COLUMN_WIDTH = 60  # characters; longer text (a goal, a deviation reason) is cut off on screen, not in the cell
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters an XLSX cannot hold


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


def _owner(record: Record) -> dict[str, Any]:
    """Whose a funds or indicator row is: the record's 项目名称 and 主管部门 (blank on forms without them)."""
    return dict(zip(ROW_OWNER_COLUMNS, _cells(dict(record), ROW_OWNER_COLUMNS), strict=True))


# --- cells a spreadsheet reads as meant ----------------------------------------------------

def inert_text(text: str) -> str:
    """``text`` as a spreadsheet keeps it, as text: a leading ``'`` where it would start a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _number(value: Any) -> int | float | None:
    """``value`` if it is a number (a whole float as an int, as the review UI shows it), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _csv_cell(value: Any) -> Any:
    """A CSV cell: a number as a number (written bare), anything else as inert text (written quoted)."""
    number = _number(value)
    return number if number is not None else inert_text(format_value(value))


def _xlsx_cell(value: Any) -> Any:
    """An XLSX cell: numbers and blanks as they are, text inert and without the control characters XML refuses."""
    return inert_text(_XML_ILLEGAL.sub("", value)) if isinstance(value, str) else value


def _display_width(value: Any) -> int:
    """How many character columns a cell's longest line takes on screen: a CJK (wide) character two."""
    text = value if isinstance(value, str) else format_value(value)
    return max((sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)
                for line in text.splitlines()), default=0)


def _header(columns: dict[str, str], language: str) -> list[str]:
    return list(columns.values()) if language == "zh" else list(columns)


class _CsvTable:
    """A CSV of one of HEADERS' tables: rows are dicts under the columns' field names."""

    def __init__(self, handle: TextIO, table: str, language: str) -> None:
        self.columns = tuple(HEADERS[table])
        self.writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)  # text quoted, numbers bare
        self.writer.writerow(_header(HEADERS[table], language))

    def append(self, values: dict[str, Any]) -> None:
        self.writer.writerow([_csv_cell(value) for value in _cells(values, self.columns)])


class _XlsxSheet:
    """A sheet of one of HEADERS' tables: header row frozen and filtered, columns as wide as their content."""

    def __init__(self, book: Workbook, table: str, language: str) -> None:
        self.columns = tuple(HEADERS[table])
        self.sheet = book.create_sheet(SHEET_NAMES[table] if language == "zh" else table)
        self.widths = [0] * len(self.columns)
        self._write(_header(HEADERS[table], language))

    def append(self, values: dict[str, Any]) -> None:
        self._write(_cells(values, self.columns))

    def _write(self, values: list[Any]) -> None:
        cells = [_xlsx_cell(value) for value in values]
        self.sheet.append(cells)
        self.widths = [max(width, _display_width(cell)) for width, cell in zip(self.widths, cells, strict=True)]

    def finish(self) -> None:
        from openpyxl.utils import get_column_letter

        self.sheet.freeze_panes = "A2"
        self.sheet.auto_filter.ref = f"A1:{get_column_letter(len(self.columns))}{self.sheet.max_row}"
        for index, width in enumerate(self.widths, start=1):
            self.sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, MAX_COLUMN_WIDTH)


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


def _write_csv(session: Session, statuses: list[str] | None, out: Path, language: str) -> int:
    count = 0
    with out.open("w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel then reads the Chinese right
        table = _CsvTable(handle, "csv", language)
        for page in _pages(session, statuses):
            result = page_result(page)
            count += 1
            where = {"file": result.source.file, "page": result.source.page}
            if result.record is None:
                table.append({**where, "status": "error", "error": f"{result.error.kind}: {result.error.message}"})
                continue
            reasons: dict[str, list[str]] = {}
            for flag in result.flags:
                reasons.setdefault(flag.field, []).append(flag.reason)
            on_every_row = {**where, **_owner(result.record), "status": result.status.value}
            for path, value in field_rows(result.record):
                table.append({**on_every_row, "field": path, "value": value, "flags": ";".join(reasons.get(path, []))})
    return count


def _write_xlsx(session: Session, statuses: list[str] | None, out: Path, language: str) -> int:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)  # every sheet is made below, named in the headers' language
    sheets = {name: _XlsxSheet(book, name, language) for name in ("pages", "funds", "indicators", "flags")}
    count = 0
    for page in _pages(session, statuses):
        result = page_result(page)
        where = {"file": result.source.file, "page": result.source.page}
        count += 1
        if result.record is None:
            sheets["pages"].append({**where, "status": "error", "open_flags": 0,
                                    "error": f"{result.error.kind}: {result.error.message}"})
            continue
        record = result.record
        # The record's fields first: a template's field named like one of this sheet's columns (file, status)
        # must not take that column's place.
        sheets["pages"].append({**dict(record), **where, "status": result.status.value,
                                "open_flags": len(result.flags), "error": None})
        owner = _owner(record)
        for section in ("funds", "indicators"):
            for row in _rows(record, section):
                sheets[section].append({**row, **where, **owner})
        if isinstance(record, TemplateRecord):
            if "template_fields" not in sheets:  # made for the first template record: project forms need none
                sheets["template_fields"] = _XlsxSheet(book, "template_fields", language)
            for path, value in field_rows(record):
                sheets["template_fields"].append({**where, "field": path, "value": value})
        for flag in result.flags:
            sheets["flags"].append({**where, "field": flag.field, "reason": flag.reason,
                                    "confidence": flag.confidence, "message": flag.message,
                                    "proposal": flag.proposal})
    sheets["audit"] = _XlsxSheet(book, "audit", language)
    for entry in audit_trail(session, statuses):
        sheets["audit"].append(entry)
    for sheet in sheets.values():
        sheet.finish()
    book.save(out)
    return count


def _write_audit_csv(session: Session, statuses: list[str] | None, out: Path, language: str) -> None:
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        table = _CsvTable(handle, "audit", language)
        for entry in audit_trail(session, statuses):
            table.append(entry)


def export(store: ReviewStore, fmt: str, out: str | Path, statuses: list[str] | None = None,
           audit_out: str | Path | None = None, headers: str = "en") -> int:
    """Write the pages with the given statuses (all when None); returns how many pages were written.

    ``headers`` heads the CSV's and XLSX's columns and names the sheets: "zh" with the form's
    labels, "en" with the field names (the default here, for code; ``formscan export`` gives "zh").
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if headers not in HEADER_LANGUAGES:
        raise ValueError(f"headers must be one of {', '.join(HEADER_LANGUAGES)}")
    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status {', '.join(sorted(unknown))}; known: {', '.join(STATUSES)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with store.transaction() as session:
        if fmt == "jsonl":
            count = _write_jsonl(session, statuses, out)
        else:
            count = {"csv": _write_csv, "xlsx": _write_xlsx}[fmt](session, statuses, out, headers)
        if audit_out is not None:
            _write_audit_csv(session, statuses, Path(audit_out), headers)
    return count


__all__ = ["FORMATS", "HEADERS", "HEADER_LANGUAGES", "audit_trail", "export", "inert_text", "page_result"]
