"""No form is lost: a page that shows the form's title or most of its labels gives a flagged
record for review, however badly its layout was found; only other pages are ``not_a_form``."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_assemble import perfect_reading

from fixtures.generate import _font
from models import PageStatus
from pipeline.assemble import assemble_record
from pipeline.errors import NotAFormError
from pipeline.extract import extract_page_full, require_form_shown
from pipeline.grid import Box, Cell, Grid
from pipeline.identify import form_evidence, shown_form, title_similarity
from pipeline.ocr import CellText
from pipeline.read import Page
from pipeline.templates import all_templates, get_template
from pipeline.validate import LAYOUT_FAILED, validate

SEED = Path(__file__).parent.parent / "fixtures" / "truth" / "seed-1.json"
TITLE = "财政项目支出绩效自评表\n（2020年度）"


def seed_page() -> dict:
    return json.loads(SEED.read_text(encoding="utf-8"))["pages"][0]


def merged_across(grid: Grid, texts: dict[Cell, CellText], rows: set[int]) -> tuple[Grid, dict[Cell, CellText]]:
    """The grid with every row in ``rows`` read as one cell holding all its texts: the vertical
    rules of those rows were missed, as on a thin-ruled print."""
    cells, out = [], {}
    for row in sorted(rows):
        members = sorted((c for c in grid.cells if c.row == row and c.row_span == 1), key=lambda c: c.col)
        if not members:
            continue
        merged = Cell(row, 0, 1, grid.n_cols, Box(0, row, grid.n_cols, row + 1))
        cells.append(merged)
        out[merged] = CellText("".join(texts[c].text for c in members if c in texts), 1.0, "agreed")
    taken = {(c.row, c.col) for c in grid.cells if c.row in rows and c.row_span == 1}
    for cell in grid.cells:
        if (cell.row, cell.col) not in taken:
            cells.append(cell)
            if cell in texts:
                out[cell] = texts[cell]
    return Grid(grid.row_edges, grid.col_edges, tuple(cells)), out


def header_rows(grid: Grid, texts: dict[Cell, CellText], *labels: str) -> set[int]:
    return {c.row for c in grid.cells if texts.get(c) and texts[c].text in labels}


def test_a_form_whose_label_rows_merged_is_a_flagged_record_not_a_non_form():
    grid, texts = perfect_reading(seed_page())
    grid, texts = merged_across(grid, texts, header_rows(grid, texts, "项目名称", "三级指标"))
    assembled = assemble_record(grid, texts, TITLE)
    assert assembled.layout_failed
    require_form_shown(get_template(), TITLE, [t.text for t in texts.values()], assembled.layout_failed)
    flags = validate(assembled)
    failed = {f.field for f in flags if f.reason == LAYOUT_FAILED}
    assert {"project_name", "indicators"} <= failed
    # what the layout still shows is mapped, and flagged for a look like everything else
    assert assembled.record.funds[0].executed == 222.85
    assert {f.field for f in flags} >= {"funds[0].executed", "department"}


def test_the_labels_alone_show_the_form_without_its_title():
    grid, texts = perfect_reading(seed_page())
    grid, texts = merged_across(grid, texts, header_rows(grid, texts, "项目名称", "三级指标", "年初预算数"))
    words = [t.text for t in texts.values()]
    assert title_similarity(get_template().title, "") == 0.0
    evidence = form_evidence(get_template(), "", words)
    assert evidence.word_share > 0.5 and evidence.shown
    assert shown_form(all_templates(), "", words).template == "project_self_evaluation"


@pytest.mark.parametrize("header", [
    "财政项目支出绩效自评表", "项目支出绩效自评表\n2021年度", "附件3\n财政项目支出绩效自评衣\n(2019 年度)",
    "2020年度财政项目支出绩效自评表",
])
def test_the_title_alone_shows_the_form_in_its_printed_wordings(header):
    assert shown_form(all_templates(), header, []).template == "project_self_evaluation"


@pytest.mark.parametrize("header", [
    "关于报送2020年度项目支出绩效自评材料的函", "部门整体支出绩效自评表", "通讯录", "",
])
def test_a_letter_another_form_or_another_table_is_not_this_form(header):
    cells = ["姓名", "电话", "张三", "123", "财务科"]
    shown = shown_form(all_templates(), header, cells)
    assert shown is None or shown.template != "project_self_evaluation"
    with pytest.raises(NotAFormError):
        require_form_shown(get_template(), header, cells, "no 项目名称 / 三级指标 label was found")


class TitleOnlyReader:
    """A reader that sees the form's title above the table and nothing in any cell."""

    class _Engine:
        def __init__(self, text: str):
            self.text = text

        def read(self, _image):
            return CellText(self.text, 0.9, "tesseract")

    def __init__(self, header: str):
        self.tesseract = self.paddle = self._Engine(header)


