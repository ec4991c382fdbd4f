import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from opencc import OpenCC

from pipeline.cell_image import CellImage
from pipeline.ocr import PaddleEngine, Reading, reconcile


def both(paddle: str, tesseract: str, score: float = 0.95):
    return reconcile(Reading("paddle", paddle, score), Reading("tesseract", tesseract, 0.5))


def test_agreement_certifies_after_repair():
    got = both("目前,已基本完成", "目前，已基本 完成")
    assert (got.source, got.text) == ("agreed", "目前，已基本完成")


@pytest.mark.parametrize(
    ("paddle", "tesseract"),
    [
        ("≥98%", "98%"),  # Tesseract drops ≥
        ("≥95%", "之95%"),  # or reads it as 之
        ("≤预算", "K《预算"),
        ("≥90%", "> 905%"),  # and reads % as 5%
        ("项目经费（区府办【2019】7号）", "项目经费 〈区府办【2019】7号)"),  # （ as 〈
        ("经费（沪财行【2023】94号）", "经费 〈(沪财行【2023】94号)"),  # or as 〈(
        ("≥85%", "2 85%"),  # ≥ as a 2 set apart
        ("≥98%", "298%"),  # or glued, when PP-OCR saw the ≥
        ("≥99%", "之99名"),  # % as 名, 久, 包 or 狼
        ("0", "O"),
        ("≥98%", "Z>98%"),
        ("≤5天", "ES5天"),
        ("100%", "1005"),
        ("≤5天", "S 5天"),  # the chevron as S, &, 有 or P
        ("≤预算", "&预算"),
        ("≥99%", "P 99%"),
        ("95%", "95%4"),  # stray characters after %
        ("94%", "949%p"),
        ("≥90%", "之 90为"),  # another character for %
        ("95%", "953%"),  # % as 3% (deve-031, hard-003)
        ("66.11%", "66.113%"),  # and in a rate (hard-024)
        (">≥6场", ">二6场"),  # a doubled comparator: > read exactly, ≥ through its traps
        (">≥5000人次", ">>5000人次"),
        ("95%", ".95%"),  # a speck before a number
    ],
)
def test_tesseract_known_misreadings_do_not_count_as_disagreement(paddle, tesseract):
    got = both(paddle, tesseract)
    assert (got.source, got.text) == ("agreed_but_trap", paddle)


@pytest.mark.parametrize(
    ("paddle", "tesseract"),
    [
        (">90%", "之90%"),  # Tesseract saw a ≥ where PP-OCR read >: a real disagreement
        ("95%", "98%"),
        ("级", "二级"),  # a leading character PP-OCR lost is not a comparator
        (">90%", ">905%"),  # PP-OCR's > may be a ≥ it misread: only an exact match certifies it
        ("98%", "298%"),  # without PP-OCR's ≥, a leading 2 is a digit
        ("95", "9久"),  # % lookalikes stand for % only
        ("90%", "80为"),  # a garbled % leaves the digits as they are
        ("95%", "9%4"),
        ("项目O", "项目0"),  # O and 0 are one only in numbers
        (">≥6场", "≥6场"),  # the > of a doubled comparator is certified only by a > read
        (">≥6场", "<二6场"),
        ("95%", "0.95%"),
    ],
)
def test_real_disagreements_stay_disagreements(paddle, tesseract):
    got = both(paddle, tesseract)
    assert got.source == "paddle" and got.text == paddle


def test_a_lone_stroke_read_as_yi_is_the_forms_dash():
    assert both("一", "-一").source == "dash"


def test_only_tesseract_reading_is_not_trusted():
    got = both("", "10")
    assert got.source == "tesseract" and got.confidence <= 0.5


def test_pp_ocr_answers_in_traditional_characters_are_read_as_the_simplified_form_prints():
    engine = PaddleEngine.__new__(PaddleEngine)  # the real converter, a stand-in for the model
    engine._simplified = OpenCC("t2s").convert
    engine._detector = SimpleNamespace(dpi=0)  # told each cell's dpi; the stand-in model ignores it
    engine._ocr = lambda image, **_: SimpleNamespace(
        boxes=[[(0, 0), (90, 0), (90, 20), (0, 20)]], txts=("個別服務對象對辦理時限提出意見",), scores=(0.97,)
    )
    reading = engine.read(CellImage("text", np.full((30, 100), 255, np.uint8), ((5, 25),), 300))
    assert reading.text == "个别服务对象对办理时限提出意见"


def test_simplified_text_is_left_as_printed():
    # Every printed cell of the committed fixtures, the real seed forms' text among them.
    simplified = OpenCC("t2s").convert
    fixtures = Path(__file__).parent.parent / "fixtures" / "truth"
    texts = {c["text"] for f in fixtures.glob("*.json") for p in json.loads(f.read_text("utf-8"))["pages"]
             for c in p["grid"]["cells"]}
    assert len(texts) > 300
    assert {t for t in texts if simplified(t) != t} == set()


