from pathlib import Path

import pytest

from pipeline.assemble import assemble_record
from pipeline.extract import extract_page_full
from pipeline.grid import Box, Cell, Grid
from pipeline.lexicon import Lexicon, field_kind
from pipeline.ocr import CellReader, CellText
from pipeline.read import read_pages


def test_a_near_miss_snaps_to_the_one_close_term():
    lexicon = Lexicon.builtin()
    snap = lexicon.snap("level1", "效益指")
    assert snap.changed and snap.text == "效益指标"
    assert lexicon.snap("level2", "经济效益指标").text == "经济效益指标"


def test_no_snap_between_two_equally_close_terms_or_far_text():
    lexicon = Lexicon({"target": {"有效提高", "有效降低"}})
    assert not lexicon.snap("target", "有效").changed  # as close to both
    assert not lexicon.snap("target", "按计划推进").changed


def test_learned_terms_join_the_lexicon():
    lexicon = Lexicon.builtin()
    assert not lexicon.snap("unit", "上海市宝山区行政服务中必").changed
    lexicon.add("unit", ["上海市宝山区行政服务中心"])
    assert lexicon.snap("unit", "上海市宝山区行政服务中必").text == "上海市宝山区行政服务中心"


def test_field_kinds_follow_the_record_paths():
    assert field_kind("indicators[3].level2") == "level2"
    assert field_kind("indicators[0].actual") == "target"
    assert field_kind("department") == "unit"
    assert field_kind("project_name") is None


def test_assembly_snaps_with_the_lexicon_and_keeps_the_engine_readings():
    labels = [["项目名称", "某项目"], ["主管部门", "上海市宝山区行政服务中必"], ["三级指标", ""]]
    cells, texts = [], {}
    for r, row in enumerate(labels):
        for c, text in enumerate(row):
            cell = Cell(r, c, 1, 1, Box(c, r, c + 1, r + 1))
            cells.append(cell)
            texts[cell] = CellText(text, 0.9, "paddle", {"paddle": text})
    grid = Grid((0, 1, 2, 3), (0, 1, 2), tuple(cells))
    lexicon = Lexicon.builtin()
    lexicon.add("unit", ["上海市宝山区行政服务中心"])
    page = assemble_record(grid, texts, lexicon=lexicon)
    assert page.record.department == "上海市宝山区行政服务中心"
    assert page.evidence["department"].text.readings["paddle"] == "上海市宝山区行政服务中必"
    assert assemble_record(grid, texts).record.department == "上海市宝山区行政服务中必"


class Level2MisreadingReader(CellReader):
    """The real engines, except that PP-OCR misreads one character of 服务对象满意度指标."""

    def first_reading(self, cell, vocabulary=frozenset()):
        first = super().first_reading(cell, vocabulary)
        if first.text == "服务对象满意度指标":  # keep it from being settled as a form word
            return CellText("服务对浆满意度指标", 0.4, "tesseract", {"tesseract": "服务对浆满意度指标"})
        return first

    def second_opinions(self, cells):
        return [
            CellText(first.text, 0.97, "paddle", {"paddle": first.text, "tesseract": first.text})
            if first.text == "服务对浆满意度指标" else opinion
            for (_, first), opinion in zip(cells, super().second_opinions(cells))
        ]


def test_extract_snaps_near_misses_to_the_built_in_vocabulary_without_being_given_a_lexicon():
    (page,) = read_pages(Path(__file__).parent.parent / "fixtures" / "scans" / "random-01.pdf")
    reader = Level2MisreadingReader()
    extraction = extract_page_full(page, reader)
    reader.close()
    level2 = {row.level2 for row in extraction.result.record.indicators}
    assert "服务对象满意度指标" in level2 and "服务对浆满意度指标" not in level2
    snapped = [e for e in extraction.evidence.values() if e.text.readings.get("lexicon") == "服务对象满意度指标"]
    assert snapped and all(e.text.readings["paddle"] == "服务对浆满意度指标" for e in snapped)


def test_a_level_with_one_of_four_characters_misread_snaps_unless_the_engines_agreed_on_it():
    lexicon = Lexicon.builtin()
    assert lexicon.snap_reading("level2", CellText("质北指标", 0.9, "paddle")).text == "质量指标"
    assert lexicon.snap_reading("level1", CellText("“出指标", 0.9, "paddle")).text == "产出指标"
    # what both engines read alike is not overruled at this distance
    assert lexicon.snap_reading("level2", CellText("质北指标", 0.99, "agreed")).text == "质北指标"
    # between two levels as close (数量指标, 质量指标) there is no snap; nor for target words
    assert lexicon.snap_reading("level2", CellText("时量指标", 0.9, "paddle")).text == "时量指标"
    assert lexicon.snap_reading("target", CellText("有效提升", 0.9, "paddle")).text == "有效提升"


@pytest.mark.parametrize(
    ("kind", "read", "source", "taken"),
    [
        ("level2", "质标", "paddle", "质量指标"),
        ("level2", "数标", "paddle", "数量指标"),
        ("level1", "效标", "paddle", "效益指标"),
        # what is left of every level, or of none, stays as read; and so does what both engines read
        ("level2", "指标", "paddle", "指标"),
        ("level2", "饼标", "paddle", "饼标"),
        ("level2", "质标", "agreed", "质标"),
    ],
)
def test_a_level_with_characters_dropped_snaps_to_the_one_term_it_is_left_of(kind, read, source, taken):
    assert Lexicon.builtin().snap_reading(kind, CellText(read, 0.9, source)).text == taken
