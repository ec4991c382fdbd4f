from pipeline.assemble import assemble_record
from pipeline.grid import Box, Cell, Grid
from pipeline.lexicon import Lexicon, field_kind
from pipeline.ocr import CellText


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
