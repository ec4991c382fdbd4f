"""Mapping cells to the record, on the fixtures' true grids and printed texts (no OCR involved)."""

import json
from pathlib import Path

import pytest

from models import FormRecord
from pipeline.assemble import assemble_record, read_year
from pipeline.errors import NotAFormError
from pipeline.grid import Box, Cell, Grid
from pipeline.ocr import BLANK, DASH, CellText
from pipeline.repair import repair_text
from pipeline.extract import require_form_shown
from pipeline.templates import get_template

TRUTH = sorted((Path(__file__).parent.parent / "fixtures" / "truth").glob("*.json"))


def truth_pages():
    for path in TRUTH:
        for page in json.loads(path.read_text(encoding="utf-8"))["pages"]:
            yield pytest.param(page, id=f"{path.stem}-p{page['page']}")


def perfect_reading(page: dict) -> tuple[Grid, dict[Cell, CellText]]:
    """The grid and cell texts exactly as printed: what a perfect OCR would hand over."""
    grid_truth = page["grid"]
    cells, texts = [], {}
    for c in grid_truth["cells"]:
        cell = Cell(c["row"], c["col"], c["row_span"], c["col_span"],
                    Box(c["col"], c["row"], c["col"] + c["col_span"], c["row"] + c["row_span"]))
        cells.append(cell)
        printed = c["text"].strip()
        texts[cell] = BLANK if not printed else DASH if printed == "—" else CellText(repair_text(printed), 1.0, "agreed")
    grid = Grid(tuple(range(grid_truth["n_rows"] + 1)), tuple(range(grid_truth["n_cols"] + 1)), tuple(cells))
    return grid, texts


@pytest.mark.parametrize("page", list(truth_pages()))
def test_printed_cells_map_to_the_true_record(page):
    grid, texts = perfect_reading(page)
    truth = FormRecord.model_validate(page["record"])
    header = f"财政项目支出绩效自评表\n（{truth.year}年度）"
    assert assemble_record(grid, texts, header).record == truth


def test_fixture_truth_is_present():
    assert len(TRUTH) >= 5


def test_a_table_without_the_form_labels_is_not_a_form():
    cells = [Cell(r, c, 1, 1, Box(c, r, c + 1, r + 1)) for r in range(3) for c in range(3)]
    texts = {cell: CellText(f"x{cell.row}{cell.col}", 1.0, "agreed") for cell in cells}
    assembled = assemble_record(Grid((0, 1, 2, 3), (0, 1, 2, 3), tuple(cells)), texts, "通讯录")
    assert assembled.layout_failed and "项目名称" in assembled.layout_failed
    with pytest.raises(NotAFormError, match="neither the title nor most labels"):
        require_form_shown(get_template(), "通讯录", [t.text for t in texts.values()], assembled.layout_failed)


@pytest.mark.parametrize(("header", "year"), [("（2020 年度）", 2020), ("( 2023年度)", 2023), ("自评表", None)])
def test_year_is_read_from_the_title(header, year):
    assert read_year(header) == year


def test_headers_read_as_one_cell_leave_their_columns_flagged_not_guessed():
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    # A missed rule between 分值 and 执行率 in the funds header: one cell reads both labels.
    weight = next(c for c, t in texts.items() if t.text == "分值" and c.row < 5)
    texts[weight] = CellText("分值执行率", 1.0, "agreed")
    rate = next(c for c, t in texts.items() if t.text == "执行率")
    texts[rate] = CellText("分值执行率", 1.0, "agreed")
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert assembled.record.funds[0].weight is None
    assert assembled.record.funds[0].execution_rate is None
    assert "funds[0].weight" in assembled.unmapped and "funds[0].execution_rate" in assembled.unmapped
    assert "read as one cell" in assembled.unmapped["funds[0].execution_rate"]


def _assembled_with_label_misread(label: str, misread: str):
    """(truth, page assembled) for the first fixture page with one label read wrong."""
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    cell = next(c for c, t in texts.items() if t.text == label)
    texts[cell] = CellText(misread, 0.5, "paddle")
    return FormRecord.model_validate(page["record"]), assemble_record(grid, texts, "（2020年度）")


def _with_label_misread(label: str, misread: str) -> tuple[FormRecord, FormRecord]:
    """(truth, record assembled) for the first fixture page with one label read wrong."""
    truth, assembled = _assembled_with_label_misread(label, misread)
    return truth, assembled.record


