"""Evidence classes: which reading lands in which calibrated class."""

import pytest

from pipeline.confidence import evidence_class
from pipeline.ocr import CellText


def paddle(text: str, tesseract: str, score: float = 0.9995) -> CellText:
    return CellText(text, score, "paddle", {"paddle": text, "tesseract": tesseract})


def test_pp_ocr_sure_and_tesseract_a_few_characters_off_is_its_own_class():
    near = paddle("项目实施进度略有滞后", "项目实施进度略有潇后")
    assert evidence_class("indicators[0].deviation_reason", near, set(), set()) == "paddle_near_tesseract"
    far = paddle("项目实施进度略有滞后", "人生全玖个")
    assert evidence_class("indicators[0].deviation_reason", far, set(), set()) == "paddle>=0.999"


def test_debris_after_a_percent_sign_is_never_a_sure_indicator_value():
    debris = paddle("85%城", "8 5")
    assert evidence_class("indicators[4].actual", debris, set(), set()) == "paddle_malformed"
    assert evidence_class("indicators[4].actual", paddle("≥85%", "8 5"), set(), set()) == "paddle>=0.999"


def test_engine_agreement_and_rules_outrank_pp_ocr_alone():
    agreed = CellText("85%", 0.999, "agreed", {"paddle": "85%", "tesseract": "85%"})
    assert evidence_class("indicators[4].actual", agreed, set(), set()) == "agreed"
    assert evidence_class("funds[0].executed", paddle("12.5", "2.5"), {"funds[0].executed"}, set()) == "confirmed_by_rule"


@pytest.mark.parametrize(
    ("path", "paddle_text", "tesseract_text"),
    [
        ("goal_actual", "已按计划完成市场监管相关工达到预期。", "已按计划完成市场监管相关工作，各项指标基本达到预期。"),
        ("goal_expected", "提高资金使用效益通过项目实施", "提高资金使用效益。通过项目实施"),  # a full stop dropped
        ("goal_expected", "提升公共法律服务水平·为群众", "提升公共法律服务水平，为群众"),  # · for ，
        ("indicators[4].target", "<15元/件", "S15元/件"),  # a bar PP-OCR may have lost
        ("indicators[3].target", "90%", "之90%"),  # or the whole ≥
    ],
)
def test_pp_ocr_lacking_what_tesseract_read_is_a_flagged_conflict_at_any_score(path, paddle_text, tesseract_text):
    assert evidence_class(path, paddle(paddle_text, tesseract_text), set(), set()) == "paddle_lacks_tesseract"


@pytest.mark.parametrize(
    ("path", "paddle_text", "tesseract_text"),
    [
        ("goal_actual", "全年未发生重大安全责任事故，服务对象满意度较上年有所提升。", "全年未发生重大安全责任事故，服务对象满意度较上年有所提天"),
        ("indicators[4].actual", "有效节约", "|有效节约"),  # a rule remnant Tesseract read as |
        # deve-059: 【 】's edge read again as ] (and the brackets set apart)
        ("project_name", "家庭医生签约服务经费（区府办【2024】3号）", "家庭医生签约服务经费 ( 区府办【2024]】3号 )"),
    ],
)
def test_tesseract_garbling_what_pp_ocr_read_or_reading_specks_is_still_near(path, paddle_text, tesseract_text):
    assert evidence_class(path, paddle(paddle_text, tesseract_text), set(), set()) == "paddle_near_tesseract"


def test_a_mark_in_place_of_a_numbers_decimal_point_is_tesseracts_misreading():
    # deve-006: 95.35 as PP-OCR read it and the form prints it; Tesseract's 95;35.
    assert evidence_class("funds[2].initial_budget", paddle("95.35", "95;35"), set(), set(), "amount") \
        == "paddle_near_tesseract"
    # In text a mark PP-OCR lacks stays a conflict (a dropped ，), and so does a point PP-OCR
    # lacks in a number (Tesseract's 95.35 against PP-OCR's 9535 is a dropped point).
    assert evidence_class("goal_actual", paddle("资金按进度拨付.运行平稳", "资金按进度拨付，运行平稳"), set(), set()) \
        == "paddle_lacks_tesseract"
    assert evidence_class("funds[2].initial_budget", paddle("9535", "95.35"), set(), set(), "amount") \
        == "paddle_lacks_tesseract"


def test_pp_ocr_alone_on_a_cell_a_grey_seals_erasure_cut_is_its_own_class():
    # Calibration page cali-362: the erasure of a grey seal took the thin strokes of a 4, and
    # PP-OCR read 430000 as 130000 at 0.9995 while Tesseract garbled the cell.
    cut = paddle("130000", "1S0O0")
    assert evidence_class("funds[0].executed", cut, set(), set(), "amount") == "paddle>=0.999"
    assert evidence_class("funds[0].executed", cut, set(), set(), "amount", under_seal=True) == "paddle_under_seal"
    # Agreement and the arithmetic still vouch for a cell under the seal.
    agreed = CellText("130000", 0.999, "agreed", {"paddle": "130000", "tesseract": "130000"})
    assert evidence_class("funds[0].executed", agreed, set(), set(), "amount", under_seal=True) == "agreed"
    assert evidence_class("funds[0].executed", cut, {"funds[0].executed"}, set(), "amount",
                          under_seal=True) == "confirmed_by_rule"
    # Tesseract close to PP-OCR but for a glyph or two it garbled saw the same print: near, not cut.
    near = paddle("节约运维成本", "节约运维成夲")
    assert evidence_class("indicators[1].name", near, set(), set(), under_seal=True) == "paddle_near_tesseract"
