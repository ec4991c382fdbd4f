"""Tables read from pages, written as JSON, HTML or XLSX with their merged cells intact.

JSON: every page's ``PageTables`` as the model dumps it (cells with spans, text,
confidence, evidence, both engines' readings, boxes). HTML: one ``<table>`` per table,
``rowspan``/``colspan`` for merged cells, each cell's confidence in its ``title`` and its
background shaded when under the review threshold. XLSX: a sheet per table with merged
ranges, each read cell's confidence as a comment and the same shading; an ``index``
sheet lists every page, its tables' sheets and the pages that could not be read.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from models import PageTables, Table, TableCell
from pipeline.confidence import REVIEW_BELOW

FORMATS = ("html", "json", "xlsx")
SHEET_NAME_MAX = 31  # Excel's limit


def to_json(pages: Sequence[PageTables]) -> str:
    return json.dumps({"pages": [page.model_dump(mode="json") for page in pages]}, ensure_ascii=False, indent=1)


def shade(confidence: float) -> str | None:
    """Background (RRGGBB) for a cell under the review threshold: pale pink at it, deeper towards 0."""
    if confidence >= REVIEW_BELOW:
        return None
    t = max(0.0, min(1.0, confidence / REVIEW_BELOW))
    level = int(120 + 120 * t)
    return f"FF{level:02X}{level:02X}"


def _where(page: PageTables) -> str:
    return f"{page.source.file}" + (f", page {page.source.page}" if page.source.page is not None else "")


def rows_of(table: Table) -> list[list[TableCell]]:
    """The cells that start on each fine row, left to right: the order HTML lays them out in."""
    rows: list[list[TableCell]] = [[] for _ in range(table.n_rows)]
    for cell in table.cells:
        rows[cell.row].append(cell)
    return [sorted(row, key=lambda c: c.col) for row in rows]


def _html_cell(cell: TableCell) -> str:
    attrs = []
    if cell.row_span > 1:
        attrs.append(f'rowspan="{cell.row_span}"')
    if cell.col_span > 1:
        attrs.append(f'colspan="{cell.col_span}"')
    attrs.append(f'title="confidence {cell.confidence:.3f} ({html.escape(cell.evidence)})"')
    if (colour := shade(cell.confidence)) is not None:
        attrs.append(f'class="unsure" style="background:#{colour}"')
    return f"<td {' '.join(attrs)}>{html.escape(cell.text)}</td>"


def to_html(pages: Sequence[PageTables], title: str = "formscan tables") -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:0.5em 0 1.5em}"
        "td{border:1px solid #444;padding:2px 6px;vertical-align:middle;height:1.3em}"
        "caption{text-align:left;color:#555;padding:2px 0}.error{color:#a00}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Cells shaded are under confidence {REVIEW_BELOW}: read them against the scan. "
        "Hover a cell for its confidence.</p>",
    ]
    for page in pages:
        parts.append(f"<section><h2>{html.escape(_where(page))}</h2>")
        if page.error is not None:
            parts.append(f'<p class="error">{html.escape(page.error.kind)}: {html.escape(page.error.message)}</p>')
        for table in page.tables:
            parts.append(f"<table><caption>table {table.index}: {table.n_rows} × {table.n_cols}</caption>")
            for row in rows_of(table):
                parts.append("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _sheet_names(pages: Sequence[PageTables]) -> dict[tuple[int, int], str]:
    """A unique sheet name for each (page position, table index): ``p3-t1``, with the file's
    name in front when several files are exported."""
    several_files = len({page.source.file for page in pages}) > 1
    names: dict[tuple[int, int], str] = {}
    used: set[str] = set()
    for i, page in enumerate(pages):
        for table in page.tables:
            tail = f"p{page.source.page}-t{table.index}"
            stem = Path(page.source.file).stem if several_files else ""
            base = (f"{stem[: SHEET_NAME_MAX - len(tail) - 1]}-{tail}" if stem else tail)
            for ch in '[]:*?/\\':
                base = base.replace(ch, "_")
            name, n = base, 2
            while name.lower() in used:
                suffix = f"~{n}"
                name, n = base[: SHEET_NAME_MAX - len(suffix)] + suffix, n + 1
            used.add(name.lower())
            names[(i, table.index)] = name
    return names


def write_xlsx(pages: Sequence[PageTables], path: str | Path) -> None:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, PatternFill

    book = Workbook()
    index = book.active
    index.title = "index"
    index.append(["file", "page", "table", "sheet", "rows", "columns", "error"])
    names = _sheet_names(pages)
    wrap = Alignment(wrap_text=True, vertical="center")
    for i, page in enumerate(pages):
        if page.error is not None:
            index.append([page.source.file, page.source.page, None, None, None, None,
                          f"{page.error.kind}: {page.error.message}"])
        for table in page.tables:
            name = names[(i, table.index)]
            index.append([page.source.file, page.source.page, table.index, name, table.n_rows, table.n_cols, None])
            sheet = book.create_sheet(name)
            for cell in table.cells:
                target = sheet.cell(row=cell.row + 1, column=cell.col + 1, value=cell.text or None)
                target.alignment = wrap
                if cell.text:
                    note = f"confidence {cell.confidence:.3f} ({cell.evidence})"
                    readings = "; ".join(f"{engine}: {text}" for engine, text in cell.readings.items() if text)
                    target.comment = Comment(note + (f"\n{readings}" if readings else ""), "formscan")
                if (colour := shade(cell.confidence)) is not None:
                    target.fill = PatternFill("solid", fgColor=colour)
                if cell.row_span > 1 or cell.col_span > 1:
                    sheet.merge_cells(start_row=cell.row + 1, start_column=cell.col + 1,
                                      end_row=cell.row + cell.row_span, end_column=cell.col + cell.col_span)
    book.save(str(path))


def write(pages: Sequence[PageTables], path: str | Path, fmt: str) -> None:
    """Write ``pages`` to ``path`` in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "xlsx":
        write_xlsx(pages, path)
        return
    text = to_json(pages) if fmt == "json" else to_html(pages)
    Path(path).write_text(text, encoding="utf-8")
