import pytest

from pipeline.ocr import Reading, reconcile


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
        ("项目O", "项目0"),  # O and 0 are one only in numbers
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
