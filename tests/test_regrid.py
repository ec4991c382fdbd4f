"""The rules the grid missed are found in the cells whose text says they hide one."""

import numpy as np
from PIL import Image, ImageDraw

from fixtures.generate import _font
from pipeline.grid import Box, Cell, Grid
from pipeline.regrid import hidden_rule_xs, split_hidden_rules, suspects
from pipeline.templates import get_template

PPM = 200 / 25.4  # 200 dpi


def page_with_hidden_rule(line_grey: int | None) -> tuple[np.ndarray, Grid]:
    """Two rows, 全年执行数 | 分值 over 362.50 | 10, drawn with a faint hairline between the
    columns (or none), and the grid a detector that missed it would give: one cell a row."""
    image = Image.new("L", (700, 260), 255)
    draw = ImageDraw.Draw(image)
    font = _font("Noto Sans CJK SC", 28)
    for y in (20, 120, 220):
        draw.line([(20, y), (680, y)], fill=20, width=2)
    for x in (20, 680):
        draw.line([(x, 20), (x, 220)], fill=20, width=2)
    if line_grey is not None:
        draw.line([(400, 20), (400, 220)], fill=line_grey, width=1)
    draw.text((240, 70), "全年执行数", font=font, fill=20, anchor="mm")
    draw.text((405, 70), "分值", font=font, fill=20, anchor="lm")  # printed against the rule
    draw.text((240, 170), "362.50", font=font, fill=20, anchor="mm")
    draw.text((540, 170), "10", font=font, fill=20, anchor="mm")
    cells = (Cell(0, 0, 1, 1, Box(22, 22, 679, 119)), Cell(1, 0, 1, 1, Box(22, 122, 679, 219)))
    return np.asarray(image), Grid((20, 120, 220), (20, 680), cells, PPM, 2.0)


def test_a_cell_with_two_labels_is_a_suspect_and_a_cell_with_one_is_not():
    header, body, single = (Cell(0, 0, 1, 1, Box(0, 0, 1, 1)), Cell(1, 0, 1, 1, Box(0, 1, 1, 2)),
                            Cell(2, 0, 1, 1, Box(0, 2, 1, 3)))
    found = suspects({header: "全年执行数分值", body: "362.50   10", single: "分值"}, get_template())
    assert {(s.cell, s.across) for s in found} == {(header, True), (header, False), (body, True)}


def test_a_faint_hairline_hidden_in_a_merged_cell_splits_the_column():
    image, grid = page_with_hidden_rule(line_grey=170)
    header = grid.cells[0]
    refined = split_hidden_rules(image, grid, suspects({header: "全年执行数分值"}, get_template()))
    assert refined is not None and refined.n_cols == 2
    assert abs(refined.col_edges[1] - 400) <= 2
    # the rule runs on through the body row, whose text alone raised no suspicion
    assert sorted((c.row, c.col) for c in refined.cells) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    left, right = (c for c in refined.cells if c.row == 0)
    assert left.box.x1 < 400 < right.box.x0


def test_text_without_a_rule_is_not_split():
    image, grid = page_with_hidden_rule(line_grey=None)
    header = grid.cells[0]
    assert split_hidden_rules(image, grid, suspects({header: "全年执行数分值"}, get_template())) is None


def test_a_printed_word_inside_prose_raises_no_suspicion():
    goal = Cell(0, 0, 1, 1, Box(0, 0, 1, 1))
    text = "按照年度工作计划，完成各项工作任务，各项绩效指标达到预期目标。"
    assert suspects({goal: text}, get_template()) == []


def test_a_hidden_rule_runs_on_only_into_the_cells_right_above_and_below():
    # Below the two rows, a row without the rule, then one whose text has a vertical stroke
    # right where the rule ran: that is another block of the form, and is not cut.
    image, grid = page_with_hidden_rule(line_grey=170)
    page = np.full((480, 700), 255, np.uint8)
    page[:260] = image
    draw = Image.fromarray(page)
    pen = ImageDraw.Draw(draw)
    for y in (320, 420):
        pen.line([(20, y), (680, y)], fill=20, width=2)
    for x in (20, 680):
        pen.line([(x, 220), (x, 420)], fill=20, width=2)
    pen.line([(400, 330), (400, 410)], fill=60, width=2)  # a stroke of a glyph, not a rule
    page = np.asarray(draw)
    cells = (*grid.cells, Cell(2, 0, 1, 1, Box(22, 222, 679, 319)), Cell(3, 0, 1, 1, Box(22, 322, 679, 419)))
    grid = Grid((20, 120, 220, 320, 420), (20, 680), cells, PPM, 2.0)
    refined = split_hidden_rules(page, grid, suspects({grid.cells[0]: "全年执行数分值"}, get_template()))
    assert refined is not None
    assert sorted((c.row, c.col, c.col_span) for c in refined.cells) == [
        (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 2), (3, 0, 2)]


def test_a_label_misread_by_one_character_beside_its_value_is_a_suspect():
    # Tesseract's first reading of 实施单位 | its value, the rule between them missed: 施 read as 见
    merged, value = Cell(0, 0, 1, 1, Box(0, 0, 1, 1)), Cell(1, 0, 1, 1, Box(0, 1, 1, 2))
    found = suspects({merged: "实见单位上海市青浦区市场监督管理局", value: "上海市青浦区市场监督管理局"}, get_template())
    assert {(s.cell, s.across) for s in found} == {(merged, True), (merged, False)}


