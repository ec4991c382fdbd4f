"""``formscan tables``: every ruled table on a page, read, and written as JSON, HTML and XLSX
with its merged cells, against a generated page whose tables, spans and texts are known."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from formscan.cli import main
from models import PageTables
from pipeline.grid import detect_grid, detect_tables, ruling_segments
from pipeline.table_export import to_html

from table_pages import TABLES, TrueTable, table_page

DPI = 200
PPM = DPI / 25.4


def _spans(cells) -> Counter:
    return Counter((c.row, c.col, c.row_span, c.col_span) for c in cells)


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return table_page(DPI, seed=0)


def test_detect_tables_finds_every_table_with_its_spans(page: np.ndarray) -> None:
    grids = detect_tables(page, PPM)
    assert len(grids) == len(TABLES)
    for grid, truth in zip(grids, TABLES):
        assert (grid.n_rows, grid.n_cols) == (len(truth.y_mm) - 1, len(truth.x_mm) - 1)
        assert _spans(grid.cells) == _spans(truth.cells)
        assert [round(x / PPM) for x in grid.col_edges] == [round(x) for x in truth.x_mm]
        assert [round(y / PPM) for y in grid.row_edges] == [round(y) for y in truth.y_mm]


def test_detect_grid_keeps_to_the_largest_table(page: np.ndarray) -> None:
    # The form pipeline's detector is unchanged: one grid, the largest table's.
    assert _spans(detect_grid(page, PPM).cells) == _spans(TABLES[0].cells)


def _drawn_segments(truth: TrueTable) -> set[tuple[bool, int, int, int]]:
    """The rules the page generator drew, cell outline by cell outline, joined into runs (mm)."""
    h: dict[float, list[tuple[float, float]]] = {}
    v: dict[float, list[tuple[float, float]]] = {}
    for c in truth.cells:
        x0, x1 = truth.x_mm[c.col], truth.x_mm[c.col + c.col_span]
        y0, y1 = truth.y_mm[c.row], truth.y_mm[c.row + c.row_span]
        h.setdefault(y0, []).append((x0, x1)), h.setdefault(y1, []).append((x0, x1))
        v.setdefault(x0, []).append((y0, y1)), v.setdefault(x1, []).append((y0, y1))
    out = set()
    for horizontal, lines in ((True, h), (False, v)):
        for pos, pieces in lines.items():
            runs: list[list[float]] = []
            for a, b in sorted(pieces):
                if runs and a <= runs[-1][1]:
                    runs[-1][1] = max(runs[-1][1], b)
                else:
                    runs.append([a, b])
            out |= {(horizontal, round(pos), round(a), round(b)) for a, b in runs}
    return out


def test_ruling_segments_are_the_rules_drawn(page: np.ndarray) -> None:
    for grid, truth in zip(detect_tables(page, PPM), TABLES):
        found = {(s.horizontal, round(s.pos / PPM), round(s.start / PPM), round(s.end / PPM))
                 for s in ruling_segments(grid)}
        assert found == _drawn_segments(truth)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, page: np.ndarray) -> dict:
    """One ``formscan tables`` run over the page, a blank page, a text file named .pdf and a
    missing file, to JSON; and one to XLSX (format from the suffix)."""
    folder = tmp_path_factory.mktemp("tables")
    Image.fromarray(page).save(folder / "tables.png", dpi=(DPI, DPI))
    Image.fromarray(np.full_like(page, 250)).save(folder / "blank.png", dpi=(DPI, DPI))
    (folder / "notes.pdf").write_text("not a PDF\n", encoding="utf-8")
    inputs = [str(folder / name) for name in ("tables.png", "blank.png", "notes.pdf", "missing.png")]
    status = main(["tables", *inputs, "-o", str(folder / "out.json"), "-q"])
    xlsx_status = main(["tables", inputs[0], "-o", str(folder / "out.xlsx"), "-q"])
    document = json.loads((folder / "out.json").read_text(encoding="utf-8"))
    pages = [PageTables.model_validate(p) for p in document["pages"]]
    return {"status": status, "xlsx_status": xlsx_status, "pages": pages, "folder": folder}


def test_json_holds_every_table_with_spans_text_and_confidence(run: dict) -> None:
    assert run["status"] == 0
    tables = run["pages"][0].tables
    assert [t.index for t in tables] == [1, 2]
    for table, truth in zip(tables, TABLES):
        assert (table.n_rows, table.n_cols) == (len(truth.y_mm) - 1, len(truth.x_mm) - 1)
        read = {(c.row, c.col, c.row_span, c.col_span): c for c in table.cells}
        for cell in truth.cells:
            got = read[(cell.row, cell.col, cell.row_span, cell.col_span)]
            assert _key(got.text) == _key(cell.text.replace("\n", "")), (cell, got)
            assert 0.0 <= got.confidence <= 1.0
            if cell.text:
                assert got.readings and got.evidence != "blank"
            else:
                assert got.evidence == "blank"


def test_pages_that_cannot_be_read_are_reported_not_fatal(run: dict) -> None:
    errors = {Path(p.source.file).name: p.error.kind for p in run["pages"] if p.error}
    assert errors == {"blank.png": "blank_page", "notes.pdf": "unsupported", "missing.png": "not_found"}
    assert all(not p.tables for p in run["pages"][1:])


class _Cells(HTMLParser):
    """Each <table>'s <td>s as (rowspan, colspan, text), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "td":
            self.tables[-1].append([int(a.get("rowspan", 1)), int(a.get("colspan", 1)), ""])

    def handle_data(self, data: str) -> None:
        if self.tables and self.tables[-1] and self.lasttag == "td":
            self.tables[-1][-1][2] += data


