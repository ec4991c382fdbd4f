"""``formscan tables`` on real documents (``../shared/realdata``, read in place, never copied),
scored by ``bench/tables.py`` against truth that does not come from formscan: the labelme
ruling-line annotations of two forms, the vector rules and text layer of two budget PDFs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.tables import (
    BUDGET_PDFS,
    NO_TABLE_EXPECTED,
    REALDATA,
    Rule,
    TruthCell,
    TruthTable,
    budget_scores,
    budget_truth,
    match_rules,
    real_images,
    rule_scores,
    score_budget_page,
    survey_image,
)

needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"no {REALDATA}")


# --- the scorers themselves ------------------------------------------------------------------

def test_rules_match_only_when_close_and_one_to_one() -> None:
    truth = [Rule(True, 100.0, 0.0, 500.0), Rule(False, 50.0, 0.0, 300.0)]
    assert match_rules([Rule(True, 102.5, 4.0, 496.0), Rule(False, 50.0, 1.0, 299.0)], truth) == 2
    assert match_rules([Rule(True, 103.5, 0.0, 500.0)], truth) == 0  # 3.5 px across
    assert match_rules([Rule(True, 100.0, 0.0, 494.0)], truth) == 0  # an end 6 px short
    assert match_rules([Rule(False, 100.0, 0.0, 500.0)], truth) == 0  # the other way
    assert match_rules([Rule(True, 100.0, 0.0, 500.0)] * 2, truth) == 1  # one truth rule, one match


def test_budget_scorer_counts_a_missed_rule_against_every_cell_it_touches() -> None:
    truth = TruthTable([0.0, 100.0, 200.0], [0.0, 100.0, 200.0], [
        TruthCell(0, 0, 1, 2, "本年收入"), TruthCell(1, 0, 1, 1, "项目"), TruthCell(1, 1, 1, 1, "")])
    cell = SimpleNamespace

    def found(cells, col_edges=(0, 101, 199)):
        return SimpleNamespace(row_edges=[1, 99, 201], col_edges=list(col_edges), cells=cells)

    right = found([cell(row=0, col=0, row_span=1, col_span=2, text="本年 收入"),
                   cell(row=1, col=0, row_span=1, col_span=1, text="项目"),
                   cell(row=1, col=1, row_span=1, col_span=1, text="")])
    score = score_budget_page([truth], [right])
    assert (score.span_accuracy, score.text_accuracy, score.blank_right) == (1.0, 1.0, 1)
    split = found([cell(row=0, col=0, row_span=1, col_span=1, text="本年"),
                   cell(row=0, col=1, row_span=1, col_span=1, text="收入"),
                   cell(row=1, col=0, row_span=1, col_span=1, text="项目"),
                   cell(row=1, col=1, row_span=1, col_span=1, text="")])
    score = score_budget_page([truth], [split])
    assert (score.spans_right, score.text_right) == (2, 1)
    # The middle rule 15 px off (more than 1 mm at 200 dpi): both cells beside it are wrong,
    # the header across both columns, which does not touch it, is right.
    misplaced = found(right.cells, col_edges=(0, 115, 199))
    assert score_budget_page([truth], [misplaced]).spans_right == 1


# --- truth from the PDFs ------------------------------------------------------------------------

@needs_realdata
def test_budget_truth_comes_from_the_pdf_rules_and_text_layer() -> None:
    # 2026年部门财务收支预算总表 (dept budget, page 10): 本年收入 over 项目 | 预算数, and
    # 本年支出 likewise, 16 rows; the table of contents' invisible boxes (page 2) are no table.
    dept = REALDATA / BUDGET_PDFS[0]
    (table,) = budget_truth(dept, 10)
    cells = {(c.row, c.col): c for c in table.cells}
    assert (len(table.row_edges) - 1, len(table.col_edges) - 1) == (16, 4)
    assert (cells[(0, 0)].col_span, cells[(0, 0)].text) == (2, "本年收入")
    assert (cells[(0, 2)].col_span, cells[(0, 2)].text) == (2, "本年支出")
    assert [cells[(1, c)].text for c in range(4)] == ["项目", "预算数", "项目", "预算数"]
    assert cells[(2, 1)].text == "96,282,213.44"
    assert budget_truth(dept, 2) == []


# --- the figures ---------------------------------------------------------------------------------

@needs_realdata
def test_rules_of_the_annotated_forms_recall_and_precision() -> None:
    for score in rule_scores():
        assert score.recall >= 0.95 and score.precision >= 0.95, score


@needs_realdata
def test_budget_tables_structure_every_page() -> None:
    # Found only (no OCR): every table of the 25 pages, every cell's rules.
    score = budget_scores(read=False)
    assert score.tables >= 25 and score.tables_found == score.tables, score.wrong[:5]
    assert score.span_accuracy >= 0.99, score.wrong[:10]


@pytest.fixture(scope="module")
def reader():
    from pipeline.ocr import CellReader

    return CellReader()


@needs_realdata
def test_budget_tables_cell_text(reader) -> None:
    # Read whole on three pages of different kinds (bench/tables.py reads all 25): the 收支总表
    # with its two-level header, a small-print 功能分类 table, the 三公经费 table's three-level header.
    chosen = [(REALDATA / BUDGET_PDFS[0], number) for number in (10, 11, 21)]
    score = budget_scores(pages=chosen, reader=reader)
    assert score.tables_found == score.tables == 3
    assert score.span_accuracy >= 0.99, score.wrong[:10]
    assert score.text_accuracy >= 0.95, score.wrong[:10]


@needs_realdata
@pytest.mark.parametrize("path", real_images(), ids=lambda p: p.name)
def test_every_real_image_no_crash_and_a_table_where_there_is_one(path) -> None:
    outcome = survey_image(path)
    assert not outcome.crashed, outcome.error
    if path.name not in NO_TABLE_EXPECTED:
        assert outcome.tables >= 1 and outcome.cells >= 2, outcome


@needs_realdata
def test_a_real_form_read_whole(reader) -> None:
    # The teacher-evaluation form, read through every stage: its two tall labels (seen on the
    # scan) span the rows the annotated rules give them (17 and 5), and read right.
    from pipeline.tables import read_document_tables

    (page,) = read_document_tables(REALDATA / "tabledetect_teacher_eval_form.jpg", reader)
    (table,) = page.tables
    spans = {c.text: c.row_span for c in table.cells}
    assert spans.get("教师教学行为表现") == 17 and spans.get("学生学习过程表现") == 5