def test_of_lines_across_a_tight_cell_the_rule_is_the_one_dark_all_along():
    # A glyph's stroke as long as the cell is high, lighter than the rule: both darken every
    # row, and only the rule may be taken for one.
    image = np.full((40, 600), 250, np.uint8)
    image[:, 200:203] = 70  # the rule
    image[:, 400:403] = 150  # the stroke
    xs = hidden_rule_xs(image, Box(0, 0, 600, 40), PPM)
    assert xs and abs(xs[0] - 201) <= 2


def test_a_rule_with_text_set_against_it_on_both_sides_is_found_and_a_tall_stroke_ranks_after_it():
    # Padding 0: the label's last glyph and the value's first touch the rule, so there is no
    # paper beside it; it still runs as dark from the rule above to the one below. The glyph
    # stroke is darker, but leaves paper at the cell's top and bottom.
    image = np.full((40, 600), 250, np.uint8)
    image[6:34, 188:200] = 40  # the label's last glyph
    image[6:34, 203:215] = 40  # the value's first glyph
    image[:, 200:203] = 110  # the rule
    image[4:36, 400:403] = 30  # the stroke
    xs = hidden_rule_xs(image, Box(0, 0, 600, 40), PPM)
    assert xs and abs(xs[0] - 201) <= 2


def test_a_rule_a_seal_erasure_took_is_found_on_the_stamped_page_and_followed_on_the_erased_one():
    stamped, grid = page_with_hidden_rule(line_grey=170)
    erased = stamped.copy()
    erased[:, 395:406] = np.where(erased[:, 395:406] >= 160, 255, erased[:, 395:406])  # the faint rule went with the seal
    found = suspects({grid.cells[0]: "全年执行数分值"}, get_template())
    assert split_hidden_rules(erased, grid, found) is None
    refined = split_hidden_rules(erased, grid, found, stamped)
    assert refined is not None
    # below, what shows only before erasure (here the same rule; on a page, a seal's stroke) is not followed
    assert sorted((c.row, c.col, c.col_span) for c in refined.cells) == [(0, 0, 1), (0, 1, 1), (1, 0, 2)]


def test_a_value_a_label_with_a_character_dropped_and_a_value_hide_two_rules():
    # 主管部门's value, 实施单位 with 施 not read, and its value, all in one cell
    merged = Cell(0, 0, 1, 1, Box(0, 0, 1, 1))
    (found, _) = suspects({merged: "上海市宝山区行政服务中心实单位上海市宝山区行政服务中心"}, get_template())
    assert found.parts == 3


def indicator_rows(values: tuple[str, ...], centred_across: bool = False) -> tuple[np.ndarray, Grid]:
    """Three columns, two indicator rows: names | targets | 分值, with the rule between the rows
    missed in the target column (faded, or taken with a seal), so the grid has one target cell."""
    image = Image.new("L", (700, 260), 255)
    draw = ImageDraw.Draw(image)
    font = _font("Noto Sans CJK SC", 28)
    for y in (20, 220):
        draw.line([(20, y), (680, y)], fill=20, width=2)
    draw.line([(20, 120), (250, 120)], fill=20, width=2)
    draw.line([(450, 120), (680, 120)], fill=20, width=2)
    draw.line([(250, 120), (450, 120)], fill=225, width=1)  # what the erasure left of it
    for x in (20, 250, 450, 680):
        draw.line([(x, 20), (x, 220)], fill=20, width=2)
    for y, name, score in ((70, "长效管理制度", "30"), (170, "企业满意度", "10")):
        draw.text((135, y), name, font=font, fill=20, anchor="mm")
        draw.text((565, y), score, font=font, fill=20, anchor="mm")
    if centred_across:
        draw.text((350, 120), values[0], font=font, fill=20, anchor="mm")
    else:
        draw.text((350, 70), values[0], font=font, fill=20, anchor="mm")
        draw.text((350, 170), values[1], font=font, fill=20, anchor="mm")
    cells = (
        Cell(0, 0, 1, 1, Box(22, 22, 249, 119)), Cell(0, 1, 2, 1, Box(252, 22, 449, 219)),
        Cell(0, 2, 1, 1, Box(452, 22, 679, 119)),
        Cell(1, 0, 1, 1, Box(22, 122, 249, 219)), Cell(1, 2, 1, 1, Box(452, 122, 679, 219)),
    )
    return np.asarray(image), Grid((20, 120, 220), (20, 250, 450, 680), cells, PPM, 2.0)


def test_a_cell_over_two_rows_cut_on_both_sides_is_cut_where_paper_runs_between_its_values():
    from pipeline.regrid import split_rows_cut_beside

    image, grid = indicator_rows(("健全", ">90%"))
    split = split_rows_cut_beside(image, grid)
    targets = sorted((c.row, c.row_span, c.box.y0 < 120 < c.box.y1) for c in split.cells if c.col == 1)
    assert targets == [(0, 1, False), (1, 1, False)]


def test_a_value_printed_across_the_row_edge_keeps_its_cell_over_two_rows():
    from pipeline.regrid import split_rows_cut_beside

    image, grid = indicator_rows((">90%",), centred_across=True)
    assert split_rows_cut_beside(image, grid) is grid