def test_html_has_rowspan_and_colspan_in_layout_order(run: dict) -> None:
    parser = _Cells()
    parser.feed(to_html(run["pages"]))
    assert len(parser.tables) == len(TABLES)
    for tds, truth in zip(parser.tables, TABLES):
        want = [[c.row_span, c.col_span, _key(c.text)] for c in sorted(truth.cells, key=lambda c: (c.row, c.col))]
        assert [[rs, cs, _key(text)] for rs, cs, text in tds] == want
    assert "blank_page" in to_html(run["pages"])


def test_xlsx_has_a_sheet_per_table_with_merged_ranges_and_confidence(run: dict) -> None:
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    assert run["xlsx_status"] == 0
    book = load_workbook(run["folder"] / "out.xlsx")
    assert book.sheetnames == ["index", "p1-t1", "p1-t2"]
    for name, truth in zip(book.sheetnames[1:], TABLES):
        sheet = book[name]
        merged = {str(r) for r in sheet.merged_cells.ranges}
        want = {f"{get_column_letter(c.col + 1)}{c.row + 1}:{get_column_letter(c.col + c.col_span)}{c.row + c.row_span}"
                for c in truth.cells if c.row_span > 1 or c.col_span > 1}
        assert merged == want
        for cell in truth.cells:
            target = sheet.cell(row=cell.row + 1, column=cell.col + 1)
            assert _key(target.value or "") == _key(cell.text.replace("\n", ""))
            assert (target.comment is not None and "confidence" in target.comment.text) == bool(cell.text)


def test_no_table_anywhere_exits_1_and_an_unknown_format_2(run: dict, capsys: pytest.CaptureFixture) -> None:
    folder: Path = run["folder"]
    assert main(["tables", str(folder / "blank.png"), "-o", str(folder / "none.json")]) == 1
    assert json.loads((folder / "none.json").read_text(encoding="utf-8"))["pages"][0]["error"]["kind"] == "blank_page"
    progress = capsys.readouterr().err
    assert "blank.png, page 1: blank_page" in progress and "0 tables" in progress
    assert main(["tables", str(folder / "tables.png"), "-o", str(folder / "out.txt"), "-q"]) == 2