def test_a_misread_total_label_is_not_taken_for_an_indicator_row():
    truth, record = _with_label_misread("总分", "分")
    assert record.indicators == truth.indicators
    assert (record.total_weight, record.total_score) == (truth.total_weight, truth.total_score)


def _merge_right(grid: Grid, texts: dict[Cell, CellText], left: Cell, right: Cell, text: CellText) -> Grid:
    """The grid as read when the rule between two neighbouring cells was missed."""
    merged = Cell(left.row, left.col, left.row_span, left.col_span + right.col_span,
                  Box(left.box.x0, left.box.y0, right.box.x1, left.box.y1))
    del texts[left], texts[right]
    texts[merged] = text
    cells = sorted([c for c in grid.cells if c not in (left, right)] + [merged], key=lambda c: (c.row, c.col))
    return Grid(grid.row_edges, grid.col_edges, tuple(cells))


def _page_with_unnamed_level2_row() -> dict:
    for path in TRUTH:
        page = json.loads(path.read_text(encoding="utf-8"))["pages"][0]
        cells = {(c["row"], c["col"]): c for c in page["grid"]["cells"]}
        header = next(c for c in page["grid"]["cells"] if c["text"].replace("\n", "") == "三级指标")
        for c in page["grid"]["cells"]:
            name = cells.get((c["row"], header["col"]))
            if c["col"] == header["col"] - 1 and c["row"] > header["row"] and c["text"] and name and not name["text"]:
                return page
    raise AssertionError("no fixture page has a 二级指标 row without an indicator")


def test_a_missed_rule_between_an_unnamed_level2_and_its_name_cell_adds_no_indicator():
    page = _page_with_unnamed_level2_row()
    grid, texts = perfect_reading(page)
    truth = FormRecord.model_validate(page["record"])
    header = next(c for c, t in texts.items() if t.text == "三级指标")
    level2 = next(c for c, t in texts.items() if c.col == header.col - 1 and c.row > header.row and t.text
                  and texts[next(n for n in texts if (n.row, n.col) == (c.row, header.col))].is_blank)
    name = next(n for n in texts if (n.row, n.col) == (level2.row, header.col))
    grid = _merge_right(grid, texts, level2, name, texts[level2])
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert assembled.record.indicators == truth.indicators


def test_a_cell_reaching_under_two_fund_headers_flags_both_fields():
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    annual_header = next(c for c, t in texts.items() if t.text == "全年预算数")
    executed_header = next(c for c, t in texts.items() if t.text == "全年执行数")
    row = annual_header.row + 1
    annual = next(c for c in texts if c.row == row and c.col == annual_header.col)
    executed = next(c for c in texts if c.row == row and c.col == executed_header.col)
    grid = _merge_right(grid, texts, annual, executed, texts[annual])
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert set(assembled.misaligned) == {"funds[0].annual_budget", "funds[0].executed"}
    from pipeline.validate import validate

    flags = validate(assembled)
    assert {f.field for f in flags if f.reason == "rule:layout"} == {"funds[0].annual_budget", "funds[0].executed"}
    # The missed rule puts the whole layout in doubt: every other field read is flagged too.
    assert {f.field for f in flags} >= set(assembled.evidence)
    # ... and each table as a whole: rows the grid lost would have no field to flag
    assert {f.field for f in flags if f.reason == "rule:layout_doubt"} == set(assembled.evidence) - {
        "funds[0].annual_budget", "funds[0].executed"} | {"funds", "indicators"}


def test_a_page_with_its_layout_recognised_flags_no_field_for_layout():
    from pipeline.validate import layout_doubt, validate

    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert layout_doubt(assembled, validate(assembled)) is None
    assert not [f for f in validate(assembled) if f.reason.startswith("rule:layout")]


def test_a_blurred_goal_label_is_not_taken_from_the_indicator_header():
    # 实际完成值 (an indicator header) is close to 实际完成情况: a seal over the real label
    # must not send goal_actual to the cell under 实际完成值.
    truth, record = _with_label_misread("实际完成情况", "实际气5.")
    assert record.goal_actual == truth.goal_actual


def test_a_misread_column_header_leaves_that_column_empty_and_flagged_not_the_page_lost():
    # Calibration page cali-213 came out an internal error: its 二级指标 header read as
    # something else, every indicator row lacked the required level2, and the record failed
    # validation. Now the column is empty, each of its fields is flagged, the rest is kept.
    truth, assembled = _assembled_with_label_misread("二级指标", "口扌")
    assert [row.level2 for row in assembled.record.indicators] == [""] * len(truth.indicators)
    assert [row.name for row in assembled.record.indicators] == [row.name for row in truth.indicators]
    assert all(f"indicators[{i}].level2" in assembled.unmapped for i in range(len(truth.indicators)))
    from pipeline.validate import validate

    doubted = {f.field for f in validate(assembled) if f.reason == "rule:layout_doubt"}
    assert {f"indicators[{i}].name" for i in range(len(truth.indicators))} <= doubted