def test_a_page_of_the_form_without_a_ruled_table_is_a_flagged_record():
    from pipeline.extract import form_without_table

    canvas = Image.new("L", (1654, 2339), 255)
    ImageDraw.Draw(canvas).text((400, 200), "财政项目支出绩效自评表", font=_font("Noto Sans CJK SC", 60), fill=0)
    image = np.asarray(canvas)  # a title's ink; no rules anywhere
    page = Page(source="t.pdf", number=3, image=image, dpi=200)
    shown = form_without_table(page, image, TitleOnlyReader(TITLE), None)
    assert shown is not None and shown.result.status is PageStatus.NEEDS_REVIEW
    assert shown.result.record.year == 2020
    failed = {f.field for f in shown.result.flags if f.reason == LAYOUT_FAILED}
    assert {"project_name", "department", "funds", "indicators", "total_score"} <= failed
    assert form_without_table(page, image, TitleOnlyReader("关于报送2020年度项目支出绩效自评材料的函"), None) is None


def merged_columns(grid: Grid, texts: dict[Cell, CellText], left: Cell, rows: range) -> tuple[Grid, dict[Cell, CellText]]:
    """The grid with ``left`` and the cell right of it read as one, in every row of ``rows``."""
    cells, out = [], dict(texts)
    at = {(c.row, c.col): c for c in grid.cells}
    gone = set()
    for row in rows:
        a = at.get((row, left.col))
        if a is None or a.row != row:
            continue
        b = at.get((row, a.col + a.col_span))
        if b is None or b.row != row:
            continue
        merged = Cell(row, a.col, 1, a.col_span + b.col_span, Box(a.box.x0, a.box.y0, b.box.x1, a.box.y1))
        out[merged] = CellText(texts.get(a, CellText("", 1.0, "agreed")).text + texts.get(b, CellText("", 1.0, "agreed")).text,
                               1.0, "agreed")
        gone |= {a, b}
        cells.append(merged)
    cells += [c for c in grid.cells if c not in gone]
    return Grid(grid.row_edges, grid.col_edges, tuple(sorted(cells, key=lambda c: (c.row, c.col)))), out


def test_a_funds_header_short_of_its_six_columns_flags_every_funds_field():
    grid, texts = perfect_reading(seed_page())
    header = next(c for c in grid.cells if texts.get(c) and texts[c].text == "全年执行数")
    grid, texts = merged_columns(grid, texts, header, range(header.row, header.row + 5))
    assembled = assemble_record(grid, texts, TITLE)
    flagged = {f.field for f in validate(assembled)}
    funds = {f"funds[{i}].{key}" for i in range(len(assembled.record.funds))
             for key in ("initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score")}
    assert funds <= flagged


def test_a_grid_that_maps_badly_is_read_again_on_the_faint_pass(monkeypatch):
    # Rules faded all through can leave a grid without a block merged both ways that still
    # maps badly (here: the 项目名称 row lost, so the form's first label is not found). Such a
    # page is read on the faint pass's grid too, and the better mapping is kept.
    import pipeline.extract as extract
    from models import FormRecord
    from pipeline.ocr import CellReader
    from pipeline.read import read_pages

    fixtures = Path(__file__).parent.parent / "fixtures"
    truth = FormRecord.model_validate(
        json.loads((fixtures / "truth" / "seed-1.json").read_text(encoding="utf-8"))["pages"][0]["record"])
    real = extract.detect_grid

    def lost_first_row(image, px_per_mm=None, faint=None):
        grid = real(image, px_per_mm, faint)
        if faint:
            return grid
        cells = tuple(Cell(c.row - 1, c.col, c.row_span, c.col_span, c.box) for c in grid.cells if c.row > 0)
        return Grid(grid.row_edges[1:], grid.col_edges, cells, grid.px_per_mm, grid.rule_px)

    monkeypatch.setattr(extract, "detect_grid", lost_first_row)
    (page,) = read_pages(fixtures / "scans" / "seed-1.pdf")
    found = extract.extract_page_full(page, CellReader())
    assert found.result.record.project_name == truth.project_name
    assert found.layout_doubt is None