def test_a_mark_paddle_dropped_at_a_line_s_edge_comes_back_when_three_views_read_it():
    from pipeline.ocr import marks_restored_by_tesseract_views

    paddle = "和监督检查\n及时发现并处置各类问题，保\n障安全稳定运行。\n规范管理\n建立健全长效机制"
    truth = "和监督检查，\n及时发现并处置各类问题，保\n障安全稳定运行。\n规范管理，\n建立健全长效机制"
    views = (
        "和监督检查\n，及时发现并处置各类问题，保\n障安全稳定运行。\n规范管理，\n建立健全长效机制",
        "和监督检查\n，及时发现并处十各类问题，保\n障安全稳定运行。\n规范管理，\n建立健全",  # garbled elsewhere, and cut short
        "和监督检查\n，及时发现并处置各类问题，1\n漳安全稳定运行 。\n规范管理 ，\n建立健全长效机制",
        "和监督检查\n、及时发现并处置各类问题，\n障安全稳定运行。\n规范管理\n建立健全长效机制",
    )
    got = marks_restored_by_tesseract_views(_after_retries(paddle, *views))
    assert (got.text, got.source) == (truth, "tesseract_views")


@pytest.mark.parametrize(
    "views",
    [
        ("监督检查\n，及时发现", "监督检查\n，及时发现", "监督检查\n.及时发现", "监督检查\n_及时发现"),  # two views only
        ("监督检杳\n，及时发现", "监督检杳\n，及时发现", "监督检杳\n，及时发现", ""),  # the character before differs
        ("监督检查\n，，及时发现", "监督检查\n，，及时发现", "监督检查\n，，及时发现", ""),  # not a lone mark
        ("监督检查 : 及时发现", "监督检查 : 及时发现", "监督检查 : 及时发现", ""),  # Tesseract's ":" for a 。
    ],
)
def test_a_mark_is_put_back_only_where_three_views_read_it_between_characters_read_alike(views):
    from pipeline.ocr import marks_restored_by_tesseract_views

    got = marks_restored_by_tesseract_views(_after_retries("监督检查\n及时发现", *views))
    assert (got.text, got.source) == ("监督检查\n及时发现", "paddle")


def _after_retries(paddle: str, *views: str):
    """PP-OCR's reading as ``second_opinions`` leaves it when no view of Tesseract's read the same."""
    from pipeline.ocr import CellText

    names = ("tesseract", "tesseract_24px", "tesseract_40px", "tesseract_32px_binarised")
    return CellText(paddle, 0.999, "paddle", {"paddle": paddle, **dict(zip(names, views))})


def test_a_phrase_paddle_dropped_comes_back_when_two_tesseract_views_agree():
    from pipeline.ocr import restored_by_tesseract_views

    truth = "个别服务对象对办理时限提出意见，将进一步优化办事流程，提升服务质量。"
    dropped = "个别服务对象对办理时限提出意化办事流程，提升服务质量。"  # PP-OCR, at 0.999
    first = "个别服务对象对办理时限提出意见将进一步优化办事流程"
    got = restored_by_tesseract_views(_after_retries(dropped, first, truth, truth, truth[:-2]))
    assert (got.text, got.source) == (truth, "tesseract_views")
    paragraph = "项目按合同约定有序推进，资金按进度拨付社区卫生服务运行平稳"
    comma = restored_by_tesseract_views(_after_retries(paragraph, *[paragraph.replace("拨付", "拨付，")] * 2))
    assert (comma.text, comma.source) == (paragraph.replace("拨付", "拨付，"), "tesseract_views")
    stop = restored_by_tesseract_views(_after_retries(paragraph, *[paragraph + "。"] * 2))
    assert (stop.text, stop.source) == (paragraph + "。", "tesseract_views")  # a paragraph's full stop
    # Tesseract alone now vouches for the text: it still goes to a reviewer
    from pipeline.confidence import REVIEW_BELOW, calibrated_confidence, evidence_class

    assert calibrated_confidence(evidence_class("goal_actual", got, set(), set())) < REVIEW_BELOW


@pytest.mark.parametrize(
    ("paddle", "views"),
    [
        ("上海市奉贤区民政局", ("上海市奉贤区民政局|“", "上海市奉贤区民政局|“")),  # Tesseract's specks added
        ("≥90%", ("≥909%", "≥909%")),  # a digit added: a misread %, not a dropped one
        ("提升服务质量", ("提升服务质量。", "提升服务质量")),  # only one view reads the mark
        ("提升服务质量", ("提升服努质量。", "提升服努质量。")),  # Tesseract differs in a character too
        ("企业满意度", ("企业满意度:", "企业满意度:")),  # Tesseract's ":" for a speck after the last character
        ("已按计划完成公共法律服务相关工作，各项指标基本达到预期。", ("已按计划完成公共法律服务相关工作，各项指标基本达到预期。:",) * 2),
        ("已按计划完成公共法律服务相关工作，各项指标基本达到预期", ("已按计划完成公共法律服务相关工作，各项指标基本达到预期，",) * 2),
        ("已按计划完成公共法律服务相关工作各项指标基本达到预期。", ("已按计划完成公共法律服务相关工作:各项指标基本达到预期。",) * 2),
    ],
)
def test_what_tesseract_adds_is_kept_only_when_it_is_characters_or_marks_two_views_read(paddle, views):
    from pipeline.ocr import restored_by_tesseract_views

    got = restored_by_tesseract_views(_after_retries(paddle, *views))
    assert (got.text, got.source) == (paddle, "paddle")