@pytest.mark.parametrize("label, misread", [("二级指标", "三级指标"), ("三级指标", "二级指标"), ("一级指标", "二级指标")])
def test_a_header_misread_as_its_neighbour_keeps_every_column_in_printed_order(label, misread):
    # 一级/二级/三级指标 differ in one stroke: bold 二 reads as 三 at 150 dpi. Two cells then
    # read 三级指标; the headers are matched left to right, so neither column is lost or swapped.
    truth, assembled = _assembled_with_label_misread(label, misread)
    assert assembled.record.indicators == truth.indicators
    assert not assembled.unmapped and not assembled.layout_failed


def test_a_value_cut_by_a_rule_found_in_its_text_is_joined_and_flagged():
    # A glyph's stroke taken for a column line cuts 项目名称's value in two: the part beyond
    # the cut is not dropped silently, and the field goes to review.
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    truth = FormRecord.model_validate(page["record"])
    value = next(c for c, t in texts.items() if t.text == truth.project_name)
    cut = len(truth.project_name) // 2
    left = Cell(value.row, value.col, value.row_span, 1, Box(value.box.x0, value.box.y0, value.box.x0 + 1, value.box.y1))
    right = Cell(value.row, value.col + 1, value.row_span, value.col_span - 1,
                 Box(value.box.x0 + 1, value.box.y0, value.box.x1, value.box.y1))
    assert value.col_span > 1
    del texts[value]
    texts[left] = CellText(truth.project_name[:cut], 0.9, "agreed")
    texts[right] = CellText(truth.project_name[cut:], 0.9, "agreed")
    cells = tuple(sorted((*(c for c in grid.cells if c != value), left, right), key=lambda c: (c.row, c.col)))
    assembled = assemble_record(Grid(grid.row_edges, grid.col_edges, cells), texts, "（2020年度）")
    assert assembled.record.project_name == truth.project_name
    assert "project_name" in assembled.misaligned
    # The stroke's rule may run on into the rows beside, and cut their glyphs: their fields go to
    # review too. The tables below keep their own evidence: the page's layout is not in doubt.
    from pipeline.validate import layout_doubt, validate

    flags = validate(assembled)
    assert layout_doubt(assembled, flags) is None
    assert {f.field for f in flags if f.reason == "rule:layout"} == {"project_name"}
    beside = {path for path, ev in assembled.evidence.items() if abs(ev.cell.row - value.row) <= 1} - {"project_name"}
    assert {"department", "implementing_unit"} <= beside
    assert {f.field for f in flags if f.reason == "rule:layout_doubt"} == beside


@pytest.mark.parametrize("printed", ["实施单位", "实见单位|"])  # as printed, and 施 misread with the rule's remnant
def test_a_label_read_in_one_cell_with_its_value_gives_both_its_value_and_the_one_before(printed):
    # The rule between 实施单位 and its value was missed: 主管部门's value is not run on into
    # the label's cell, and 实施单位's value is the rest of that cell's text. Both go to review.
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    truth = FormRecord.model_validate(page["record"])
    label = next(c for c, t in texts.items() if t.text == "实施单位")
    value = next(c for c, t in texts.items() if c.row == label.row and c.col == label.col + label.col_span)
    grid = _merge_right(grid, texts, label, value, CellText(printed + truth.implementing_unit, 0.9, "agreed"))
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert assembled.record.department == truth.department
    assert assembled.record.implementing_unit == truth.implementing_unit
    assert "implementing_unit" in assembled.misaligned and assembled.layout_failed is None


