import pytest

from pipeline.repair import join_lines, repair_text


@pytest.mark.parametrize(
    ("printed", "repaired"),
    [
        ("执行\n率", "执行率"),
        ("分\n值", "分值"),
        ("年初预算\n数", "年初预算数"),
        ("78.12%\n%", "78.12%"),  # the wrap artifact seen in the seed forms
        ("年\n度\n总\n体\n目\n标", "年度总体目标"),
        ("年度\n总体\n目标", "年度总体目标"),
        ("上海市宝山区行政服务中\n心", "上海市宝山区行政服务中心"),
        ("24 次", "24次"),
        (">24 次", ">24次"),
        ("把 EMS 快递", "把EMS快递"),
        (">=95%", "≥95%"),
    ],
)
def test_wrapped_cells_are_rejoined(printed, repaired):
    assert repair_text(printed) == repaired


def test_ascii_lookalikes_become_the_printed_full_width_forms():
    assert repair_text("网络系统运营经费(宝信息委[2019]53 号)") == "网络系统运营经费（宝信息委【2019】53号）"
    assert repair_text('宝山区"一网通办"深化项目') == "宝山区“一网通办”深化项目"
    assert repair_text("目前,已基本完成") == "目前，已基本完成"


def test_numbers_and_latin_text_are_left_alone():
    assert repair_text("1,000.50") == "1,000.50"
    assert repair_text("Level A") == "Level A"
    assert repair_text("广告宣传费（抄告单{2015}47）") == "广告宣传费（抄告单{2015}47）"


def test_repair_is_idempotent_on_repaired_text():
    for text in ["宝山区“一网通办”深化项目", "78.12%", "（宝信息委【2019】53号）", "及时"]:
        assert repair_text(repair_text(text)) == repair_text(text)


def test_blank_lines_are_dropped():
    assert join_lines("\n及时\n\n") == "及时"


def test_percent_misread_as_degree_is_restored():
    assert repair_text("≥85°") == "≥85%"
    assert repair_text("95º") == "95%"