def test_a_value_cut_by_a_false_rule_under_its_header_is_joined_and_flagged():
    # A seal's stroke taken for a column line cuts ≥80% under 实际完成值 in two: the part in
    # the second cell, under the same header, is not dropped silently.
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    record = FormRecord.model_validate(page["record"])
    value = next(c for c, t in texts.items() if t.text == "≥80%" and c.col_span == 2)
    i = next(n for n, ind in enumerate(record.indicators) if ind.actual == "≥80%")
    left = Cell(value.row, value.col, value.row_span, 1, Box(value.box.x0, value.box.y0, value.box.x0 + 1, value.box.y1))
    right = Cell(value.row, value.col + 1, value.row_span, 1, Box(value.box.x0 + 1, value.box.y0, value.box.x1, value.box.y1))
    del texts[value]
    texts[left], texts[right] = CellText("≥8", 0.9, "agreed"), CellText("0%", 0.9, "agreed")
    cells = tuple(sorted((*(c for c in grid.cells if c != value), left, right), key=lambda c: (c.row, c.col)))
    assembled = assemble_record(Grid(grid.row_edges, grid.col_edges, cells), texts, "（2020年度）")
    assert assembled.record.indicators[i].actual == "≥80%"
    assert f"indicators[{i}].actual" in assembled.misaligned
    # the rows around are read as before, and nothing else is said to be cut
    assert assembled.record.indicators == record.indicators
    assert set(assembled.misaligned) == {f"indicators[{i}].actual"}
    assert assembled.cut_values == {f"indicators[{i}].actual": (left, right)}  # to be read again whole


def test_a_section_whose_anchor_header_is_misread_is_found_by_its_other_headers():
    # 年初预算数 read as 年频算数 (under a seal's stroke): too unlike to be found alone, but it
    # stands in the row of 全年预算数, 全年执行数 ..., and the funds are read as printed.
    truth, assembled = _assembled_with_label_misread("年初预算数", "年频算数")
    assert assembled.record.funds == truth.funds
    assert not assembled.unmapped


def test_a_value_is_not_joined_with_the_one_under_an_unread_header_beside_it():
    # 全年预算数 read as nothing like itself: its column is flagged missing, and its values
    # are not run on into 年初预算数's.
    truth, assembled = _assembled_with_label_misread("全年预算数", "口扌")
    assert [row.initial_budget for row in assembled.record.funds] == [row.initial_budget for row in truth.funds]
    assert not any(path.startswith("funds") for path in assembled.misaligned)
    assert all(f"funds[{i}].annual_budget" in assembled.unmapped for i in range(len(truth.funds)))


def _department_and_its_neighbour():
    """The first fixture page read perfectly: its grid, texts and record, 主管部门's value cell and
    the 实施单位 label cell right of it."""
    page = json.loads(TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    grid, texts = perfect_reading(page)
    label = next(c for c, t in texts.items() if t.text == "实施单位")
    value = next(c for c, t in texts.items() if c.row == label.row and c.col + c.col_span == label.col)
    return grid, texts, FormRecord.model_validate(page["record"]), value, label


def test_a_value_read_in_one_cell_with_the_next_label_gives_both_values():
    # The rule between 主管部门's value and 实施单位 was missed: 主管部门's value is the text
    # before the label, 实施单位's value the cell right of it. Both go to review.
    grid, texts, truth, value, label = _department_and_its_neighbour()
    grid = _merge_right(grid, texts, value, label, CellText(truth.department + "|。实施单位", 0.9, "agreed"))
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert assembled.record.department == truth.department
    assert assembled.record.implementing_unit == truth.implementing_unit
    assert {"department", "implementing_unit"} <= set(assembled.misaligned)


def test_a_goal_label_not_read_takes_the_value_left_of_its_neighbour_s_and_flags_it():
    # A seal over 预期目标 (read 明期期): 实际完成情况 was read, and its value's left neighbour is the goal.
    from pipeline.validate import validate

    truth, assembled = _assembled_with_label_misread("预期目标", "明期期")
    assert assembled.record.goal_expected == truth.goal_expected
    assert "goal_expected" in assembled.misaligned and "goal_expected" not in assembled.unmapped
    assert ("goal_expected", "rule:layout") in {(f.field, f.reason) for f in validate(assembled)}


def test_a_label_cut_by_a_false_rule_after_a_value_that_runs_on_gives_both_values():
    # Under a seal's ghost the rule between 主管部门's value and 实施单位 was missed and a false
    # one found inside the label: 上海市…中心实 | 王单位 | its value. The run of cells holds both
    # values and the label between them (one character misread).
    grid, texts, truth, value, label = _department_and_its_neighbour()
    texts[value] = CellText(truth.department + "实", 0.9, "paddle")
    texts[label] = CellText("王单位", 0.9, "paddle")
    assembled = assemble_record(grid, texts, "（2020年度）")
    assert assembled.record.department == truth.department
    assert assembled.record.implementing_unit == truth.implementing_unit
    assert {"department", "implementing_unit"} <= set(assembled.misaligned)
